"""Optional dependency sets. `serve` and `worker` need `afasa-ops[service]`; the operator
commands do not. Which distributions an extra holds is read from the installed package's own
metadata (pyproject.toml is the one list), so this module names none of them."""

from __future__ import annotations

import re
from importlib import metadata

from afasa_ops.errors import UsageError

DISTRIBUTION = "afasa-ops"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def extra_requirements(extra: str) -> list[str]:
    """Distribution names the installed afasa-ops lists under `extra` (none when afasa-ops
    runs from a source tree without metadata: the imports then speak for themselves)."""
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for req in requires:
        head, _, marker = req.partition(";")
        found = _EXTRA_MARKER.search(marker)
        name = _NAME.match(head)
        if found and found.group(1) == extra and name:
            names.append(name.group(1))
    return names


def missing(extra: str) -> list[str]:
    out = []
    for name in extra_requirements(extra):
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def require(extra: str, command: str) -> None:
    """Refuse, in one line (exit 2), to run `command` without the extra it needs."""
    absent = missing(extra)
    if absent:
        raise UsageError(
            f"`afasa-ops {command}` needs the {extra} dependencies, and "
            f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed: "
            f"pip install 'afasa-ops[{extra}]'"
        )
