"""The pin target stays in the release line the checkout runs: the nearest known-good release
of that major version from the compatibility table (v2: v2.11.31), the runbook's target for
its own line (v3), floating tags resolved to the line they stand for, and a major version
crossed only when the operator names the target, with the migration named."""

from __future__ import annotations

from pathlib import Path

import pytest

from afasa_ops.compose.project import load_project
from afasa_ops.traefik.analysis import EngineApi, analyse
from afasa_ops.traefik.compat import SOURCES
from afasa_ops.traefik.fix import compose_changes
from afasa_ops.traefik.images import parse_image
from afasa_ops.traefik.pins import choose, known_good, line_of
from tests.support.traefik_checkouts import MINIMAL_TRAEFIK

DOCKER_29_1 = EngineApi("29.1.3", "1.52", "1.44")
OLD_ENGINE = EngineApi("20.10.24", "1.39", "1.12")  # max API below 1.40
RUNBOOK_TARGET = "traefik:v3.6.7"


@pytest.mark.parametrize(
    ("image", "line"),
    [
        ("traefik", 3),
        ("traefik:latest", 3),
        ("traefik:v3", 3),
        ("traefik:3", 3),
        ("traefik:v3.6", 3),
        ("traefik:3.6.0", 3),
        ("traefik:v2.11.10", 2),
        ("traefik:2.11", 2),
        ("traefik:v2", 2),
        ("traefik:v2.11-alpine", 2),
        ("docker.io/library/traefik:v2.10.7", 2),
        ("registry.local:5000/traefik:v1.7", 1),
        ("traefik:mimolette", None),  # a codename names no line
        ("traefik@sha256:" + "a" * 64, None),
    ],
)
def test_the_line_a_tag_stands_for(image: str, line: int | None) -> None:
    assert line_of(parse_image(image)) == line


@pytest.mark.parametrize(
    ("image", "engine", "target"),
    [
        # v2 behind Docker 29: the v2.11 line's fixed release, not v3.
        ("traefik:v2.11.10", DOCKER_29_1, "traefik:v2.11.31"),
        ("traefik:v2.9.4", DOCKER_29_1, "traefik:v2.11.31"),
        ("traefik:2.11", DOCKER_29_1, "traefik:v2.11.31"),
        ("traefik:v2", None, "traefik:v2.11.31"),
        ("docker.io/library/traefik:v2.11.10", DOCKER_29_1, "docker.io/library/traefik:v2.11.31"),
        # Newer than the table's fixed release but refused by an old engine: back to the last
        # v2 release that needs no API 1.40.
        ("traefik:v2.11.50", OLD_ENGINE, "traefik:v2.11.44"),
        # v3 and the floating tags that stand for it: the runbook's target.
        ("traefik:v3.6.0", DOCKER_29_1, RUNBOOK_TARGET),
        ("traefik:latest", DOCKER_29_1, RUNBOOK_TARGET),
        ("traefik", None, RUNBOOK_TARGET),
        ("traefik:v3.6", DOCKER_29_1, RUNBOOK_TARGET),
        ("traefik:mimolette", DOCKER_29_1, RUNBOOK_TARGET),
    ],
)  # fmt: skip
def test_pin_target_stays_in_the_line(image: str, engine: EngineApi | None, target: str) -> None:
    pin = choose(image, configured=RUNBOOK_TARGET, explicit=None, engine=engine)
    assert pin.image == target
    assert pin.blocked is None


def test_the_table_is_cited_when_it_chose() -> None:
    pin = choose("traefik:v2.11.10", configured=RUNBOOK_TARGET, explicit=None, engine=DOCKER_29_1)
    assert pin.source == SOURCES[1]  # traefik PR #12262 (v2.11.31, 2025-11-13)
    (note,) = pin.findings
    assert note.code == "traefik.pin_in_line"
    assert SOURCES[1] in note.message
    assert f"--param target_image={RUNBOOK_TARGET}" in note.message


