#!/usr/bin/env bash
# Prepare Docker for the integration and e2e tests: what CI calls before pytest.
#   1. scripts/docker-engine.sh   an engine that answers `docker info`, plus docker-compose
#                                 (Compose v1, Debian bookworm's)
#   2. scripts/compose-v2.sh      Compose v2 (the `docker compose` plugin, Debian trixie's
#                                 2.26.1-4, pinned): the tests run the runbook with both
#   3. compose/images/build.sh    the stack's local images (no registry here), app image
#                                 excluded: it is built by the e2e tests' own setup
# Every step is idempotent, so a warm machine pays only a few seconds. Each step's time is
# printed so slow CI runs can be attributed. Measured on a python-svc machine (2 cores):
# cold (no docker.io, empty /var/lib/docker and image cache) 4m16s = engine install+start
# 37s + images 219s (base debootstrap 106s, postgres apt-in-build 68s, the four wheel images
# 43s); warm 3s. After a machine restart dockerd is simply started again (images persist).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

step() {
	local name="$1" start=$SECONDS
	shift
	echo "ci-docker.sh: $name ..."
	"$@" || { echo "ci-docker.sh: error: $name failed (exit $?)" >&2; exit 1; }
	echo "ci-docker.sh: $name done in $((SECONDS - start))s"
}

step "docker engine" bash "$ROOT/scripts/docker-engine.sh"
step "compose v2" bash "$ROOT/scripts/compose-v2.sh"
step "local images" bash "$ROOT/compose/images/build.sh" --no-app
