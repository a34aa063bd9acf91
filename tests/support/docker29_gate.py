"""A Unix-socket proxy that makes an older Docker engine look like Docker Engine 29.1.

Docker 29.0/29.1 raised the engine's API floor to 1.44 (max 1.52). Clients that pin an
older version, such as Traefik <= v3.6.0 with its fixed API 1.24, are refused with HTTP 400,
which is the production incident afasa-ops repairs. No Docker 29 engine can be installed on
the machines where afasa-ops is tested (only Debian's 20.10, API 1.41, is reachable), so this
gate reproduces the API contract in front of the real engine:

* ``GET /version`` (with or without a ``/vX.Y`` prefix) answers the real engine's JSON with
  ``Version`` 29.1.x, ``ApiVersion`` 1.52 and ``MinAPIVersion`` 1.44;
* ``GET``/``HEAD /_ping`` carry ``Api-Version: 1.52``;
* a ``/vX.Y/`` prefix below 1.44 (or above 1.52) is refused exactly as Docker 29.1 does;
* everything else is forwarded byte for byte, its prefix rewritten to the upstream's own API
  version, streaming responses and hijacked (``Upgrade: tcp``) connections included.
  Requests without a prefix pass through unchanged.

Run it standalone::

    python tests/support/docker29_gate.py --listen /run/docker29.sock \\
        --upstream /var/run/docker.sock

or from tests: ``with Docker29Gate(listen, upstream): ...`` (it serves from a thread).
Only the Python standard library is used, so it runs before the project is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

ENGINE_VERSION = "29.1.3"
API_VERSION = "1.52"
MIN_API_VERSION = "1.44"

_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(?=/|$|\?)")
_MAX_HEAD = 64 * 1024
_CHUNK = 64 * 1024


def _vtuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".", 1)
    return int(major), int(minor)


@dataclass
class Request:
    """One parsed HTTP/1.x request head."""

    method: str
    target: str
    http_version: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def keep_alive(self) -> bool:
        """Whether the client lets the connection carry another request (RFC 9112 9.3)."""
        tokens = {t.strip().lower() for t in (self.header("Connection") or "").split(",")}
        if self.http_version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def encode(self, extra: Iterable[tuple[str, str]] = (), drop: Iterable[str] = ()) -> bytes:
        dropped = {d.lower() for d in drop}
        lines = [f"{self.method} {self.target} {self.http_version}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in dropped]
        lines += [f"{k}: {v}" for k, v in extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_request_head(raw: bytes) -> Request:
    text = raw.decode("latin-1")
    request_line, *header_lines = text.split("\r\n")
    method, target, http_version = request_line.split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        if not line:
            continue
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return Request(method, target, http_version, headers)


def split_response(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Split a complete HTTP response into status line, headers and decoded body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines if ln)]
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
        body = _dechunk(body)
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    return status, headers, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(out)
        out += data[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def refusal_message(requested: str, minimum: str = MIN_API_VERSION) -> str:
    """The exact message Docker 29.1 sends for a client version below its floor."""
    return (
        f"client version {requested} is too old. Minimum supported API version is "
        f"{minimum}, please upgrade your client to a newer version"
    )


def _too_new_message(requested: str) -> str:
    return f"client version {requested} is too new. Maximum supported API version is {API_VERSION}"


class Docker29Gate:
    """Serve the Docker 29.1 API contract on ``listen`` in front of the engine at ``upstream``.

    ``start()`` runs the server on a private event loop in a daemon thread and returns once
    the socket accepts connections; ``stop()`` closes it. Also usable as a context manager.
    """

    def __init__(
        self,
        listen: str,
        upstream: str = "/var/run/docker.sock",
        engine_version: str = ENGINE_VERSION,
        min_api_version: str = MIN_API_VERSION,
    ) -> None:
        """``min_api_version`` models the daemon-side workaround: a 29.x engine started with
        ``DOCKER_MIN_API_VERSION=1.24`` (or ``"min-api-version"`` in daemon.json) reports
        and enforces that floor instead of 1.44."""
        self.listen = listen
        self.min_api_version = min_api_version
        self.upstream = upstream
        self.engine_version = engine_version
        self.upstream_api: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        """Learn the upstream's API version and start listening (inside a running loop)."""
        status, _, body = await self._roundtrip(
            Request("GET", "/version", "HTTP/1.1", [("Host", "docker")])
        )
        if " 200 " not in f"{status} ":
            raise RuntimeError(f"upstream {self.upstream} answered /version with {status!r}")
        self.upstream_api = str(json.loads(body)["ApiVersion"])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.listen)
        self._server = await asyncio.start_unix_server(
            self._handle, path=self.listen, limit=_MAX_HEAD
        )
        os.chmod(self.listen, 0o660)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.listen)

    def start(self, timeout: float = 10.0) -> Self:
        """Serve from a background thread; raise if the gate cannot start."""
        self._thread = threading.Thread(target=self._run, name="docker29-gate", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"docker29 gate did not start within {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"docker29 gate failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.open())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.close())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    # ---- HTTP handling ---------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                request = parse_request_head(head)
                if not await self._dispatch(request, reader, writer):
                    return
        except (ConnectionError, OSError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _dispatch(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; True when the connection may carry another one."""
        path = request.target
        match = _PREFIX.match(path)
        if match:
            requested = f"{match.group(1)}.{match.group(2)}"
            if _vtuple(requested) < _vtuple(self.min_api_version):
                message = refusal_message(requested, self.min_api_version)
                await self._send_json(writer, 400, {"message": message})
                return False
            if _vtuple(requested) > _vtuple(API_VERSION):
                await self._send_json(writer, 400, {"message": _too_new_message(requested)})
                return False
            path = path[match.end() :] or "/"
            request.target = f"/v{self.upstream_api}{path}"
        bare = path.split("?", 1)[0].rstrip("/")
        if bare in ("/version", "/_ping") and request.method in ("GET", "HEAD"):
            await self._discard_body(request, reader)
            keep_alive = request.keep_alive()
            if bare == "/version":
                await self._answer_version(request, writer, keep_alive)
            else:
                await self._answer_ping(request, writer, keep_alive)
            return keep_alive
        await self._forward(request, reader, writer)
        return False

    async def _answer_version(
        self, request: Request, writer: asyncio.StreamWriter, keep_alive: bool
    ) -> None:
        status, headers, body = await self._roundtrip(request)
        if " 200 " in f"{status} ":
            info = json.loads(body)
            info.update(
                Version=self.engine_version,
                ApiVersion=API_VERSION,
                MinAPIVersion=self.min_api_version,
            )
            for component in info.get("Components") or []:
                if component.get("Name") == "Engine":
                    component["Version"] = self.engine_version
                    details = component.setdefault("Details", {})
                    details.update(ApiVersion=API_VERSION, MinAPIVersion=self.min_api_version)
            body = (json.dumps(info) + "\n").encode()
        headers = self._api_headers(headers, keep_alive)
        await self._send(writer, status, headers, body, request.method)

    async def _answer_ping(
        self, request: Request, writer: asyncio.StreamWriter, keep_alive: bool
    ) -> None:
        status, headers, body = await self._roundtrip(request)
        headers = self._api_headers(headers, keep_alive)
        await self._send(writer, status, headers, body, request.method)

    @staticmethod
    def _api_headers(headers: list[tuple[str, str]], keep_alive: bool) -> list[tuple[str, str]]:
        skip = {"api-version", "content-length", "connection", "keep-alive"}
        kept = [(k, v) for k, v in headers if k.lower() not in skip]
        kept.append(("Api-Version", API_VERSION))
        if not keep_alive:
            kept.append(("Connection", "close"))
        return kept

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        method: str = "GET",
    ) -> None:
        length = str(len(body))
        if method == "HEAD":
            # HEAD answers announce the GET body's length but carry none.
            length = next((v for k, v in headers if k.lower() == "content-length"), "0")
            body = b""
        lines = [status, *(f"{k}: {v}" for k, v in headers), f"Content-Length: {length}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    async def _send_json(self, writer: asyncio.StreamWriter, code: int, payload: object) -> None:
        reason = {400: "Bad Request"}.get(code, "")
        body = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        headers = [
            ("Api-Version", API_VERSION),
            ("Content-Type", "application/json"),
            ("Connection", "close"),
        ]
        await self._send(writer, f"HTTP/1.1 {code} {reason}", headers, body)

    @staticmethod
    async def _discard_body(request: Request, reader: asyncio.StreamReader) -> None:
        length = request.header("Content-Length")
        if length and int(length) > 0:
            await reader.readexactly(int(length))

    async def _roundtrip(self, request: Request) -> tuple[str, list[tuple[str, str]], bytes]:
        """Send a body-less request upstream on its own connection; read the whole answer."""
        up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
        try:
            up_writer.write(
                request.encode(extra=[("Connection", "close")], drop=["connection", "keep-alive"])
            )
            await up_writer.drain()
            raw = await up_reader.read()
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()
        return split_response(raw)

    async def _forward(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay one request and everything after it, raw, in both directions.

        A plain request is sent with ``Connection: close`` so the engine ends the exchange
        after its (possibly endless, e.g. /events) answer and no second request on this
        connection can slip upstream without its prefix being checked. Upgrade requests
        (attach, exec start) keep their headers: the engine hijacks the connection and the
        byte relay carries the raw stream.
        """
        up_reader, up_writer = await asyncio.open_unix_connection(self.upstream, limit=_CHUNK)
        if request.header("Upgrade"):
            up_writer.write(request.encode())
        else:
            up_writer.write(
                request.encode(extra=[("Connection", "close")], drop=["connection", "keep-alive"])
            )
        await up_writer.drain()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(_CHUNK):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()
            except (ConnectionError, OSError):
                pass

        to_upstream = asyncio.create_task(pump(reader, up_writer))
        try:
            await pump(up_reader, writer)
        finally:
            to_upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await to_upstream
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--listen", required=True, help="Unix socket to serve (e.g. /run/docker29.sock)"
    )
    parser.add_argument(
        "--upstream", default="/var/run/docker.sock", help="the real engine's socket"
    )
    parser.add_argument(
        "--engine-version", default=ENGINE_VERSION, help="Version to report (29.1.x)"
    )
    parser.add_argument(
        "--min-api-version",
        default=MIN_API_VERSION,
        help="API floor (1.24 models DOCKER_MIN_API_VERSION=1.24 on a 29.x daemon)",
    )
    args = parser.parse_args(argv)
    gate = Docker29Gate(args.listen, args.upstream, args.engine_version, args.min_api_version)

    async def serve() -> None:
        await gate.open()
        print(
            f"docker29-gate: {args.listen} -> {args.upstream} "
            f"(engine API {gate.upstream_api} shown as {args.engine_version}, "
            f"API {API_VERSION}, min {gate.min_api_version})",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await gate.close()

    try:
        asyncio.run(serve())
    except (OSError, RuntimeError) as exc:
        print(f"docker29-gate: error: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
