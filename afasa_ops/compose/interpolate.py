"""Compose variable interpolation: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from afasa_ops.errors import UsageError

_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<braced>[^}]*)\})"
)
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def interpolate(text: str, env: Mapping[str, str], where: str = "") -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return env.get(match.group("named"), "")
        body = match.group("braced")
        parsed = _BRACED.match(body)
        if not parsed:
            raise UsageError(f"{where}: invalid interpolation ${{{body}}}")
        name, op, arg = parsed.group("name"), parsed.group("op"), parsed.group("arg") or ""
        value = env.get(name)
        if op is None:
            return value or ""
        unset_or_empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return interpolate(arg, env, where) if unset_or_empty else str(value)
        if op.endswith("+"):
            return "" if unset_or_empty else interpolate(arg, env, where)
        if unset_or_empty:
            raise UsageError(f"{where}: required variable {name} is missing: {arg or 'no message'}")
        return str(value)

    return _TOKEN.sub(replace, text)


def interpolate_tree(node: Any, env: Mapping[str, str], where: str = "") -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, where) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, where) for v in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a Compose .env file: KEY=VALUE lines, comments, optional quotes, `export `."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values
