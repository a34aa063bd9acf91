"""The report probe: is report generation asynchronous, announced on NATS?"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from afasa_ops.platform.events import REPORT_REQUESTED
from afasa_ops.platform.probes.base import (
    INCONCLUSIVE,
    STUB,
    WORKING,
    Answer,
    Observer,
    ProbeResult,
    ProbeTarget,
    call,
)


def probe_report(target: ProbeTarget, db: Observer) -> ProbeResult:
    """Request a small report: 200 instead of 202, a slow answer, or no
    afasa.report.requested event for the tenant each says the report is made in the request.
    (`db` is unused: the effects are on the wire, not in the database.)"""
    route = target.generate_route
    result = ProbeResult("report", route, INCONCLUSIVE)
    try:
        import nats  # noqa: F401  (the [service] extra)
    except ImportError:
        nats_missing = True
    else:
        nats_missing = False
    body = {"type": "daily", "format": "csv"}
    if nats_missing:
        answer, events = call(target, "POST", route, body), None
    else:
        answer, events = asyncio.run(_request_watching(target, route, body))
    result.evidence.append(answer.shown("POST", route))
    if not answer.ok:
        result.evidence.append("not a success answer: nothing to judge by effects")
        return result
    reasons = []
    if answer.status == 200:
        reasons.append("answered 200 with the result, not 202 with a queued report")
    if answer.elapsed_s > target.slow_s:
        reasons.append(f"took {answer.elapsed_s:.1f}s (over {target.slow_s:g}s): it rendered")
    if events is None:
        result.evidence.append(
            f"{REPORT_REQUESTED} not watched: nats-py is missing (pip install 'afasa-ops[service]')"
        )
    elif not events:
        reasons.append(f"no {REPORT_REQUESTED} event for the tenant in {target.event_wait_s:g}s")
    else:
        result.evidence.append(f"{REPORT_REQUESTED} seen: {events[0]}")
    result.evidence += reasons
    result.verdict = STUB if reasons else WORKING
    report_id = answer.body.get("report_id") if isinstance(answer.body, dict) else None
    if result.verdict == WORKING and report_id:
        result.restored.append(
            f"report {report_id} stays: a daily csv report of the tenant, made by its worker"
        )
    return result


async def _request_watching(
    target: ProbeTarget, route: str, body: dict[str, Any]
) -> tuple[Answer, list[str]]:
    """The request made while subscribed to afasa.report.requested; the tenant's events seen
    until one names the report or event_wait_s passes."""
    from afasa_ops.infra import nats as nats_driver

    async with nats_driver.watching(target.nats_url, REPORT_REQUESTED) as seen:
        answer = await asyncio.to_thread(call, target, "POST", route, body)
        report_id = answer.body.get("report_id") if isinstance(answer.body, dict) else None
        deadline = time.monotonic() + (target.event_wait_s if answer.ok else 0)
        while True:
            mine = [
                e for e in (_event(m) for m in seen) if str(e.get("tenant_id")) == target.tenant_id
            ]
            if any(_names(e, report_id) for e in mine) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
    return answer, [_describe(e) for e in mine]


def _event(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _names(event: dict[str, Any], report_id: Any) -> bool:
    data = event.get("data")
    return report_id is None or (isinstance(data, dict) and data.get("report_id") == report_id)


def _describe(event: dict[str, Any]) -> str:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    return f"event {event.get('event_id')} report {data.get('report_id')}"  # type: ignore[union-attr]
