"""`afasa-ops worker sync --once` as text: one line per tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from afasa_ops.workers.sync import PassResult


def render_sync_pass(last: PassResult, say: Callable[[str], None]) -> None:
    for t in last.tenants:
        if t.error:
            say(f"tenant {t.tenant_id}: FAILED: {t.error}")
        elif t.counts:
            c = t.counts
            say(
                f"tenant {t.tenant_id}: {c.devices_found} channels, {c.inserted} inserted, "
                f"{c.updated} updated, {c.unchanged} unchanged"
            )
    if not last.tenants:
        say("no tenant has a UbiBot account key")
