"""`afasa-ops rollback` as text: the tag, what was restored and what was recreated."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from afasa_ops.commands.rollback import RollbackResult


def render_rollback(result: RollbackResult, out: Console) -> None:
    out.print(f"pre-audit tag: {result.tag} ({result.tag_commit[:12]}, found by {result.found_by})")
    out.print(result.message)
    lines = [
        ("files restored: ", result.files),
        ("services changed: ", result.services_changed),
        ("recreated: ", result.recreated),
        ("afasa-ops' adopted services removed: ", result.removed),
        (
            "services no longer defined (stop them with `up -d --remove-orphans`): ",
            result.services_removed,
        ),
        ("changed but not running (left alone): ", result.not_running),
    ]
    for label, names in lines:
        if names:
            out.print(label + ", ".join(names))
    if result.env_restored:
        out.print(".env: COMPOSE_FILE no longer names docker-compose.afasa-ops.yml")
    if result.recreate_skipped:
        out.print(f"containers not recreated: {result.recreate_skipped}")
