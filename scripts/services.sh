#!/usr/bin/env bash
# Make sure the services the tests talk to are up: PostgreSQL on 127.0.0.1:5432 and NATS with
# JetStream on 127.0.0.1:4222. Starts them when installed but stopped; says so when missing.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  else
    echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  fi
fi
if ! port_open 4222; then
  if [ -x /usr/sbin/nats-server ]; then
    echo "starting NATS with JetStream" >&2
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  else
    echo "nats-server is not installed (apt-get install nats-server)" >&2
  fi
fi
for _ in $(seq 1 50); do
  port_open 5432 && port_open 4222 && exit 0
  sleep 0.2
done
echo "services not all up: PostgreSQL 5432 $(port_open 5432 && echo up || echo down), NATS 4222 $(port_open 4222 && echo up || echo down)" >&2
