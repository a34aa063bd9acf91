"""Files the tool reads at run time ship in the package and are found through it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from afasa_ops.config import load_settings
from afasa_ops.errors import RunbookError
from afasa_ops.resources import builtin_runbook, builtin_runbooks, migrations_dir
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.schema import migrations as mig_files

PACKAGE = Path(__file__).resolve().parents[2] / "afasa_ops"


def test_no_module_looks_outside_the_package_for_its_files() -> None:
    """An installed wheel has no source tree around it: no __file__-relative walks."""
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"__file__|\.parents\[", line)
    ]
    assert offenders == []


def test_the_shipped_runbook_and_migrations_are_package_data() -> None:
    assert builtin_runbooks() == ["afasa-repair"]
    runbook = load_runbook(builtin_runbook("afasa-repair"))  # type: ignore[arg-type]
    assert runbook.name == "afasa-repair" and runbook.phase("phase1").steps
    names = [m.path.name for m in mig_files.load()]
    assert names[0] == "0001_baseline.sql" and len(names) >= 6
    assert {e.name for e in migrations_dir().iterdir()} >= set(names)


def _settings(tmp_path: Path, runbook: str | None):  # type: ignore[no-untyped-def]
    text = '[repo]\npath = "."\n' + (f'[runbook]\npath = "{runbook}"\n' if runbook else "")
    (tmp_path / "afasa-ops.toml").write_text(text)
    return load_settings(tmp_path / "afasa-ops.toml", environ={})


@pytest.mark.parametrize("value", [None, "afasa-repair", "runbooks/afasa-repair.yaml"])
def test_the_default_and_the_old_path_name_the_shipped_runbook(
    tmp_path: Path, value: str | None
) -> None:
    path = _settings(tmp_path, value).runbook_path()
    assert path == builtin_runbook("afasa-repair")
    assert load_runbook(path).name == "afasa-repair"


def test_a_users_own_runbook_beside_the_config_wins(tmp_path: Path) -> None:
    own = tmp_path / "books" / "mine.yaml"
    own.parent.mkdir()
    own.write_text("name: mine\nphases:\n  - id: p\n    steps: []\n")
    assert _settings(tmp_path, "books/mine.yaml").runbook_path() == own
    # A file named like the shipped runbook beside the config is the user's, not ours.
    (tmp_path / "afasa-repair").write_text("name: local\nphases: []\n")
    assert _settings(tmp_path, "afasa-repair").runbook_path() == tmp_path / "afasa-repair"


def test_a_runbook_that_is_nowhere_names_the_file_and_the_shipped_ones(tmp_path: Path) -> None:
    path = _settings(tmp_path, "books/nope.yaml").runbook_path()
    with pytest.raises(RunbookError) as err:
        load_runbook(path)
    assert str(tmp_path / "books/nope.yaml") in str(err.value)
    assert "afasa-repair" in str(err.value)
