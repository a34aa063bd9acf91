"""The report service's NATS subscriber as found: it subscribes to `afasa.report.requested`
and only logs what arrives. Core NATS protocol over a socket (no client library), so the stub
needs nothing beyond the standard library; it reconnects when the server goes away."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse

from afasa_stub.common import log

SUBJECT = "afasa.report.requested"


def run_forever(url: str, service: str, stop: threading.Event) -> None:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    while not stop.is_set():
        try:
            _session(host, port, service, stop)
        except OSError as exc:
            log(service, f"nats {host}:{port}: {type(exc).__name__}: {exc}; retrying")
        stop.wait(2.0)


def _session(host: str, port: int, service: str, stop: threading.Event) -> None:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.settimeout(1.0)  # wake up now and then to see whether to stop
        reader = _Lines(sock, stop)
        reader.line()  # INFO {...}
        connect = {"verbose": False, "pedantic": False, "name": f"{service}-stub"}
        sock.sendall(f"CONNECT {json.dumps(connect)}\r\nSUB {SUBJECT} 1\r\nPING\r\n".encode())
        log(service, f"nats: subscribed to {SUBJECT}")
        while not stop.is_set():
            line = reader.line()
            if line.startswith("PING"):
                sock.sendall(b"PONG\r\n")
            elif line.startswith("MSG "):
                size = int(line.split()[-1])
                payload = reader.exactly(size + 2)[:size]
                # TODO(audit): generate the report. It only prints.
                log(service, f"nats: received {SUBJECT}: {payload[:200].decode(errors='replace')}")
            elif line.startswith("-ERR"):
                raise OSError(line)


class _Lines:
    """Protocol lines and payloads from a socket with a short timeout."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.buffer = b""

    def _fill(self) -> None:
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise ConnectionResetError("server closed the connection")
            self.buffer += chunk
            return

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            if self.stop.is_set():
                return ""
            self._fill()
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        return raw.decode(errors="replace")

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if self.stop.is_set():
                return b""
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def start(url: str, service: str, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run_forever, args=(url, service, stop), daemon=True)
    thread.start()
    return thread
