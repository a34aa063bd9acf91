"""An operator's trust on the reference stack: read-only commands leave the checkout (its
.git included) byte for byte as they found it, and a run that needs confirmation blocks
before its first change: no commit, no file change, no container change."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, start_before_state

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(1200)]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under the checkout, .git included, by content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def containers(stack: Stack) -> list[str]:
    return sorted(stack.box.compose("ps", "-a", "-q").stdout.split())


def test_read_only_commands_write_nothing_and_run_blocks_before_its_first_change(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    start_before_state(stack)
    before = snapshot(stack.repo)
    for args in (("plan", "all"), ("doctor",), ("status",), ("report",)):
        proc = stack.ops(*args)
        assert proc.returncode in (0, 2, 3, 4), (args, proc.returncode, proc.stderr[-2000:])
        changed = {
            k
            for k in set(before) | set(snapshot(stack.repo))
            if before.get(k) != snapshot(stack.repo).get(k)
        }
        assert not changed, (args, sorted(changed))

    head = stack.git("rev-parse", "HEAD")
    compose = (stack.repo / "docker-compose.yml").read_bytes()
    ids = containers(stack)
    code, doc = stack.ops_json("run", "phase1")
    assert code == 4 and doc["status"] == "blocked", (doc["status"], doc["message"])
    assert "phase1.traefik.recreate" in doc["message"] and "--yes" in doc["message"]
    assert stack.git("rev-parse", "HEAD") == head
    assert (stack.repo / "docker-compose.yml").read_bytes() == compose
    assert containers(stack) == ids
    assert stack.git("status", "--porcelain") == ""

    # status and report of that run read the journal and write nothing either.
    after_run = snapshot(stack.repo)
    for args in (("status",), ("report", doc["run_id"])):
        proc = stack.ops(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert snapshot(stack.repo) == after_run, args


def test_converged_plan_and_doctor_exit_0_and_checks_leave_no_trace(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    start_before_state(stack)
    code, doc = stack.ops_json("run", "all", "--yes", timeout=1100)
    assert code == 0, (doc["message"], [(s["id"], s["status"]) for s in doc["steps"]])
    # The report check deleted its row and object; the device check re-enabled the device.
    assert stack.sql("SELECT count(*) FROM reports") == "0"
    assert stack.sql("SELECT bool_and(desired_enabled) FROM devices") == "t"
    touched = {s["id"]: s["artifacts"].get("touched", []) for s in doc["steps"]}
    assert any("delete_object (cleanup)" in t for t in touched["phase4.check.report_async"])

    before = snapshot(stack.repo)
    code, plan = stack.ops_json("plan", "all")
    pending = [(s["id"], s["summary"]) for s in plan["steps"] if s["status"] == "pending"]
    # Verification-only steps never count as pending.
    assert all(not i.startswith(("phase4.", "phase1.traefik.routing")) for i, _ in pending)
    # Converged: nothing would change. (afasa-ops' services build from the checkout's own
    # afasa-ops-services/, packed from the installed afasa-ops: the same on every run.)
    assert (code, pending) == (0, [])
    statuses = {s["id"]: s["status"] for s in plan["steps"]}
    assert statuses["phase4.check.report_async"] == "will_run"
    assert stack.ops("doctor").returncode == 0
    assert stack.ops("status").returncode == 0
    assert stack.ops("report", doc["run_id"]).returncode == 0
    assert snapshot(stack.repo) == before
