"""Every command has help and is documented; --help stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer.main

from afasa_ops.cli import app
from tests.support.fresh_python import imported_by, run_fresh

ROOT = Path(__file__).resolve().parents[2]
# Libraries a command imports inside the one driver that uses them, never at start-up: each
# costs a run tens of milliseconds before its first step (bench/phase1_repair.py, rerun.py).
HEAVY = (
    "docker", "requests", "git", "minio", "boto3", "botocore", "psycopg", "nats", "httpx",
    "jwt", "cryptography", "pydantic", "yaml", "sqlalchemy", "fastapi", "reportlab", "uvicorn",
)  # fmt: skip


def all_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        found.append(path)
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(root, [])
    return found


def test_every_command_has_help_and_is_documented() -> None:
    docs = (ROOT / "docs" / "commands.md").read_text() + (ROOT / "README.md").read_text()
    commands = all_commands()
    assert ["run"] in commands and ["report"] in commands
    for path in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "afasa_ops", *path, "--help"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        )
        assert proc.returncode == 0, (path, proc.stderr)
        assert "Usage:" in proc.stdout
        if path:
            assert f"afasa-ops {' '.join(path)}" in docs, (
                f"`afasa-ops {' '.join(path)}` is not in docs/commands.md"
            )


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['afasa-ops', '--help']\n"
        "from afasa_ops.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    heavy, proc = imported_by(code, HEAVY)
    assert "Usage:" in proc.stdout
    assert heavy == [], "--help imported heavy libraries"


def test_the_program_asks_for_a_command_server_before_importing_the_cli(
    tmp_path: Path,
) -> None:
    """`afasa-ops` is afasa_ops.daemon.client:main. Without a server it runs the command here;
    before it knows, it imports no CLI framework and no heavy library (they are what the
    server saves)."""
    entry = (ROOT / "pyproject.toml").read_text()
    assert 'afasa-ops = "afasa_ops.daemon.client:main"' in entry
    code = (
        f"import os\nos.environ['XDG_CACHE_HOME'] = {str(tmp_path)!r}\n"
        "from afasa_ops.daemon import client\n"
        "assert client.run_through_server(['status']) is None  # no server: run it here\n"
    )
    found, _ = imported_by(code, (*HEAVY, "typer", "click", "rich", "afasa_ops.cli"))
    assert found == []


def test_version() -> None:
    assert run_fresh("", "-m", "afasa_ops", "--version").stdout.startswith("afasa-ops ")


def test_the_http_driver_loads_httpx_without_its_command_line_client() -> None:
    # httpx imports its CLI (rich.syntax, pygments) when they are installed; a run never uses
    # it, and it cost a third of httpx's import.
    code = "from afasa_ops.infra import http\nhttp.client(1.0).close()\n"
    assert imported_by(code, ("httpx", "httpx._main", "pygments"))[0] == ["httpx"]


def test_loading_the_runbook_imports_no_driver_library() -> None:
    # Every step kind is imported to load the runbook; the libraries behind the drivers are
    # imported by the steps that run, not by their modules.
    drivers = (
        "docker", "requests", "urllib3", "git", "minio", "psycopg", "httpx", "jwt",
        "cryptography", "packaging", "nats", "sqlalchemy",
    )  # fmt: skip
    code = (
        "from pathlib import Path\n"
        "from afasa_ops.runbook.loader import load_runbook\n"
        f"load_runbook(Path({str(ROOT / 'afasa_ops/data/runbooks/afasa-repair.yaml')!r}))\n"
    )
    assert imported_by(code, drivers)[0] == []


def test_progress_to_a_pipe_is_the_plain_line_without_rich() -> None:
    # A log or CI captures stderr: the line as said (emoji codes and brackets untouched), and
    # rich is not imported for it (nor by the JUnit renderer a run writes).
    code = (
        "from afasa_ops.cli.application import Application\n"
        "import afasa_ops.render.files\n"
        "Application().say('[step] :warning: password=hunter2-secret')\n"
    )
    found, proc = imported_by(code, ("rich", "rich.console"))
    assert found == []
    assert proc.stderr.startswith("[step] :warning: password=")
    assert "hunter2-secret" not in proc.stderr  # still redacted


@pytest.mark.parametrize(
    ("argv", "collects"),
    [
        (["run", "--help"], False),
        (["status", "--help"], False),
        (["worker", "report", "--help"], True),
        (["serve", "--help"], True),
    ],
)
def test_only_resident_commands_keep_the_cyclic_garbage_collector(
    argv: list[str], collects: bool
) -> None:
    """A short command runs without the collector's passes (a tenth of a converged run);
    a worker or the service runs for days and must collect its cycles."""
    code = (
        "import gc, sys\n"
        f"sys.argv = ['afasa-ops', *{argv!r}]\n"
        "from afasa_ops.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('collecting:', gc.isenabled())\n"
    )
    proc = run_fresh(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"collecting: {collects}"