def test_known_good_releases_depend_on_the_engine() -> None:
    assert [r for r, _ in known_good(2, DOCKER_29_1)] == [(2, 11, 31), (2, 11, 44), (2, 11, 45)]
    assert [r for r, _ in known_good(2, OLD_ENGINE)] == [(2, 11, 31), (2, 11, 44)]
    assert [r for r, _ in known_good(2, None)] == [(2, 11, 31), (2, 11, 44)]
    assert [r for r, _ in known_good(3, DOCKER_29_1)] == [(3, 6, 1), (3, 6, 15), (3, 6, 16)]
    assert known_good(1, DOCKER_29_1) == []


def test_a_line_the_table_does_not_know_is_blocked_not_crossed() -> None:
    pin = choose("traefik:v1.7.34", configured=RUNBOOK_TARGET, explicit=None, engine=DOCKER_29_1)
    assert pin.blocked is not None and pin.blocked.code == "traefik.no_pin_in_line"
    assert f"--param target_image={RUNBOOK_TARGET}" in pin.blocked.message


def test_crossing_a_major_version_needs_the_operator_and_names_the_migration() -> None:
    pin = choose(
        "traefik:v2.11.10",
        configured=RUNBOOK_TARGET,
        explicit="traefik:v3.6.7",
        engine=DOCKER_29_1,
        command=["--providers.docker=true", "--providers.docker.swarmMode=true"],
    )
    assert pin.image == "traefik:v3.6.7"
    (warning,) = pin.findings
    assert warning.code == "traefik.major_upgrade" and warning.severity == "warning"
    assert warning.data["migration"] == "v2->v3"
    assert "https://doc.traefik.io/traefik/migration/v2-to-v3/" in warning.message
    assert "--core.defaultRuleSyntax=v2" in warning.message
    assert "this checkout sets --providers.docker.swarmMode (use the swarm provider" in (
        warning.message
    )
    down = choose(
        "traefik:v3.6.0", configured=RUNBOOK_TARGET, explicit="traefik:v2.11.31", engine=None
    )
    assert [f.code for f in down.findings] == ["traefik.major_downgrade"]
    same = choose(
        "traefik:v3.6.0", configured=RUNBOOK_TARGET, explicit="traefik:v3.6.2", engine=None
    )
    assert same.image == "traefik:v3.6.2" and same.findings == []


def analysed(tmp_path: Path, image: str, explicit: str | None = None) -> tuple[set[str], str]:
    (tmp_path / "docker-compose.yml").write_text(MINIMAL_TRAEFIK.format(image=image))
    project = load_project(tmp_path, environ={}, project_name="stack")
    result = analyse(
        project, target_image=RUNBOOK_TARGET, engine=DOCKER_29_1, explicit_target=explicit
    )
    diff = "".join(c.diff for c in compose_changes(result, tmp_path))
    return {f.code for f in result.findings}, diff


def test_a_v2_checkout_behind_docker_29_is_pinned_within_v2(tmp_path: Path) -> None:
    codes, diff = analysed(tmp_path, "traefik:v2.11.10")
    assert {"traefik.incompatible", "traefik.pin_in_line"} <= codes
    assert "+    image: traefik:v2.11.31" in diff
    assert "v3" not in diff


def test_explicit_target_crosses_with_a_finding(tmp_path: Path) -> None:
    codes, diff = analysed(tmp_path, "traefik:v2.11.10", explicit="traefik:v3.6.7")
    assert {"traefik.incompatible", "traefik.major_upgrade"} <= codes
    assert "traefik.pin_in_line" not in codes
    assert "+    image: traefik:v3.6.7" in diff


def test_explicit_target_pins_a_compatible_image_too(tmp_path: Path) -> None:
    codes, diff = analysed(tmp_path, "traefik:v2.11.31", explicit="traefik:v3.6.7")
    assert codes == {"traefik.pin_requested", "traefik.major_upgrade"}
    assert "+    image: traefik:v3.6.7" in diff
    codes, diff = analysed(tmp_path, "traefik:v3.6.7", explicit="traefik:v3.6.7")
    assert codes == set() and diff == ""
