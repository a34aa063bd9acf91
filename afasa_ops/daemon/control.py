"""Start, stop and describe the user's command server (`afasa-ops daemon ...`)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from afasa_ops.daemon.client import (
    HANDSHAKE_TIMEOUT_S,
    PROTOCOL,
    read_line,
    socket_dir,
    socket_path,
    trusted_socket,
)
from afasa_ops.daemon.server import server_argv
from afasa_ops.errors import AfasaOpsError, ConfigError

START_TIMEOUT_S = 60.0
DEFAULT_IDLE_S = 900.0
# AF_UNIX paths are limited to 108 bytes, the terminating NUL included.
_MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class DaemonStatus:
    socket: str
    running: bool
    pid: int | None = None
    started_at: float | None = None
    idle_s: float | None = None
    commands_running: int = 0
    fresh: bool | None = None
    log: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def log_path() -> str:
    return os.path.join(socket_dir(), "daemon.log")


def status() -> DaemonStatus:
    path = socket_path()
    if not os.path.exists(path):
        return DaemonStatus(socket=path, running=False)
    if not trusted_socket(path):
        return DaemonStatus(
            socket=path,
            running=False,
            note=f"{path} is not a socket of this user in a private folder: not used",
        )
    try:
        doc = _ask(path, "ping")
    except (OSError, ValueError):
        return DaemonStatus(socket=path, running=False, note="a stale socket; nothing answers")
    return DaemonStatus(
        socket=path,
        running=True,
        pid=int(doc["pid"]),
        started_at=float(doc["started_at"]),
        idle_s=float(doc["idle_s"]),
        commands_running=int(doc["commands_running"]),
        fresh=bool(doc["fresh"]),
        log=log_path(),
    )


def start(idle_s: float = DEFAULT_IDLE_S) -> DaemonStatus:
    """A running, fresh server: the one already there, or a new one."""
    current = status()
    if current.running and current.fresh:
        return current
    if current.running:
        stop()
    path = socket_path()
    if len(path.encode()) > _MAX_SOCKET_PATH:
        raise ConfigError(
            f"the command server's socket path is too long for a Unix socket"
            f" ({len(path.encode())} bytes, at most {_MAX_SOCKET_PATH}): {path}",
            hint="set XDG_CACHE_HOME to a shorter folder",
        )
    try:
        Path(socket_dir()).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(socket_dir(), 0o700)
        log = open(log_path(), "ab")  # noqa: SIM115 - closed below, once the server has it
        os.chmod(log_path(), 0o600)
    except OSError as exc:
        raise AfasaOpsError(
            f"cannot prepare the command server's folder {socket_dir()}: {exc.strerror or exc}",
            hint="set XDG_CACHE_HOME to a folder of yours",
        ) from exc
    with log:
        process = subprocess.Popen(
            server_argv(path, idle_s),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AfasaOpsError(
                f"the command server exited with {process.returncode} while starting",
                hint=f"see {log_path()}",
            )
        current = status()
        if current.running and current.pid == process.pid:
            return current
        time.sleep(0.05)
    process.terminate()
    raise AfasaOpsError(
        f"the command server did not answer within {START_TIMEOUT_S:.0f} s",
        hint=f"see {log_path()}",
    )


def stop(timeout_s: float = 30.0) -> DaemonStatus:
    """No server: the running one is told to leave once its commands have finished."""
    current = status()
    if not current.running:
        return current
    with contextlib.suppress(OSError, ValueError):
        _ask(current.socket, "stop")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and current.pid is not None and _alive(current.pid):
        time.sleep(0.05)
    if current.pid is not None and _alive(current.pid):
        raise AfasaOpsError(
            f"the command server (pid {current.pid}) is still finishing"
            f" {current.commands_running} command(s)",
            hint="wait for them, or stop it with kill",
        )
    return DaemonStatus(socket=current.socket, running=False, note=f"stopped pid {current.pid}")


def _ask(path: str, op: str) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        conn.connect(path)
        body = json.dumps({"protocol": PROTOCOL, "op": op}).encode()
        conn.sendall(len(body).to_bytes(4, "big") + body)
        reply = read_line(conn)
    if op == "ping":
        doc = json.loads(reply)
        if not isinstance(doc, dict):
            raise ValueError("not a ping reply")
        return doc
    return {"reply": reply}


def _alive(pid: int) -> bool:
    from afasa_ops.runbook.journal import pid_alive

    if not pid_alive(pid):
        return False
    # A zombie (our own child, not yet reaped) is not running.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True
