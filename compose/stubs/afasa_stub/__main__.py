"""`python -m afasa_stub tb-adapter|report`: one stub service on STUB_HOST:STUB_PORT
(0.0.0.0:8000, the port AFASA's services listen on). `all` serves both route tables on one
port, as Traefik's prefix rules would split them (for tests and a quick look without Traefik)."""

from __future__ import annotations

import os
import signal
import sys
import threading

from afasa_stub import nats_logger, report, tb_adapter
from afasa_stub.common import Routes, log, serve


def both() -> Routes:
    table = Routes("afasa-stubs")
    table.table = tb_adapter.routes().table + report.routes().table
    return table


SERVICES = {"tb-adapter": tb_adapter.routes, "report": report.routes, "all": both}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m afasa_stub {'|'.join(SERVICES)}", file=sys.stderr)
        return 2
    name = argv[0]
    host = os.environ.get("STUB_HOST", "0.0.0.0")
    port = int(os.environ.get("STUB_PORT", "8000"))
    server = serve(SERVICES[name](), host, port)
    stop = threading.Event()
    if name in ("report", "all"):
        nats_logger.start(os.environ.get("NATS_URL", "nats://nats:4222"), name, stop)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log(name, f"listening on {host}:{server.server_address[1]}")
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
