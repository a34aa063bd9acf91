#!/usr/bin/env bash
# Install Compose v2 (the `docker compose` CLI plugin), pinned, as Docker 29 hosts run it.
#
# Debian bookworm packages only Compose v1 (docker-compose 1.29.2). Debian trixie's
# docker-compose package is the v2 plugin: one Go binary, usr/libexec/docker/cli-plugins/
# docker-compose, that links only libc and runs on bookworm. This script fetches that .deb
# with apt through a sources list naming trixie that is kept apart from the system's (its own
# lists, cache and sources; the system's apt state is not touched, nothing is installed with
# dpkg), checks the package version, and copies the binary into a CLI plugin directory:
#   as root:   /usr/local/lib/docker/cli-plugins/docker-compose   (every user, any DOCKER_CONFIG)
#   otherwise: ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose
# AFASA_COMPOSE_V2_DIR overrides the directory. Idempotent: a plugin of the pinned version is
# left as it is. Compose v1 stays installed: afasa-ops and its tests run with both.
#
# Used by scripts/ci-docker.sh (so CI and `make test`) and scripts/demo.sh.
set -euo pipefail

# Pinned: the package version and what its binary says to `version --short`.
PACKAGE=docker-compose
VERSION=2.26.1-4
SUITE=trixie
MIRROR="${AFASA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MEMBER=usr/libexec/docker/cli-plugins/docker-compose

say() { echo "compose-v2.sh: $*"; }
die() { echo "compose-v2.sh: error: $*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
	DIR="${AFASA_COMPOSE_V2_DIR:-/usr/local/lib/docker/cli-plugins}"
	CACHE="${AFASA_COMPOSE_V2_CACHE:-/var/cache/afasa-ops-compose-v2}"
	SANDBOX=(-o APT::Sandbox::User=root)
else
	DIR="${AFASA_COMPOSE_V2_DIR:-${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins}"
	CACHE="${AFASA_COMPOSE_V2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/afasa-ops/compose-v2}"
	SANDBOX=()
fi
DEST="$DIR/docker-compose"

# What a binary says to `version --short` (empty when it does not run).
version_of() { "$1" version --short 2>/dev/null || true; }

report_cli() {
	# The docker CLI picks the first plugin it finds (~/.docker/cli-plugins before the system
	# directories): say which Compose `docker compose` really is.
	local found
	found="$(docker compose version --short 2>/dev/null || true)"
	if [ "$found" = "$VERSION" ]; then
		say "docker compose is Compose $found ($DEST)"
	elif [ -n "$found" ]; then
		say "warning: docker compose answers $found, not $VERSION: another plugin comes first" \
			"(docker looks in \${DOCKER_CONFIG:-~/.docker}/cli-plugins before $DIR)" >&2
	else
		say "warning: \`docker compose\` does not answer: the docker CLI is missing, or does not" \
			"look in $DIR (a plugin directory it reads: \${DOCKER_CONFIG:-~/.docker}/cli-plugins," \
			"/usr/local/lib/docker/cli-plugins)" >&2
	fi
}

if [ -x "$DEST" ] && [ "$(version_of "$DEST")" = "$VERSION" ]; then
	say "Compose v2 $VERSION present: $DEST"
	report_cli
	exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: install Compose v2 $VERSION into $DIR yourself"
[ -r "$KEYRING" ] || die "$KEYRING missing: install debian-archive-keyring"

APT_DIR="$CACHE/apt"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/etc" "$CACHE/debs"
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$APT_DIR/etc/sources.list"
# Every apt path that holds state points into $APT_DIR: the system's sources, lists and
# package cache never see trixie.
APT=(
	-o "Dir::Etc::sourcelist=$APT_DIR/etc/sources.list"
	-o "Dir::Etc::sourceparts=-"
	-o "Dir::State::Lists=$APT_DIR/lists"
	-o "Dir::Cache=$APT_DIR/cache"
	-o "APT::Get::List-Cleanup=0"
	"${SANDBOX[@]}"
)
LOG="$(mktemp /tmp/compose-v2.XXXXXX)"
trap 'rm -f "$LOG"' EXIT

DEB="$CACHE/debs/${PACKAGE}_${VERSION}_$(dpkg --print-architecture).deb"
if [ ! -s "$DEB" ]; then
	say "fetching $PACKAGE=$VERSION from $SUITE ($MIRROR) with a separate apt state in $APT_DIR"
	apt-get "${APT[@]}" update >"$LOG" 2>&1 ||
		die "apt-get update of the $SUITE list failed: $(grep -E '^(E|W):' "$LOG" | head -n 1)"
	# apt checks the .deb against the signed index it just fetched.
	(cd "$CACHE/debs" && apt-get "${APT[@]}" download "$PACKAGE=$VERSION") >"$LOG" 2>&1 ||
		die "apt-get download $PACKAGE=$VERSION failed: $(grep -E '^E:' "$LOG" | head -n 1)"
fi
[ -s "$DEB" ] || die "no $DEB after apt-get download"
got="$(dpkg-deb -f "$DEB" Version)"
[ "$got" = "$VERSION" ] || die "$DEB is version $got, not $VERSION"

WORK="$(mktemp -d /tmp/compose-v2-x.XXXXXX)"
trap 'rm -f "$LOG"; rm -rf "$WORK"' EXIT
dpkg-deb -x "$DEB" "$WORK" || die "cannot unpack $DEB"
[ -x "$WORK/$MEMBER" ] || die "$DEB holds no $MEMBER"
said="$(version_of "$WORK/$MEMBER")"
[ "$said" = "$VERSION" ] || die "$MEMBER from $DEB says version '$said', not $VERSION (does it run here?)"

mkdir -p "$DIR"
# Copy beside, then rename: a running `docker compose` never sees a half-written binary.
install -m 0755 "$WORK/$MEMBER" "$DEST.part"
mv -f "$DEST.part" "$DEST"
say "Compose v2 $VERSION installed: $DEST"
report_cli
