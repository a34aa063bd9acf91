"""The command server: import afasa-ops once, then fork a process per command.

The server itself never runs a command. It stays single-threaded (fork copies one thread) and
holds no state a command could see: each command is a fork of the same freshly-imported
process, which takes the caller's directory, environment, umask and standard streams before
the CLI starts. The server answers on a Unix socket only its own user can open (the folder is
0700, and the peer's uid is checked), reports each command's exit status to its caller, and
leaves when stopped, when idle for `idle_s`, or when the installed code changes under it.

    python -c "from afasa_ops.daemon.server import main; main()" --socket PATH [--idle SECONDS]

(not `-m`: click names the program after `__main__`'s package, and commands must say
`afasa-ops`, as they do when run directly.)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import io
import json
import os
import pkgutil
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from afasa_ops.daemon.client import HANDSHAKE_TIMEOUT_S, LIMITS, PROTOCOL, read_line

# Not preloaded: the API (FastAPI; `serve` never goes through the server) and the entry points.
_NOT_PRELOADED = ("afasa_ops.api", "afasa_ops.__main__")
_MAX_REQUEST = 4 * 1024 * 1024
# What the drivers import inside functions, and httpx at its first transport or request.
_LIBRARIES_LOADED_ON_DEMAND = (
    "psycopg", "httpx", "httpcore", "h11", "yaml", "certifi", "encodings.idna",
)  # fmt: skip


def preload() -> None:
    """Import what commands import: the CLI, every step kind, driver and their libraries."""
    import afasa_ops
    from afasa_ops.cli import command

    command()  # typer's click tree, built once
    for info in pkgutil.walk_packages(afasa_ops.__path__, "afasa_ops.", onerror=lambda _: None):
        if not info.name.startswith(_NOT_PRELOADED):
            _import_if_installed(info.name)
    for library in _LIBRARIES_LOADED_ON_DEMAND:
        _import_if_installed(library)
    from afasa_ops.compose.wheelhouse import source_fingerprint

    # The hash of the package's files a rebuild check compares (tens of milliseconds): they
    # cannot change under a fresh server, which code_stamp() checks before every command.
    source_fingerprint()


def _import_if_installed(name: str) -> None:
    """An install without an extra (say, no [service]) lacks what some modules import: those
    load in the command that needs them, and it says what to install."""
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "afasa_ops":
            raise


def code_stamp() -> tuple[tuple[str, int, int], ...]:
    """What the loaded code came from: afasa-ops' files (modules and data; bytecode caches
    left out) and the folders packages install into.

    Installing, upgrading or removing a package changes its site-packages folder; editing a
    file of an editable install changes the file. Either makes the server stale: it hands
    that command back to its caller and starts again on the new code."""
    import afasa_ops

    stamp = []
    pending = list(afasa_ops.__path__)
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                else:
                    st = entry.stat()
                    stamp.append((entry.path, st.st_mtime_ns, st.st_size))
    for folder in sys.path:
        if folder.endswith(("site-packages", "dist-packages")) and os.path.isdir(folder):
            st = os.stat(folder)
            stamp.append((folder, st.st_mtime_ns, st.st_size))
    return tuple(sorted(stamp))


@dataclass
class Server:
    path: str
    idle_s: float
    stamp: tuple[tuple[str, int, int], ...] = ()
    started_at: float = field(default_factory=time.time)
    children: dict[int, socket.socket] = field(default_factory=dict)
    stopping: bool = False
    restart: bool = False
    _inode: int = 0  # the socket file this server made

    def serve(self) -> None:
        listener: socket.socket | None = self._listen()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop_signal)
        signal.signal(signal.SIGINT, self._stop_signal)
        last_activity = time.monotonic()
        try:
            while listener is not None or self.children:
                if self.stopping and listener is not None:
                    # New commands run in their callers' processes at once, while the ones
                    # running here finish.
                    self._close(listener)
                    listener = None
                    continue
                timeout = None if self.children else self._idle_left(last_activity)
                if timeout is not None and timeout <= 0:
                    _log("idle: leaving")
                    self.stopping = True
                    continue
                waits = [wake_r] if listener is None else [listener, wake_r]
                ready, _, _ = select.select(waits, [], [], timeout)
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                self._reap()
                if listener is not None and listener in ready and not self.stopping:
                    conn, _ = listener.accept()
                    last_activity = time.monotonic()
                    self._answer(conn, listener, (wake_r, wake_w))
        finally:
            if listener is not None:
                self._close(listener)
            _log("stopped")

    def _close(self, listener: socket.socket) -> None:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:  # not a newer server's socket
                os.unlink(self.path)
        listener.close()

    def _listen(self) -> socket.socket:
        folder = os.path.dirname(self.path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # control.start only gets here when no server answers on it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        listener.listen(64)
        self._inode = os.stat(self.path).st_ino
        _log(f"listening on {self.path} (pid {os.getpid()})")
        return listener

    def _idle_left(self, last_activity: float) -> float | None:
        if self.idle_s <= 0:
            return None
        return last_activity + self.idle_s - time.monotonic()

    def _stop_signal(self, _signum: int, _frame: Any) -> None:
        self.stopping = True

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                conn.sendall(f"exit {code if code >= 0 else 128 - code}\n".encode())
            conn.close()

    def _answer(self, conn: socket.socket, listener: socket.socket, wake: tuple[int, int]) -> None:
        fds: list[int] = []
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT_S)
            if _peer_uid(conn) != os.getuid():
                conn.close()
                return
            request, fds = _read_request(conn)
            op = request.get("op")
            if op == "ping":
                conn.sendall(json.dumps(self._describe()).encode() + b"\n")
            elif op == "stop":
                self.stopping = True
                conn.sendall(b"stopping\n")
            elif op == "run" and self.stamp != code_stamp():
                _log("the installed code changed: starting again on it")
                self.stopping = self.restart = True
                conn.sendall(b"stale\n")
            elif op == "run" and len(fds) == 3:
                pid = os.fork()
                if pid == 0:
                    others = list(self.children.values())
                    _command(conn, [listener, *others], wake, fds, request)  # never returns
                self.children[pid] = conn
                conn.sendall(f"pid {pid}\n".encode())
                return  # the connection stays open for the exit status
            else:
                conn.sendall(b"refused\n")
        except (OSError, ValueError) as exc:
            _log(f"a request failed: {type(exc).__name__}")
        finally:
            for fd in fds:
                os.close(fd)
        conn.close()

    def _describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "idle_s": self.idle_s,
            "commands_running": len(self.children),
            "fresh": self.stamp == code_stamp(),
        }


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    head, fds, _flags, _addr = socket.recv_fds(conn, 4, 3)
    while len(head) < 4:
        more = conn.recv(4 - len(head))
        if not more:
            raise ValueError("short request")
        head += more
    size = int.from_bytes(head, "big")
    if size > _MAX_REQUEST:
        raise ValueError("request too large")
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("short request")
        body += chunk
    request = json.loads(body)
    if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
        raise ValueError("not an afasa-ops request")
    return request, list(fds)


def _command(
    conn: socket.socket,
    inherited: list[socket.socket],
    wake: tuple[int, int],
    fds: list[int],
    request: dict[str, Any],
) -> None:
    """In the forked process: become the caller's command, run it, exit with its code."""
    code = 1
    try:
        for sock in inherited:  # the listener, and other callers' connections
            sock.close()
        signal.set_wakeup_fd(-1)
        for fd in wake:
            os.close(fd)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()  # out of the server's session: a signal to the server is not one to us
        try:
            go = read_line(conn)
        except (OSError, ValueError):
            go = ""
        if go != "go":
            os._exit(0)  # the caller gave up before the start: it runs the command itself
        conn.close()
        _take_over(fds, request)
        code = _run_cli(list(request["argv"]))
    except KeyboardInterrupt:  # Ctrl-C before the CLI took over: as the CLI reports it
        with contextlib.suppress(OSError):
            os.write(2, b"interrupted\n")
    except BaseException:  # the last resort of a process that must report
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _take_over(fds: list[int], request: dict[str, Any]) -> None:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    _take_limits(dict(request.get("limits") or {}))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})
    sys.stdin = _stream(0, "r", line=False)
    sys.stdout = _stream(1, "w", line=os.isatty(1))
    sys.stderr = _stream(2, "w", line=True, errors="backslashreplace")

    from afasa_ops.redact import redactor

    redactor.reset()  # what it learned is the server's environment; it learns the caller's


