"""A service that never becomes healthy stops the run at phase 3 with an incident bundle that
holds the evidence (command, compose ps, logs, docker version/info, uname, OS release) and no
secret values; with Compose v1 and v2."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import STUBS, Stack, start_before_state

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(1200)]

# A stand-in with a healthcheck and no router: only phase 3's wait can notice it.
SICK = "thingsboard"


def never_healthy(repo: Path) -> None:
    """The stack as found, except that one service's healthcheck can never pass."""
    compose = repo / "docker-compose.yml"
    text = compose.read_text()
    block = re.search(rf"\n  {SICK}:\n(?:    .*\n|\n)+?    healthcheck:\n      test: .*\n", text)
    assert block, f"no healthcheck for {SICK} in the reference compose file"
    sick = re.sub(
        r"      test: .*\n",
        '      test: ["CMD", "false"]   # e2e: a service that never becomes healthy\n',
        block.group(0),
    )
    compose.write_text(text.replace(block.group(0), sick))


@pytest.mark.parametrize("compose_pair", ["v1", "v2"], indirect=True)
def test_unhealthy_service_stops_phase3_with_an_incident_bundle(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack(before_commit=never_healthy)
    config = stack.box.config
    config.write_text(config.read_text().replace("timeout_s = 240", "timeout_s = 45"))
    start_before_state(stack, ready=tuple(s for s in STUBS if s != SICK))

    code, doc = stack.ops_json("run", "all", "--yes", timeout=1200)
    assert code == 1 and doc["status"] == "failed", (doc["status"], doc["message"])
    failed = [s for s in doc["steps"] if s["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["phase"] == "phase3", [
        (s["id"], s["status"]) for s in doc["steps"]
    ]
    assert SICK in failed[0]["summary"], failed[0]["summary"]
    assert not any(s["phase"] == "phase4" for s in doc["steps"])  # the run stopped there

    bundle = Path(doc["incident"])
    assert bundle.is_file() and bundle.name.endswith(".tar.gz"), doc["incident"]
    out = tmp_path / "bundle"
    with tarfile.open(bundle) as tar:
        tar.extractall(out, filter="data")
    files = {p.relative_to(out).as_posix().split("/", 1)[1]: p for p in out.rglob("*.txt")}
    for name in (
        "failing-command.txt",
        "compose-ps.txt",
        "docker-version.txt",
        "docker-info.txt",
        "uname.txt",
        "os-release.txt",
        f"logs/{SICK}.txt",
    ):
        assert name in files, (name, sorted(files))
    text = {name: path.read_text() for name, path in files.items()}
    assert "compose" in text["failing-command.txt"] or "docker" in text["failing-command.txt"]
    assert f"{SICK}_1" in text["compose-ps.txt"] or f"{SICK}-1" in text["compose-ps.txt"]
    assert "unhealthy" in text["compose-ps.txt"] or "starting" in text["compose-ps.txt"]
    assert "29.1.3" in text["docker-version.txt"]  # the engine as the operator's tools see it
    assert "Server Version" in text["docker-info.txt"]
    assert "Linux" in text["uname.txt"]
    assert "Debian" in text["os-release.txt"] or "Ubuntu" in text["os-release.txt"]
    assert "collector could not run" not in text[f"logs/{SICK}.txt"]

    everything = "\n".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    for secret in stack.secret_values():
        assert secret not in everything, "a secret value leaked into the incident bundle"
