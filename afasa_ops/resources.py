"""Files afasa-ops ships inside its package and reads at run time: runbooks and migrations.

They live under `afasa_ops/data/` (one copy, in the wheel) and are reached through
`importlib.resources`, so an installed afasa-ops finds them wherever pip put it.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

# The built-in runbook that `[runbook] path` names by default.
DEFAULT_RUNBOOK = "afasa-repair"
# What earlier versions wrote as `[runbook] path` for the built-in runbook (a path inside the
# source tree); still read as the built-in name so existing configs keep working.
LEGACY_RUNBOOK_DIR = "runbooks"


def data() -> Traversable:
    return files("afasa_ops") / "data"


def migrations_dir() -> Traversable:
    """The shipped NNNN_name.sql migrations."""
    return data() / "migrations"


def runbooks_dir() -> Traversable:
    return data() / "runbooks"


def builtin_runbooks() -> list[str]:
    if not runbooks_dir().is_dir():  # a broken install: say "no such runbook", not crash
        return []
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in runbooks_dir().iterdir()
        if entry.name.endswith(".yaml")
    )


def builtin_runbook(name: str) -> Traversable | None:
    """The shipped runbook a `[runbook] path` value names, or None when it names none.

    `afasa-repair` and the old in-tree path `runbooks/afasa-repair.yaml` both name it."""
    stem = name.removeprefix(f"{LEGACY_RUNBOOK_DIR}/").removesuffix(".yaml")
    if "/" in stem or stem not in builtin_runbooks():
        return None
    return runbooks_dir() / f"{stem}.yaml"


def package_dir() -> Path:
    """The installed package's directory, for what needs its files as files (packing the
    installed afasa-ops into a wheel for the adopted services' image)."""
    root = files("afasa_ops")
    if not isinstance(root, Path):  # a zip import: there is no directory to read
        raise LookupError(f"afasa-ops is not installed as files ({root})")
    return root
