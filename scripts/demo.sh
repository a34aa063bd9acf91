#!/usr/bin/env bash
# `make demo`: the main job on the built-in reference stack, from a fresh machine of this kind.
#   1. a Docker engine (installed and started when none answers; says so first) and
#      Compose v2 beside Debian's v1 (scripts/compose-v2.sh)
#   2. the stack's images, built locally (no container registry needed), the app image too
#   3. on an engine older than Docker 29: the Docker 29.1 API gate in front of it, so the
#      Traefik incident is the real one (AFASA_DEMO_GATE=0 to use the engine as it is)
#   4. a sandbox git repo of compose/ in its "before" state (.demo/afasa-ref), its .env and
#      afasa-ops.toml (`afasa-ops init` + the keys a run needs); any earlier demo is removed
#   5. the stack up as found (AFASA's stubbed services, no afasa-ops), phase 1 to get Traefik
#      routing again, `doctor services --probe-writes` to show the stubs phase 4 would fail
#      on, then `afasa-ops run all --yes` (phase 2 adopts the stubbed routes, phase 3 builds
#      and boots afasa-ops' services, phase 4 passes through Traefik) and the report
# `make demo-down` removes the stack, its volumes, the sandbox and the gate.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=.demo
PY=.venv/bin/python
say() { printf '\n==> %s\n' "$*" >&2; }

say "Docker engine"
bash scripts/docker-engine.sh

say "Compose v2 (the docker compose plugin, pinned; afasa-ops prefers it over v1)"
bash scripts/compose-v2.sh

say "images (compose/images/build.sh: reused when present)"
bash compose/images/build.sh

bash scripts/demo-down.sh >/dev/null 2>&1 || true
mkdir -p "$DEMO"
socket=/var/run/docker.sock
min_api="$(docker version --format '{{.Server.MinAPIVersion}}')"
if [ "${AFASA_DEMO_GATE:-1}" = 1 ] && [ "$(printf '%s\n1.44\n' "$min_api" | sort -V | head -n1)" != 1.44 ]; then
	say "engine's API floor is $min_api: starting the Docker 29.1 gate (API floor 1.44) in front of it"
	setsid nohup python3 tests/support/docker29_gate.py --listen "$PWD/$DEMO/docker29.sock" \
		--upstream /var/run/docker.sock >"$DEMO/gate.log" 2>&1 </dev/null &
	echo $! >"$DEMO/gate.pid"
	for _ in $(seq 1 50); do [ -S "$DEMO/docker29.sock" ] && break; sleep 0.1; done
	[ -S "$DEMO/docker29.sock" ] || { cat "$DEMO/gate.log" >&2; exit 1; }
	socket="$PWD/$DEMO/docker29.sock"
fi

say "sandbox repo of the reference stack in its before state"
"$PY" compose/sandbox.py create "$DEMO" --name afasa-ref --docker-socket "$socket"

say "the stack up, as found (traefik v3.6.0, DOCKER_API_VERSION hack, wrong provider network, stubs)"
"$PY" compose/sandbox.py up "$DEMO" --only postgres nats s3 traefik
"$PY" compose/sandbox.py up "$DEMO" --only ubibot thingsboard
# AFASA's application services as found: the stubs (compose/stubs/), built here.
"$PY" compose/sandbox.py up "$DEMO" --no-wait

set -a
# shellcheck disable=SC1091
. "$DEMO/ops.env"
set +a
export DOCKER_HOST="unix://$socket"
ops() { .venv/bin/afasa-ops --config "$DEMO/afasa-ops.toml" "$@"; }

say "afasa-ops run phase1 --yes (Traefik routes again, so the services can be probed)"
ops run phase1 --yes

say "afasa-ops doctor services --probe-writes (the stubs phase 4 would fail on; exit 3 expected)"
ops doctor services --probe-writes || true

say "afasa-ops run all --yes"
status=0
ops run all --yes || status=$?

say "afasa-ops report"
ops report || true
if [ "$status" -ne 0 ]; then
	echo "demo: run all exited $status (see the report above and $DEMO/afasa-ref/.afasa-ops/)" >&2
fi
exit "$status"
