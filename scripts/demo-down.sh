#!/usr/bin/env bash
# `make demo-down`: remove the demo stack (containers, networks, volumes), the sandbox folder
# and the Docker 29.1 gate process that `make demo` started.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=.demo
if [ -f "$DEMO/sandbox.json" ] && [ -x .venv/bin/python ]; then
	.venv/bin/python compose/sandbox.py down "$DEMO"
fi
if [ -f "$DEMO/gate.pid" ]; then
	kill "$(cat "$DEMO/gate.pid")" 2>/dev/null || true
fi
rm -rf "$DEMO"
echo "demo removed" >&2