def _take_limits(limits: dict[str, int]) -> None:
    """The caller's soft limits, where the server's hard limits allow them (a soft limit
    above the hard one is refused by the kernel for the caller's own process too)."""
    for name, soft in limits.items():
        if name not in LIMITS:
            continue
        which = getattr(resource, name)
        _, hard = resource.getrlimit(which)
        if hard == resource.RLIM_INFINITY or (soft != resource.RLIM_INFINITY and soft <= hard):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, (int(soft), hard))


def _stream(fd: int, mode: str, *, line: bool, errors: str = "strict") -> io.TextIOWrapper:
    """A text stream on the caller's fd, buffered as Python buffers its own standard streams
    (line by line on a terminal, and stderr always)."""
    encoding = (sys.stdout.encoding if sys.stdout else None) or "utf-8"
    raw = io.FileIO(fd, mode, closefd=False)
    buffered: io.BufferedReader | io.BufferedWriter = (
        io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    )
    return io.TextIOWrapper(buffered, encoding=encoding, errors=errors, line_buffering=line)


def _run_cli(argv: list[str]) -> int:
    import atexit

    from afasa_ops.cli import main

    sys.argv = ["afasa-ops", *argv]
    try:
        main()
        return 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside the root command's own handling (say, while parsing)
        sys.stderr.write("interrupted\n")
        return 1
    finally:
        atexit._run_exitfuncs()


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} afasa-ops daemon: {message}", flush=True)


def server_argv(path: str, idle_s: float) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from afasa_ops.daemon.server import main; main()",
        "--socket",
        path,
        "--idle",
        str(idle_s),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="afasa-ops daemon server")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--idle", type=float, default=900.0, help="seconds; 0: never")
    args = parser.parse_args(argv)
    preload()
    server = Server(path=args.socket, idle_s=args.idle, stamp=code_stamp())
    gc.collect()
    gc.freeze()  # what is loaded stays in pages the forked commands share
    server.serve()
    if server.restart:
        os.execv(sys.executable, server_argv(args.socket, args.idle))
