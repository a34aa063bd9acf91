"""Runbook files: the shipped runbook loads; mistakes name the file, step, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import tests.support.kinds  # noqa: F401 - registers the test kinds
from afasa_ops.errors import RunbookError
from afasa_ops.runbook.loader import load_runbook

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_runbook_loads_with_phases_in_order() -> None:
    runbook = load_runbook(ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml")
    assert [p.id for p in runbook.phases] == ["phase0", "phase1", "phase2", "phase3", "phase4"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "name: x\nphases:\n  - id: a\n    steps:\n      - {id: s, kind: nope}\n",
            ":5: phase 'a' step 's': unknown kind 'nope'; known kinds:",
        ),
        (
            "name: x\nphases:\n  - id: a\n    steps:\n      - id: s\n        kind: test.marker\n        params: {path: 5}\n",
            "phase 'a' step 's': params.path: input should be a valid string",
        ),
        (
            "name: x\nphases:\n  - id: a\n    steps:\n      - id: s\n        kind: test.marker\n        params: {path: p, colour: red}\n",
            "phase 'a' step 's': params.colour: unknown parameter",
        ),
        (
            "name: x\nphases:\n  - id: a\n    steps:\n      - id: s\n        kind: test.marker\n",
            "phase 'a' step 's': params.path: field required",
        ),
        ("name: x\nphases: [\n", "invalid YAML at line 3, column 1"),
        ("name: x\nphases:\n  - id: a\n    stepz: []\n", "phase 'a': unknown field 'stepz'"),
        (
            "name: x\nphases:\n  - id: a\n    steps:\n      - {id: s, kind: test.blocked}\n      - {id: s, kind: test.blocked}\n",
            "step id 'a.s' is used twice",
        ),
    ],
)
def test_mistakes_are_reported_with_file_step_and_field(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = tmp_path / "rb.yaml"
    path.write_text(textwrap.dedent(body))
    with pytest.raises(RunbookError) as err:
        load_runbook(path)
    assert str(err.value).startswith(str(path))
    assert expected in str(err.value), str(err.value)
