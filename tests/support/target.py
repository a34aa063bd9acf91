"""A throw-away target for engine tests: a git repo, a runbook and a config beside it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    root: Path

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def config(self) -> Path:
        return self.root / "afasa-ops.toml"

    @property
    def runbook(self) -> Path:
        return self.root / "runbook.yaml"

    def write_runbook(self, text: str) -> None:
        self.runbook.write_text(textwrap.dedent(text))

    def applies(self) -> list[str]:
        log = self.repo / "applies.log"
        return log.read_text().splitlines() if log.exists() else []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AFASA_OPS_")}
        env["PYTHONPATH"] = str(ROOT)
        env["NO_COLOR"] = "1"
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "afasa_ops", "--config", str(self.config), *args]

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, env=self.env(**env), timeout=120
        )

    def spawn(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**env),
        )


def make_target(tmp: Path, extra_config: str = "") -> Target:
    target = Target(tmp)
    repo = target.repo
    repo.mkdir(parents=True)
    (repo / "docker-compose.yml").write_text(
        "services:\n  postgres:\n    image: postgres:16\n"
        "    environment:\n      POSTGRES_PASSWORD: canary-compose-789\n"
    )
    (repo / ".gitignore").write_text("applies.log\nslow-started\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.org"],
        ["config", "user.name", "T"],
        ["add", "-A"],
        ["commit", "-q", "-m", "start"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    target.config.write_text(
        textwrap.dedent(
            """
            [repo]
            path = "repo"

            [runbook]
            path = "runbook.yaml"
            plugins = ["tests.support.kinds"]
            """
        )
        + textwrap.dedent(extra_config)
    )
    return target
