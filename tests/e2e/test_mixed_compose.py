"""A stack started by one Compose and converged by the other: the operator's stack was brought
up with Compose v1 (`<project>_<service>_1` containers, v1's config hashes), and the host now
runs Compose v2. `run all --yes` with v2 repairs it and converges every service to v2's
definition; a second run with v2 changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack, start_before_state

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("compose_pair", ["v1-then-v2"], indirect=True)
def test_a_stack_started_by_compose_v1_is_converged_by_v2(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    start_before_state(stack)
    project = stack.box.project
    before = stack.names()
    assert before and all(n.startswith(f"{project}_") and n.endswith("_1") for n in before)

    code, doc = stack.ops_json("run", "all", "--yes", timeout=1200)
    steps = [(s["id"], s["status"], s["summary"]) for s in doc["steps"]]
    assert code == 0 and doc["status"] == "ok", (doc["message"], steps, doc.get("incident"))
    status = {s["id"]: s["status"] for s in doc["steps"]}
    assert status["phase3.compose.up"] == "changed", steps
    up = next(s for s in doc["steps"] if s["id"] == "phase3.compose.up")
    assert any(c["argv"][:2] == ["docker", "compose"] for c in up["commands"]), up["commands"]

    # Every container is now v2's: v1's were recreated (v1 and v2 hash a service differently),
    # beside afasa-ops' adopted services, which v2 started.
    after = stack.names()
    adopted = {n for n in after if n.startswith(f"{project}-afasa-ops-")}
    assert len(adopted) == 4, after
    assert {n.replace("-", "_") for n in after - adopted} == {n.replace("-", "_") for n in before}
    assert all(n.startswith(f"{project}-") and n.endswith("-1") for n in after), after
    assert set(stack.box.health().values()) == {"healthy"}, stack.box.health()

    code, again = stack.ops_json("run", "all", "--yes", timeout=900)
    assert code == 0 and again["status"] == "ok", again["message"]
    assert [s["id"] for s in again["steps"] if s["status"] == "changed"] == []
