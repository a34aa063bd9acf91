#!/usr/bin/env bash
# Run the whole suite. The integration tests need PostgreSQL and NATS JetStream on this machine
# (started here when they are down) and a Docker engine with the stack's local images
# (installed, started and built here when missing); under CI=true a missing service fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/ci-docker.sh
exec .venv/bin/python -m pytest "$@"
