"""Shared fixtures: real PostgreSQL databases, private NATS servers, git repos of the example."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import NatsServer, free_port, fresh_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "afasa"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """Admin DSN of a fresh, empty database on the machine's PostgreSQL."""
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A private NATS JetStream server on a free port (restartable)."""
    server = NatsServer(free_port(), tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_git_repo(source: Path, target: Path) -> Path:
    """Copy a checkout into target and commit it, as an operator's clone would be."""
    shutil.copytree(source, target)
    git(target, "init", "-q", "-b", "main")
    git(target, "config", "user.email", "ops@example.org")
    git(target, "config", "user.name", "AFASA Ops")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "AFASA as found")
    return target


@pytest.fixture
def afasa_repo(tmp_path: Path) -> Path:
    """A git repo of the bundled AFASA example in its 'before' state, named like the field."""
    return make_git_repo(EXAMPLE, tmp_path / "Afasa-main")
