"""The `afasa-ops` program: hand the command to the user's command server, else run it here.

This module is all a command imports before it knows whether a server is running, so it
imports only the standard library's smallest parts. Without a usable server (none started,
one of another user, one whose code is older than the installed files, or
AFASA_OPS_DAEMON=off) the command runs in this process, exactly as if there were no server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import sys
from collections.abc import Sequence
from types import FrameType

PROTOCOL = "afasa-ops-daemon/1"
DISABLE_ENV = "AFASA_OPS_DAEMON"
# serve and worker run for days under a supervisor that signals them; daemon manages the server.
DIRECT_COMMANDS = frozenset({"serve", "worker", "daemon"})
_ROOT_OPTIONS_WITH_VALUE = frozenset({"--config", "-c"})
# Until the server says it has forked the command: a server that cannot answer in this time is
# not used, and the command runs here (the forked process waits for our go, so it never also runs).
HANDSHAKE_TIMEOUT_S = 5.0
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
LOST_SERVER_EXIT = 1
# The caller's soft limits its command takes over (`ulimit -n`, `-c`, `-f`, `-s`, `-v`, `-u`).
LIMITS = (
    "RLIMIT_NOFILE",
    "RLIMIT_CORE",
    "RLIMIT_FSIZE",
    "RLIMIT_STACK",
    "RLIMIT_AS",
    "RLIMIT_NPROC",
)


def main() -> None:
    code = run_through_server(sys.argv[1:])
    if code is None:
        from afasa_ops.cli import main as run_here

        run_here()
        return
    sys.stdout.flush()
    os._exit(code)  # the command's process already flushed and cleaned up; nothing here to do


def run_through_server(argv: Sequence[str]) -> int | None:
    """The command's exit code, or None when it must run in this process."""
    if _disabled() or command_of(argv) in DIRECT_COMMANDS:
        return None
    path = socket_path()
    if not trusted_socket(path):
        return None
    try:
        conn = _connect(path)
    except OSError:
        return None
    with conn:
        pid = _hand_over(conn, argv)
        if pid is None:
            return None
        return _wait(conn, pid)


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand's name: the first word that is neither a root option nor its value."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _ROOT_OPTIONS_WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def socket_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "afasa-ops")


def socket_path() -> str:
    """One server per user and installation: the key names this package and its environment."""
    package = os.path.realpath(sys.modules["afasa_ops"].__path__[0])
    key = hashlib.sha256(f"{package}\0{sys.prefix}".encode()).hexdigest()[:12]
    return os.path.join(socket_dir(), f"daemon-{key}.sock")


def trusted_socket(path: str) -> bool:
    """Ours alone: the command's environment holds secrets, and it goes down this socket."""
    uid = os.getuid()
    try:
        folder = os.lstat(os.path.dirname(path))
        sock = os.lstat(path)
    except OSError:
        return False
    private = stat.S_ISDIR(folder.st_mode) and not folder.st_mode & 0o077
    return private and folder.st_uid == uid and stat.S_ISSOCK(sock.st_mode) and sock.st_uid == uid


def _disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() in {"0", "off", "false", "no"}


def _connect(path: str) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(HANDSHAKE_TIMEOUT_S)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        raise
    return conn


def _hand_over(conn: socket.socket, argv: Sequence[str]) -> int | None:
    """Send the command with our stdin, stdout and stderr; the forked process's pid, or None."""
    try:
        request = {
            "protocol": PROTOCOL,
            "op": "run",
            "argv": list(argv),
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "umask": _umask(),
            "limits": _limits(),
        }
        body = json.dumps(request).encode()
        with _std_fds() as fds:
            socket.send_fds(conn, [len(body).to_bytes(4, "big")], fds)
        conn.sendall(body)
        reply = read_line(conn)
        if not reply.startswith("pid "):
            return None  # "stale": the server is going away; anything else: not for us
        pid = int(reply[4:])
        conn.sendall(b"go\n")
    except (OSError, ValueError):
        return None
    return pid


def _wait(conn: socket.socket, pid: int) -> int:
    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    before = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    conn.settimeout(None)
    try:
        reply = read_line(conn)
    except OSError:
        reply = ""
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    if reply.startswith("exit "):
        return int(reply[5:])
    sys.stderr.write(
        "error: the afasa-ops command server went away before the command finished"
        " (see `afasa-ops daemon status`)\n"
    )
    return LOST_SERVER_EXIT


def read_line(conn: socket.socket, limit: int = 65536) -> str:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("reply too long")
    return data.decode().strip()


def _limits() -> dict[str, int]:
    """The soft limits a command meets (open files, core size...), by resource name."""
    import resource

    return {name: resource.getrlimit(getattr(resource, name))[0] for name in LIMITS}


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class _std_fds:
    """0, 1 and 2, with /dev/null standing in for any the caller closed."""

    def __enter__(self) -> list[int]:
        self._opened: list[int] = []
        fds = []
        for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
            try:
                os.fstat(fd)
                fds.append(fd)
            except OSError:
                null = os.open(os.devnull, mode)
                self._opened.append(null)
                fds.append(null)
        return fds

    def __exit__(self, *exc: object) -> None:
        for fd in self._opened:
            os.close(fd)
