"""The Compose CLI driver: `docker compose` (v2 plugin) or `docker-compose` (v1), same verbs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from afasa_ops.errors import BlockedError
from afasa_ops.infra.shell import Shell
from afasa_ops.runbook.model import CommandRecord

V2 = ["docker", "compose"]
V1 = ["docker-compose"]


@dataclass
class ComposeCli:
    shell: Shell
    directory: Path
    files: list[str]
    project_name: str
    command: str = "auto"
    docker_host: str | None = None
    _resolved: list[str] | None = field(default=None, repr=False)

    def binary(self) -> list[str]:
        """Which Compose runs here; v2 is preferred when both are installed."""
        if self._resolved is None:
            if self.command != "auto":
                self._resolved = self.command.split()
            elif shutil.which("docker") and self._answers(V2):
                self._resolved = V2
            elif shutil.which("docker-compose") and self._answers(V1):
                self._resolved = V1
            else:
                raise BlockedError(
                    "no Compose found: neither `docker compose` (v2 plugin) nor `docker-compose` (v1)",
                    hint="install the docker-compose-plugin package (or docker-compose)",
                )
        return self._resolved

    @property
    def is_v1(self) -> bool:
        return self.binary() == V1

    def version(self) -> str:
        record = self.shell.run([*self.binary(), "version", "--short"], timeout_s=30)
        return record.stdout.strip() or record.stderr.strip()

    def _answers(self, argv: list[str]) -> bool:
        return self.shell.run([*argv, "version"], timeout_s=30).exit_code == 0

    def _env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.docker_host} if self.docker_host else {}

    def run(self, *args: str, timeout_s: float = 600, check: bool = False) -> CommandRecord:
        argv = [*self.binary(), "-p", self.project_name]
        for f in self.files:
            argv += ["-f", f]
        return self.shell.run(
            [*argv, *args], cwd=self.directory, env=self._env(), timeout_s=timeout_s, check=check
        )

    def ps(self) -> CommandRecord:
        return (
            self.run("ps", "-a", timeout_s=60) if not self.is_v1 else self.run("ps", timeout_s=60)
        )

    def logs(self, service: str, tail: int = 200) -> CommandRecord:
        return self.run("logs", "--no-color", f"--tail={tail}", service, timeout_s=60)
