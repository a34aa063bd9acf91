"""Where a patch run takes its bundle and limits from (its groups and tag pattern come from
the runbook)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afasa_ops.config import Settings
from afasa_ops.patch.bundle import Limits

# The runbook parameter that names a bundle (`afasa-ops run --param patch_bundle=PATH`).
BUNDLE_PARAM = "patch_bundle"


def limits_of(settings: Settings) -> Limits:
    p = settings.patch
    return Limits(
        max_entry_bytes=p.max_entry_bytes,
        max_total_bytes=p.max_total_bytes,
        max_entries=p.max_entries,
        max_ratio=p.max_ratio,
    )


def configured_bundle(
    settings: Settings, params: dict[str, Any], explicit: str | None = None
) -> tuple[Path | None, str]:
    """The bundle path and where it came from: the step's own parameter, the runbook
    parameter patch_bundle, then [patch] bundle. Relative paths are taken from the config's
    folder, as every path in the config is."""
    for value, origin in (
        (explicit, "the step's bundle parameter"),
        (params.get(BUNDLE_PARAM), f"the runbook parameter {BUNDLE_PARAM}"),
        (settings.patch.bundle, "[patch] bundle"),
    ):
        if value:
            path = Path(str(value)).expanduser()
            return (path if path.is_absolute() else settings.base_dir / path), origin
    return None, ""
