#!/usr/bin/env bash
# Run the whole suite. The integration tests need PostgreSQL and NATS JetStream on this machine
# (started here when they are down); under CI=true a missing service fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
exec .venv/bin/python -m pytest "$@"
