"""One error path for `main()` and Typer's runner: an AfasaOpsError is one line and its exit
code; --verbose adds the chain of causes; anything else is a bug, named in one line, with
its traceback only under --verbose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from afasa_ops.cli import app


def afasa_ops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "afasa_ops", *args], capture_output=True, text=True, cwd=cwd
    )


def test_a_config_error_is_one_line_and_exit_2_in_both_runners(tmp_path: Path) -> None:
    bad = tmp_path / "afasa-ops.toml"
    bad.write_text("[repo\npath = 1\n")
    proc = afasa_ops("-c", str(bad), "status", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {bad}: not valid TOML") and proc.stderr.count("\n") == 1
    result = CliRunner().invoke(app, ["-c", str(bad), "status"])
    assert result.exit_code == 2 and result.output == proc.stderr


def test_verbose_shows_the_cause_behind_the_message(tmp_path: Path) -> None:
    bad = tmp_path / "afasa-ops.toml"
    bad.write_text("[repo\npath = 1\n")
    proc = afasa_ops("--verbose", "-c", str(bad), "status", cwd=tmp_path)
    assert proc.returncode == 2
    first, cause = proc.stderr.splitlines()
    assert first.startswith("error:") and cause.startswith("  caused by TOMLDecodeError:")


def test_an_unexpected_error_is_named_and_traced_only_with_verbose(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    runs = repo / ".afasa-ops" / "runs" / "20260101T000000Z-abcd"
    runs.mkdir(parents=True)
    (runs / "journal.jsonl").write_text(
        '{"event": "run_started", "run_id": "20260101T000000Z-abcd", "mode": "run",'
        ' "phases": [], "ts": "2026-01-01T00:00:00Z"}\n'
    )
    cfg = tmp_path / "afasa-ops.toml"
    cfg.write_text(f'[repo]\npath = "{repo}"\n')
    # Writing the report into a folder that does not exist: an OSError no code expects.
    target = str(tmp_path / "no-such-dir" / "report.md")
    quiet = afasa_ops("-c", str(cfg), "report", "-o", target, cwd=tmp_path)
    assert quiet.returncode == 1, quiet.stderr
    assert quiet.stderr.splitlines()[0].startswith("error: unexpected FileNotFoundError")
    assert "Traceback" not in quiet.stderr and "--verbose" in quiet.stderr
    loud = afasa_ops("-v", "-c", str(cfg), "report", "-o", target, cwd=tmp_path)
    assert loud.returncode == 1 and "Traceback (most recent call last)" in loud.stderr
