"""Shared set-up for the worker benchmarks: a migrated database reached as a NOBYPASSRLS role,
and a private NATS JetStream server. Run the benchmarks from the repository root."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def ratio_line(label: str, ours: float, baseline: float, unit: str, limit: float | None) -> str:
    ratio = ours / baseline if baseline else float("inf")
    verdict = (
        "" if limit is None else ("  OK" if ratio <= limit else f"  OVER the limit of {limit}")
    )
    return f"{label}: ours {ours:.3f} {unit}  baseline {baseline:.3f} {unit}  ratio {ratio:.2f}{verdict}"
