"""Incident bundles: when a step fails, capture the evidence before anyone touches anything.

<repo>/.afasa-ops/incidents/<run-id>/ and <run-id>.tar.gz. Every collector is independent:
one that cannot run writes why into its file and the bundle goes on. Everything is redacted.
"""

from __future__ import annotations

import json
import platform
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from afasa_ops.config import Settings
from afasa_ops.findings import CommandRecord
from afasa_ops.infra.compose import ComposeCli
from afasa_ops.infra.shell import Shell
from afasa_ops.redact import redactor
from afasa_ops.runbook.journal import ensure_state_dir
from afasa_ops.runbook.model import StepResult

COLLECTOR_TIMEOUT_S = 30


@dataclass
class Incident:
    directory: Path
    archive: Path
    files: list[str] = field(default_factory=list)


def format_command(record: CommandRecord) -> str:
    return (
        f"$ {' '.join(record.argv)}\n"
        f"exit code: {record.exit_code}   duration: {record.duration_s}s   cwd: {record.cwd}\n"
        f"--- stdout ---\n{record.stdout}\n--- stderr ---\n{record.stderr}\n"
    )


class IncidentWriter:
    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.shell = Shell(default_timeout_s=COLLECTOR_TIMEOUT_S)
        self.directory = ensure_state_dir(settings.repo_path) / "incidents" / run_id

    def write(self, step: StepResult, services: list[str], next_steps: str = "") -> Incident:
        self.directory.mkdir(parents=True, exist_ok=True)
        incident = Incident(self.directory, self.directory.with_suffix(".tar.gz"))
        collectors: list[tuple[str, Callable[[], str]]] = [
            ("failing-command.txt", lambda: self._failing_command(step)),
            ("step.json", lambda: json.dumps(step.to_json(), indent=2, default=str)),
            ("findings.json", lambda: json.dumps([f.__dict__ for f in step.findings], indent=2)),
            ("compose-ps.txt", self._compose_ps),
            ("docker-version.txt", lambda: self._docker("version")),
            ("docker-info.txt", lambda: self._docker("info")),
            ("uname.txt", lambda: self._command(["uname", "-a"])),
            ("os-release.txt", self._os_release),
        ]
        for service in services:
            collectors.append((f"logs/{service}.txt", self._logs_collector(service)))
        for name, collect in collectors:
            try:
                text = collect()
            except Exception as exc:  # a collector never aborts the bundle
                text = f"collector could not run: {type(exc).__name__}: {exc}\n"
            self._save(name, text, incident)
        self._save("README.txt", self._readme(step, services, next_steps), incident)
        with tarfile.open(incident.archive, "w:gz") as tar:
            tar.add(self.directory, arcname=self.run_id)
        return incident

    def _save(self, name: str, text: str, incident: Incident) -> None:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redactor.redact(text))
        incident.files.append(name)

    def _failing_command(self, step: StepResult) -> str:
        failed = [c for c in step.commands if c.exit_code != 0]
        chosen = failed[-1] if failed else (step.commands[-1] if step.commands else None)
        if chosen is None:
            return f"the step ran no external command; its error:\n{step.error or step.summary}\n"
        return format_command(chosen)

    def _command(self, argv: list[str]) -> str:
        if shutil.which(argv[0]) is None:
            return f"collector could not run: {argv[0]} is not installed\n"
        return format_command(self.shell.run(argv, timeout_s=COLLECTOR_TIMEOUT_S))

    def _docker(self, *args: str) -> str:
        """The docker CLI through its driver, so the configured engine is the one asked."""
        from afasa_ops.infra.docker import DockerCli

        if shutil.which("docker") is None:
            return "collector could not run: docker is not installed\n"
        cli = DockerCli(self.shell, self.settings.docker.host)
        return format_command(cli.run(*args, timeout_s=COLLECTOR_TIMEOUT_S))

    def _os_release(self) -> str:
        if shutil.which("lsb_release"):
            return self._command(["lsb_release", "-a"])
        release = Path("/etc/os-release")
        if release.exists():
            return "lsb_release is not installed; /etc/os-release:\n" + release.read_text()
        return (
            f"collector could not run: no lsb_release, no /etc/os-release ({platform.platform()})\n"
        )

    def _compose(self) -> ComposeCli:
        from afasa_ops.compose.project import load_project

        compose = self.settings.compose
        name = compose.project_name or load_project(self.settings.repo_path, compose.files).name
        return ComposeCli(
            self.shell,
            self.settings.repo_path,
            compose.files,
            name,
            compose.command,
            self.settings.docker.host,
        )

    def _compose_ps(self) -> str:
        return format_command(self._compose().ps())

    def _logs_collector(self, service: str) -> Callable[[], str]:
        return lambda: format_command(self._compose().logs(service, tail=200))

    def _readme(self, step: StepResult, services: list[str], next_steps: str) -> str:
        findings = "\n".join(f"  - [{f.severity}] {f.code}: {f.message}" for f in step.findings)
        return (
            f"afasa-ops incident for run {self.run_id}\n\n"
            f"What failed: step {step.id} ({step.title}), status {step.status}.\n"
            f"Error: {step.error or step.summary}\n"
            + (f"Findings:\n{findings}\n" if findings else "")
            + f"Services touched: {', '.join(services) or 'none'}\n\n"
            "Files: failing-command.txt (the command, its stdout and stderr), compose-ps.txt,\n"
            "logs/<service>.txt (docker compose logs --tail=200), docker-version.txt,\n"
            "docker-info.txt, uname.txt, os-release.txt, step.json, findings.json.\n\n"
            "What to try next:\n"
            + (
                next_steps
                or f"  1. Read failing-command.txt and the logs above.\n"
                f"  2. Fix the cause, then `afasa-ops run {step.phase}` again: steps already done are\n"
                f"     checked again, not re-applied.\n"
                f"  3. To go back to the starting point: `afasa-ops rollback`.\n"
            )
        )
