"""What the probes share: the target, the result, one authenticated request, and the
admin connection that observes effects."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afasa_ops.infra import http
from afasa_ops.infra.postgres import Timeouts, connect, translated
from afasa_ops.redact import redactor

EXCERPT_CHARS = 300

STUB = "stub"
WORKING = "working"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ProbeTarget:
    """Where and as whom to probe; routes may hold `{device_id}`."""

    base_url: str
    token: str
    tenant_id: str
    admin_dsn: str
    nats_url: str
    sync_route: str
    disable_route: str
    enable_route: str
    generate_route: str
    http_timeout_s: float = 15.0
    db_timeouts: Timeouts = field(default_factory=Timeouts)
    # How long to watch for an effect after a 2xx answer.
    settle_s: float = 3.0
    # A report request slower than this blocked the API on rendering.
    slow_s: float = 5.0
    # How long to wait for afasa.report.requested after the request.
    event_wait_s: float = 10.0


@dataclass
class ProbeResult:
    probe: str  # sync | device_state | report
    route: str
    verdict: str  # stub | working | inconclusive
    evidence: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def stub(self) -> bool:
        return self.verdict == STUB


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str
    body: Any
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def shown(self, method: str, route: str) -> str:
        return f"{method} {route} -> {self.status} in {self.elapsed_s:.2f}s: {self.excerpt}"


def call(target: ProbeTarget, method: str, route: str, body: Any = None) -> Answer:
    """One authenticated request; transport failures raise (HttpFailure)."""
    started = time.monotonic()
    response = http.request(
        method,
        target.base_url.rstrip("/") + route,
        timeout_s=target.http_timeout_s,
        what=f"{method} {route}",
        headers={"Authorization": f"Bearer {target.token}"},
        json=body,
    )
    elapsed = time.monotonic() - started
    text = " ".join(response.text.split())
    excerpt = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return Answer(response.status_code, redactor.redact(excerpt), parsed, elapsed)


# -- database observations ----------------------------------------------------------------


class Observer:
    """One autocommit admin connection for a probe's reads (the admin sees every row: RLS
    hides none), opened on first use and closed by the probe."""

    def __init__(self, target: ProbeTarget) -> None:
        self.target = target
        self._conn: Any = None

    def rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        dsn = self.target.admin_dsn
        with translated(dsn, "reading what a probe changed"):
            if self._conn is None:
                self._conn = connect(dsn, timeouts=self.target.db_timeouts)
            return list(self._conn.execute(sql, params).fetchall())

    def has_table(self, name: str) -> bool:
        return bool(self.rows("SELECT to_regclass(%(n)s) IS NOT NULL", {"n": name})[0][0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def device_rows(db: Observer) -> dict[str, dict[str, Any]]:
    """The tenant's device rows, whole, by id."""
    rows = db.rows(
        "SELECT id::text, to_jsonb(d) FROM devices d WHERE tenant_id = CAST(%(t)s AS uuid)",
        {"t": db.target.tenant_id},
    )
    return {str(r[0]): dict(r[1]) for r in rows}


def poll(settle_s: float, changed: Callable[[], bool]) -> bool:
    """True as soon as changed() is; False when settle_s passes without it."""
    deadline = time.monotonic() + settle_s
    wait = 0.05
    while True:
        if changed():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        wait = min(wait * 1.5, 0.5)
