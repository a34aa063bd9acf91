"""Run Python code in a fresh interpreter with only this tree on its path: what code imports
shows in that process's sys.modules, not in the test process's (which has imported everything)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -c code` (or `python ARGS...` when code is ""), PATH minimal, PYTHONPATH this tree."""
    argv = [sys.executable, "-c", code] if code else [sys.executable, *args]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def imported_by(
    code: str, modules: Iterable[str]
) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """Which of `modules` running `code` imported (sorted; a None placeholder in sys.modules
    is not an import), and the process; the code must exit 0."""
    probe = (
        "\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {tuple(modules)!r} if sys.modules.get(m))))\n"
    )
    proc = run_fresh(code + probe)
    assert proc.returncode == 0, proc.stderr
    found: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found, proc
