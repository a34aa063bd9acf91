#!/usr/bin/env bash
# Make sure a Docker engine and docker-compose are available on this host. Idempotent.
#
# - `docker info` works already: say so (and still make sure docker-compose exists).
# - Otherwise, on Debian/Ubuntu: install Debian's docker.io (Engine 20.10, API 1.41) and
#   docker-compose (Compose v1 1.29.2, the only Compose bookworm packages; no registry, no
#   Docker apt repo; Compose v2 comes from scripts/compose-v2.sh), start dockerd in the
#   background so it outlives this
#   script, and wait up to 60 s for it to answer.
#
# Beware: /usr/local/bin/docker on these machines is a 28.x CLI *without* an engine; it comes
# first in PATH and talks to the 20.10 engine fine (it negotiates down to API 1.41), so this
# script judges "engine present" by `docker info`, never by `docker --version`.
#
# Storage driver and networking, chosen at start time (AFASA_DOCKERD_ARGS overrides all):
# - overlay2 when the kernel has overlayfs and the Docker root is on a filesystem that can
#   hold an upper dir (ext4/xfs/btrfs...): probed by an actual overlay mount, because
#   /proc/filesystems listing "overlay" does not prove that mounting works (it fails on
#   overlay-on-overlay and in some user namespaces). Otherwise vfs, which always works but
#   copies whole layers (slow, disk-hungry).
# - iptables left on when `iptables -L` works (containers then reach the network, and
#   `docker build` can apt-get); --iptables=false --ip-masq=false when it does not, since
#   dockerd refuses to start if it cannot program iptables.
# Seen on the python-svc machine (Firecracker VM, kernel 6.18, cgroup v1, ext4 root,
# iptables-nft): plain `dockerd` with overlay2 and iptables works.
set -euo pipefail

LOG=/var/log/dockerd.log
WAIT_SECONDS="${AFASA_DOCKERD_WAIT:-60}"
DOCKER_ROOT="${AFASA_DOCKER_ROOT:-/var/lib/docker}"

say() { echo "docker-engine.sh: $*"; }
die() { echo "docker-engine.sh: error: $*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo: cannot install or start Docker"
	SUDO=(sudo)
fi

is_debian_like() {
	[ -r /etc/os-release ] && grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release
}

APT_UPDATED=0
apt_install() {
	is_debian_like || die "not Debian/Ubuntu: install $* yourself"
	if [ "$APT_UPDATED" = 0 ]; then
		"${SUDO[@]}" apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
		APT_UPDATED=1
	fi
	# Output goes to a log (debconf and needrestart chatter on stderr is noise), shown on failure.
	local log
	log="$(mktemp /tmp/docker-engine-apt.XXXXXX)"
	DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l "${SUDO[@]}" \
		apt-get install -y -qq "$@" >"$log" 2>&1 ||
		die "apt-get install $* failed: $(grep -E '^E:' "$log" | head -n 1)"
	rm -f "$log"
}

ensure_compose() {
	if command -v docker-compose >/dev/null 2>&1; then
		say "docker-compose present: $(docker-compose version --short 2>/dev/null || echo unknown)"
	else
		say "installing docker-compose (Debian's Compose v1)"
		apt_install docker-compose
		say "docker-compose installed: $(docker-compose version --short)"
	fi
}

# Prints the storage driver dockerd should use here.
choose_storage_driver() {
	# An existing Docker root keeps its driver: switching would hide all images.
	if [ -d "$DOCKER_ROOT/overlay2" ] && [ -n "$(ls -A "$DOCKER_ROOT/overlay2" 2>/dev/null)" ]; then
		echo overlay2
		return
	fi
	if [ -d "$DOCKER_ROOT/vfs" ] && [ -n "$(ls -A "$DOCKER_ROOT/vfs" 2>/dev/null)" ]; then
		echo vfs
		return
	fi
	local probe ok=vfs
	"${SUDO[@]}" mkdir -p "$DOCKER_ROOT"
	probe="$("${SUDO[@]}" mktemp -d "$DOCKER_ROOT/.overlay-probe.XXXXXX")"
	"${SUDO[@]}" mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
	if "${SUDO[@]}" mount -t overlay overlay \
		-o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" \
		2>/dev/null; then
		ok=overlay2
		"${SUDO[@]}" umount "$probe/merged"
	fi
	"${SUDO[@]}" rm -rf "$probe"
	echo "$ok"
}

dockerd_args() {
	if [ -n "${AFASA_DOCKERD_ARGS:-}" ]; then
		echo "$AFASA_DOCKERD_ARGS"
		return
	fi
	local args driver
	driver="$(choose_storage_driver)"
	args="--storage-driver=$driver"
	if ! "${SUDO[@]}" iptables -L -n >/dev/null 2>&1; then
		args="$args --iptables=false --ip-masq=false"
	fi
	echo "$args"
}

if docker info >/dev/null 2>&1; then
	say "Docker engine already running: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)"
	ensure_compose
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	say "no Docker engine here; installing docker.io and docker-compose from apt"
	apt_install docker.io docker-compose
fi
ensure_compose

# A dockerd may be running but not yet answering (or stuck); never start a second one.
if pgrep -x dockerd >/dev/null 2>&1; then
	say "dockerd is already running (pid $(pgrep -x dockerd | head -n1)); waiting for it"
else
	read -r -a ARGS <<<"$(dockerd_args)"
	say "starting dockerd ${ARGS[*]} (log: $LOG)"
	# setsid + nohup: dockerd gets its own session, so it survives this script, its shell
	# and a CI step's process-group cleanup; stdin from /dev/null so it never holds a tty.
	"${SUDO[@]}" setsid nohup dockerd "${ARGS[@]}" >>"$LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + WAIT_SECONDS))
until docker info >/dev/null 2>&1; do
	if [ "$SECONDS" -ge "$deadline" ]; then
		die "dockerd did not answer within ${WAIT_SECONDS}s; last log line: $(tail -n 1 "$LOG" 2>/dev/null)"
	fi
	if ! pgrep -x dockerd >/dev/null 2>&1; then
		die "dockerd exited; last log line: $(tail -n 1 "$LOG" 2>/dev/null)"
	fi
	sleep 1
done
say "Docker engine ready: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'), storage driver $(docker info --format '{{.Driver}}')"
