"""Every built-in step kind resolves from its name alone and is documented with its real
parameters (in the spirit of httpx's "every exception is mapped" test). The kinds are
loaded in a fresh interpreter, so no earlier import can hide a kind that would not load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "runbooks.md"

LOAD = """
import json
from afasa_ops.runbook.step import builtin_kinds, resolve_kind
out = {}
for kind in builtin_kinds():
    cls = resolve_kind(kind)
    out[kind] = {"module": cls.__module__, "params": sorted(cls.Params.model_fields)}
print(json.dumps(out))
"""

RESOLVE_ONE = """
import sys
from afasa_ops.runbook.step import resolve_kind
cls = resolve_kind(sys.argv[1])
print(cls.__module__ if cls else "unknown")
"""


@pytest.fixture(scope="module")
def kinds() -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", LOAD], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded: dict[str, dict[str, object]] = json.loads(done.stdout)
    return loaded


def sections() -> dict[str, str]:
    text = DOCS.read_text()
    parts = re.split(r"^### `([a-z_]+\.[a-z_]+)`\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_each_kind_lives_in_the_module_its_name_names(kinds: dict[str, dict[str, object]]) -> None:
    assert len(kinds) >= 25
    for kind, info in kinds.items():
        assert info["module"] == f"afasa_ops.steps.{kind.split('.')[0]}", kind


def test_every_kind_is_documented_with_its_parameters(kinds: dict[str, dict[str, object]]) -> None:
    documented = sections()
    assert sorted(documented) == sorted(kinds), "docs/runbooks.md and the registry differ"
    for kind, info in kinds.items():
        section = documented[kind]
        shown = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
        params = set(info["params"])  # type: ignore[arg-type]
        assert shown == params, f"{kind}: documented {sorted(shown)}, real {sorted(params)}"
        if not params:
            assert "no parameters" in " ".join(section.split()).lower(), kind


def test_kinds_named_in_the_docs_and_the_runbook_exist(kinds: dict[str, dict[str, object]]) -> None:
    for path in [DOCS, ROOT / "afasa_ops" / "data" / "runbooks" / "afasa-repair.yaml"]:
        for kind in re.findall(r"kind: ([a-z_]+\.[a-z_]+)", path.read_text()):
            assert kind in kinds, f"{path.name} names kind {kind!r}, which does not exist"


@pytest.mark.parametrize("kind", ["schema.init_replay", "compose.up", "docker.engine"])
def test_a_kind_resolves_in_a_fresh_interpreter(kind: str) -> None:
    """Regression: schema.init_replay was missing from the hand-kept table."""
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE_ONE, kind],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.strip() == f"afasa_ops.steps.{kind.split('.')[0]}"


def test_an_unknown_prefix_is_unknown_not_a_crash() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE_ONE, "nosuch.kind"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.strip() == "unknown"


def test_the_docs_the_runbook_and_the_docs_cite_exist() -> None:
    for path in [
        ROOT / "afasa_ops" / "data" / "runbooks" / "afasa-repair.yaml",
        *sorted((ROOT / "docs").glob("*.md")),
    ]:
        for cited in re.findall(r"\bdocs/([a-z0-9_-]+\.md)", path.read_text()):
            assert (ROOT / "docs" / cited).is_file(), f"{path.name} cites docs/{cited}"
