"""Harness for worker tests: a config file for a private NATS server and a migrated database,
workers run as real `afasa-ops worker ...` processes (so kill -9 is real), and probes that read
JetStream and the database from outside."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.platform_db import PlatformDb
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def write_config(
    path: Path,
    db: PlatformDb,
    nats_url: str,
    *,
    storage_url: str,
    stream: str = "AFASA",
    workers: dict[str, Any] | None = None,
    extra: str = "",
    storage_lines: list[str] | None = None,
) -> Path:
    w = {
        "ack_wait_s": 3.0,
        "max_deliver": 3,
        "backoff_s": [0.2, 0.5],
        "grace_s": 20.0,
        "concurrency": 2,
        "relay_interval_s": 0.1,
        "metrics_host": "127.0.0.1",
    }
    w.update(workers or {})
    lines = [
        "[repo]",
        'path = "."',
        "[database]",
        f'admin_dsn = "{db.admin_dsn}"',
        f'app_dsn = "{db.app_dsn}"',
        f'app_role = "{db.app_role}"',
        "[nats]",
        f'url = "{nats_url}"',
        f'stream = "{stream}"',
        "[storage]",
        f'url = "{storage_url}"',
        *(storage_lines or []),
        "[workers]",
        *[f"{k} = {json.dumps(v)}" for k, v in w.items()],
        extra,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class WorkerProcess:
    config: Path
    kind: str
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        argv = [sys.executable, "-m", "afasa_ops", "--config", str(self.config), "worker",
                self.kind, *self.args]  # fmt: skip
        if self.kind != "sync" or "--once" not in self.args:
            argv += ["--port", str(self.port)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        return self

    def wait_healthy(self, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}: {self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/healthz", timeout=1
                ) as r:
                    doc: dict[str, Any] = json.loads(r.read())
                    if doc.get("ok"):
                        return doc
                    last = doc
            except Exception as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"worker not healthy: {last}; {self.logs()[-3000:]}")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def terminate(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def wait(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    """Poll until predicate() is truthy (a deadline for waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def admin_rows(admin_dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]


@contextmanager
def table_locked(admin_dsn: str, table: str = "detections") -> Iterator[Callable[[], None]]:
    """Hold an ACCESS EXCLUSIVE lock on `table` until release() or the block's end. A report
    job reads `detections` first, so it stays `processing` for as long as a test needs,
    whatever this machine's speed."""
    import psycopg

    conn = psycopg.connect(admin_dsn)
    try:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield conn.commit
    finally:
        conn.close()


def admin_scalar(admin_dsn: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    rows = admin_rows(admin_dsn, sql, params)
    return rows[0][0] if rows else None


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


async def _subject_messages(url: str, stream: str, subject: str) -> list[Any]:
    """Read by sequence (STREAM.MSG.GET next_by_subj): deterministic, consumes nothing."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        out: list[Any] = []
        seq = 1
        while True:
            try:
                msg = await js.get_msg(stream, seq=seq, subject=subject, next=True)
            except NotFoundError:
                return out
            out.append(msg)
            seq = int(msg.seq or seq) + 1
    finally:
        await nc.close()


def subject_messages(url: str, subject: str, stream: str = "AFASA") -> list[Any]:
    """Every message the stream holds on one subject (data and headers)."""
    return list(run_async(_subject_messages(url, stream, subject)))


async def _publish(url: str, subject: str, body: bytes, msg_id: str | None) -> bool:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        ack = await js.publish(subject, body, headers=headers)
        return not ack.duplicate
    finally:
        await nc.close()


def publish_raw(url: str, subject: str, body: bytes, msg_id: str | None = None) -> bool:
    return bool(run_async(_publish(url, subject, body, msg_id)))
