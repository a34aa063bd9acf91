"""The runbook engine, through the real CLI, on a throw-away git repo and test step kinds."""

from __future__ import annotations

import json
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.support.target import Target, make_target

TWO_PHASES = """
    name: test
    phases:
      - id: alpha
        steps:
          - id: one
            kind: test.marker
            params: {path: one.txt}
          - id: two
            kind: test.marker
            params: {path: two.txt}
      - id: beta
        steps:
          - id: three
            kind: test.marker
            params: {path: three.txt}
"""


@pytest.fixture
def target(tmp_path: Path) -> Target:
    t = make_target(tmp_path)
    t.write_runbook(TWO_PHASES)
    return t


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_plan_mutates_nothing_and_exits_3_with_diffs(target: Target) -> None:
    before = snapshot(target.root)
    proc = target.cli("plan", "--json")
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert [s["status"] for s in doc["steps"]] == ["pending", "pending", "pending"]
    step = doc["steps"][0]
    assert step["id"] == "alpha.one" and step["phase"] == "alpha"
    assert "+done" in step["diff"]
    assert step["findings"][0]["code"] == "test.marker_missing"
    assert snapshot(target.root) == before
    assert not (target.repo / ".afasa-ops").exists()


def test_run_converges_and_a_rerun_applies_nothing(target: Target) -> None:
    first = target.cli("run", "--json")
    assert first.returncode == 0, first.stderr
    assert [s["status"] for s in json.loads(first.stdout)["steps"]] == ["changed"] * 3
    second = target.cli("run", "--json")
    assert second.returncode == 0
    assert [s["status"] for s in json.loads(second.stdout)["steps"]] == ["ok"] * 3
    assert target.applies() == ["alpha.one", "alpha.two", "beta.three"]
    assert target.cli("plan").returncode == 0


def test_phases_run_in_runbook_order_and_selection_flags(target: Target) -> None:
    proc = target.cli("run", "beta", "alpha", "--json")
    assert [s["id"] for s in json.loads(proc.stdout)["steps"]] == [
        "alpha.one",
        "alpha.two",
        "beta.three",
    ]
    (target.repo / "two.txt").unlink()
    (target.repo / "three.txt").unlink()
    only = target.cli("run", "--only", "alpha.two", "--json")
    assert [s["id"] for s in json.loads(only.stdout)["steps"]] == ["alpha.two"]
    assert not (target.repo / "three.txt").exists()
    frm = target.cli("run", "--from", "beta.three", "--json")
    assert [s["id"] for s in json.loads(frm.stdout)["steps"]] == ["beta.three"]


