"""Glob matching and grouping of bundle paths (pure logic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from afasa_ops.patch.apply import tag_glob
from afasa_ops.patch.bundle import BundleRefused, safe_name
from afasa_ops.patch.groups import Grouper, glob_match
from afasa_ops.patch.plan import byte_diff
from tests.support.runbook import step_params


@pytest.mark.parametrize(
    ("path", "pattern", "matches"),
    [
        ("infra/postgres/init/001_init.sql", "infra/postgres/**", True),
        ("infra/postgres", "infra/postgres/**", True),
        ("infra/postgresql/x.sql", "infra/postgres/**", False),
        ("services/common/models.py", "services/common/models.py", True),
        ("services/common/models.pyc", "services/common/models.py", False),
        ("services/a/app/main.py", "services/*/app/*.py", True),
        ("services/a/b/app/main.py", "services/*/app/*.py", False),
        ("services/a/b/app/main.py", "services/**/*.py", True),
        ("docker-compose.yml", "docker-compose.yml", True),
        ("x/docker-compose.yml", "docker-compose.yml", False),
    ],
)
def test_glob_match(path: str, pattern: str, matches: bool) -> None:
    assert glob_match(path, pattern) is matches


def test_default_groups_and_catch_all() -> None:
    # The groups and the catch-all are the shipped runbook's: no copy of them lives in code.
    params = step_params("phase2.patch.apply")
    grouper = Grouper(params.groups, params.catch_all)
    assert grouper.group_of("services/common/models.py") == "feat(db): add devices registry + RLS"
    assert grouper.group_of("services/tb_adapter/app/sync.py").startswith("feat(tb_adapter)")
    assert grouper.group_of("services/report/Dockerfile").startswith("feat(report)")
    assert grouper.group_of("docker-compose.yml").startswith("chore(compose)")
    assert grouper.group_of(".env.example") == params.catch_all
    assert grouper.messages()[-1] == params.catch_all


def test_tag_pattern_to_glob() -> None:
    assert tag_glob("pre-audit-{date}") == "pre-audit-*"
    assert tag_glob("pre-audit") == "pre-audit"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "\\x", "C:x", "a\\..\\x"])
def test_unsafe_names(name: str, tmp_path: Path) -> None:
    with pytest.raises(BundleRefused):
        safe_name(tmp_path, name)


def test_safe_names_are_normalised(tmp_path: Path) -> None:
    assert safe_name(tmp_path, "./a//b/./c.txt") == "a/b/c.txt"


def test_binary_diff_is_named_not_dumped() -> None:
    assert byte_diff("logo.png", b"\x89PNG\xff", b"\x89PNG\xfe") == (
        "Binary files a/logo.png and b/logo.png differ\n"
    )
    assert "\\ No newline at end of file" in byte_diff("a", b"x", b"y")