def test_failure_stops_rolls_back_the_phase_and_writes_an_incident(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(
        """
        name: test
        phases:
          - id: alpha
            steps:
              - {id: one, kind: test.marker, params: {path: one.txt}}
              - id: bad
                kind: test.failing
                params: {message: "disk on fire", argv: ["sh", "-c", "echo out; echo err >&2; exit 7"], services: [postgres]}
          - id: beta
            steps:
              - {id: three, kind: test.marker, params: {path: three.txt}}
        """
    )
    proc = t.cli("run")
    assert proc.returncode == 1
    assert not (t.repo / "one.txt").exists(), "the phase's applied step was rolled back"
    assert not (t.repo / "three.txt").exists(), "a later phase never started"
    assert t.applies() == ["alpha.one", "alpha.bad", "rollback alpha.one"]
    incidents = t.repo / ".afasa-ops" / "incidents"
    (bundle,) = [p for p in incidents.iterdir() if p.is_dir()]
    assert f"incident bundle: {bundle}.tar.gz" in proc.stdout
    failing = (bundle / "failing-command.txt").read_text()
    assert "exit code: 7" in failing and "out" in failing and "err" in failing
    for name in (
        "compose-ps.txt",
        "docker-version.txt",
        "docker-info.txt",
        "uname.txt",
        "os-release.txt",
        "findings.json",
        "README.txt",
        "logs/postgres.txt",
    ):
        assert (bundle / name).exists(), name
    assert "Linux" in (bundle / "uname.txt").read_text()
    assert "alpha.bad" in (bundle / "README.txt").read_text()
    assert "What to try next" in (bundle / "README.txt").read_text()
    with tarfile.open(f"{bundle}.tar.gz") as tar:
        assert any(n.endswith("failing-command.txt") for n in tar.getnames())


def test_secrets_never_reach_output_journal_report_or_bundle(tmp_path: Path) -> None:
    t = make_target(
        tmp_path,
        """
        [database]
        app_password = { env = "CANARY_APP_PASSWORD_REF" }
        """,
    )
    canaries = {
        "CANARY_APP_PASSWORD_REF": "canary-cfg-456",  # referenced by the config
        "MY_API_TOKEN": "canary-env-123",  # env name says secret
        "AFASA_MASTER_KEY_BASE64": "Y2FuYXJ5LW1hc3Rlci1rZXk=",
    }
    printed = " ".join(canaries.values()) + (
        " canary-compose-789 postgresql://u:canary-dsn-000@h/db Bearer canary-bearer-111"
    )
    t.write_runbook(
        f"""
        name: test
        phases:
          - id: alpha
            steps:
              - id: leak
                kind: test.failing
                params: {{message: "failed with {canaries["MY_API_TOKEN"]}", argv: ["echo", "{printed}"]}}
        """
    )
    proc = t.cli("run", **canaries)
    assert proc.returncode == 1
    report = t.cli("report", **canaries)
    junit = t.cli("report", "--format", "junit", **canaries)
    seen = proc.stdout + proc.stderr + report.stdout + junit.stdout
    state = t.repo / ".afasa-ops"
    for path in state.rglob("*"):
        if path.is_file() and not path.name.endswith(".tar.gz"):
            seen += path.read_text(errors="replace")
        elif path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    fh = tar.extractfile(member)
                    if fh:
                        seen += fh.read().decode(errors="replace")
    assert "***" in seen
    for canary in [*canaries.values(), "canary-compose-789", "canary-dsn-000", "canary-bearer-111"]:
        assert canary not in seen, canary


def _wait_for(path: Path, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


SLOW = """
    name: test
    phases:
      - id: alpha
        steps:
          - {id: one, kind: test.marker, params: {path: one.txt}}
          - {id: slow, kind: test.marker, params: {path: slow.txt, slow_s: 60}}
          - {id: three, kind: test.marker, params: {path: three.txt}}
"""


def test_kill_9_shows_interrupted_and_the_next_run_resumes(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(SLOW)
    proc = t.spawn("run")
    _wait_for(t.repo / "slow-started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = json.loads(t.cli("status", "--json").stdout)
    assert status["runs"][0]["status"] == "interrupted"
    assert "alpha.slow" in status["runs"][0]["message"]

    resumed = t.cli("run", "--json")
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert doc["resumed_from"] == status["runs"][0]["run_id"]
    assert "resuming run" in resumed.stderr
    assert [s["status"] for s in doc["steps"]] == ["ok", "changed", "changed"]
    # one.txt was verified again, not applied again.
    assert t.applies() == ["alpha.one", "alpha.slow", "alpha.slow", "alpha.three"]


def test_a_second_concurrent_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(SLOW)
    first = t.spawn("run")
    try:
        _wait_for(t.repo / "slow-started")
        second = t.cli("run")
        assert second.returncode == 4
        assert f"pid {first.pid}" in second.stderr
        assert "started 20" in second.stderr
    finally:
        first.kill()
        first.wait()


def test_destructive_steps_need_yes_when_not_interactive(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(
        """
        name: test
        phases:
          - id: alpha
            steps:
              - {id: wipe, kind: test.destructive, params: {path: wipe.txt}}
        """
    )
    refused = t.cli("run")
    assert refused.returncode == 4
    assert "--yes" in refused.stdout
    assert not (t.repo / "wipe.txt").exists()
    assert t.cli("run", "--yes").returncode == 0
    assert (t.repo / "wipe.txt").exists()


def test_blocked_step_exits_4_and_stops(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(
        """
        name: test
        phases:
          - id: alpha
            steps:
              - {id: gate, kind: test.blocked}
              - {id: one, kind: test.marker, params: {path: one.txt}}
        """
    )
    proc = t.cli("run", "--json")
    assert proc.returncode == 4
    assert [s["status"] for s in json.loads(proc.stdout)["steps"]] == ["blocked"]
    assert not (t.repo / "one.txt").exists()


def test_journal_is_excluded_through_git_info_exclude(target: Target) -> None:
    assert target.cli("run").returncode == 0
    exclude = (target.repo / ".git" / "info" / "exclude").read_text()
    assert "/.afasa-ops/" in exclude
    assert ".afasa-ops" not in (target.repo / ".gitignore").read_text()
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=target.repo, capture_output=True, text=True
    ).stdout
    assert ".afasa-ops" not in status


def test_report_formats(target: Target) -> None:
    assert target.cli("run").returncode == 0
    md = target.cli("report").stdout
    assert "## What changed" in md and "+done" in md and "alpha.one" in md
    doc = json.loads(target.cli("report", "--format", "json").stdout)
    assert doc["status"] == "ok" and len(doc["steps"]) == 3
    junit = target.cli("report", "--format", "junit").stdout
    from xml.etree import ElementTree as ET

    root = ET.fromstring(junit.split("\n", 1)[1])
    assert root.get("tests") == "3"
    assert {c.get("name") for c in root.iter("testcase")} == {
        "alpha.one",
        "alpha.two",
        "beta.three",
    }


def test_verification_only_steps_will_run_and_do_not_make_plan_pending(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(
        """
        name: test
        phases:
          - id: alpha
            steps:
              - {id: one, kind: test.marker, params: {path: one.txt}}
          - id: check
            steps:
              - {id: probe, kind: test.probe}
        """
    )
    proc = t.cli("plan", "--json")
    assert proc.returncode == 3
    assert [s["status"] for s in json.loads(proc.stdout)["steps"]] == ["pending", "will_run"]
    assert t.cli("run").returncode == 0
    converged = t.cli("plan", "--json")
    assert converged.returncode == 0, converged.stdout
    assert [s["status"] for s in json.loads(converged.stdout)["steps"]] == ["ok", "will_run"]


def test_an_ambiguous_only_id_is_a_usage_error_naming_the_full_ids(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(
        """
        name: test
        phases:
          - id: alpha
            steps:
              - {id: same, kind: test.marker, params: {path: a.txt}}
          - id: beta
            steps:
              - {id: same, kind: test.marker, params: {path: b.txt}}
        """
    )
    proc = t.cli("run", "--only", "same")
    assert proc.returncode == 2
    assert "alpha.same" in proc.stderr + proc.stdout and "beta.same" in proc.stderr + proc.stdout
    assert not (t.repo / "a.txt").exists() and not (t.repo / "b.txt").exists()
    assert t.cli("run", "--only", "beta.same").returncode == 0
    assert (t.repo / "b.txt").exists() and not (t.repo / "a.txt").exists()


def test_the_git_exclude_line_is_added_once_without_a_blank_line(target: Target) -> None:
    exclude = target.repo / ".git" / "info" / "exclude"
    exclude.write_text("# git's own comment\n")
    assert target.cli("run").returncode == 0
    assert target.cli("run").returncode == 0
    assert exclude.read_text() == "# git's own comment\n/.afasa-ops/\n"


def test_checkout_caches_live_in_the_user_cache_dir(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from afasa_ops.runbook.context import checkout_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    where = checkout_cache_dir(target.repo)
    assert where.parent == tmp_path / "cache" / "afasa-ops" and where.is_dir()
    assert where.name.startswith("repo-")
    assert checkout_cache_dir(target.repo) == where  # the same key for the same checkout


def _git_head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


CONFIRM_LATER = """
    name: test
    phases:
      - id: alpha
        steps:
          - {id: one, kind: test.marker, params: {path: one.txt}}
      - id: beta
        steps:
          - {id: wipe, kind: test.destructive, params: {path: wipe.txt}}
"""


def test_a_run_needing_confirmation_blocks_before_its_first_change(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(CONFIRM_LATER)
    files = {p.name: p.read_bytes() for p in t.repo.iterdir() if p.is_file()}
    head = _git_head(t.repo)
    proc = t.cli("run", "--json")
    assert proc.returncode == 4, proc.stdout
    doc = json.loads(proc.stdout)
    assert doc["status"] == "blocked"
    assert "beta.wipe" in doc["message"] and "--yes" in doc["message"]
    assert "alpha.one" not in doc["message"]  # it needs no confirmation
    # Nothing was changed: not even the first step, which needs no confirmation.
    assert t.applies() == []
    assert {p.name: p.read_bytes() for p in t.repo.iterdir() if p.is_file()} == files
    assert _git_head(t.repo) == head
    assert t.cli("run", "--yes").returncode == 0
    assert t.applies() == ["alpha.one", "beta.wipe"]


def test_a_confirmation_step_that_may_apply_after_an_earlier_change_counts(
    tmp_path: Path,
) -> None:
    t = make_target(tmp_path)
    t.write_runbook(CONFIRM_LATER)
    (t.repo / "wipe.txt").write_text("done\n")  # converged now; the earlier change may alter it
    proc = t.cli("run", "--json")
    assert proc.returncode == 4
    assert "beta.wipe" in json.loads(proc.stdout)["message"]
    assert t.applies() == []


def test_nothing_to_confirm_runs_without_yes(tmp_path: Path) -> None:
    t = make_target(tmp_path)
    t.write_runbook(CONFIRM_LATER)
    assert t.cli("run", "--yes").returncode == 0
    (t.repo / "one.txt").unlink()
    # Only steps needing no confirmation would apply... but wipe comes after a change.
    assert t.cli("run").returncode == 4
    t.write_runbook(CONFIRM_LATER.replace("test.destructive", "test.marker"))
    assert t.cli("run").returncode == 0
    assert (t.repo / "one.txt").exists()


def test_on_a_terminal_the_run_shows_what_would_apply_and_asks_once(tmp_path: Path) -> None:
    import os
    import pty

    t = make_target(tmp_path)
    t.write_runbook(CONFIRM_LATER.replace("test.marker", "test.destructive"))
    primary, secondary = pty.openpty()
    env = t.env()
    env.pop("CI", None)
    proc = subprocess.Popen(
        t.argv("run"), stdin=secondary, stderr=secondary, stdout=subprocess.PIPE, env=env
    )
    os.close(secondary)
    seen = b""
    while b"Apply these 2 step(s)" not in seen:
        chunk = os.read(primary, 4096)
        assert chunk, seen
        seen += chunk
    assert t.applies() == []  # asked before the first change
    os.write(primary, b"y\n")
    assert proc.wait(timeout=60) == 0
    os.close(primary)
    text = seen.decode(errors="replace")
    assert "will apply alpha.one" in text and "+done" in text  # the steps with their diffs
    assert text.count("Apply ") == 1  # one question, not one per step
    assert t.applies() == ["alpha.one", "beta.wipe"]


def test_step_by_step_without_a_terminal_blocks_before_the_first_change(target: Target) -> None:
    proc = target.cli("run", "--step", "--json")
    assert proc.returncode == 4
    assert "alpha.one" in json.loads(proc.stdout)["message"]
    assert target.applies() == []
