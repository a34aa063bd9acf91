"""The Compose CLI driver: `docker compose` (v2 plugin) or `docker-compose` (v1), same verbs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from afasa_ops.errors import BlockedError
from afasa_ops.findings import CommandRecord
from afasa_ops.infra.shell import Shell, last_line

# Compose v1 ends a failed build with "Service 'api' failed to build : Build failed"; why it
# failed is a line `docker build` printed above that (COPY failed, a RUN's non-zero code).
_BUILD_FAILED = re.compile(r"failed to build", re.IGNORECASE)
_CAUSE = re.compile(
    r"error|failed|not found|denied|no such|returned a non-zero code", re.IGNORECASE
)
# Compose v2 builds with BuildKit: its last line says why ("failed to solve: ... not found")
# but not which service; the step that failed is quoted above it as "> [api 2/3] COPY x y:".
_SOLVE_FAILED = re.compile(r"failed to solve", re.IGNORECASE)
_BUILDKIT_STEP = re.compile(r"^\s*> \[(?P<step>[^\]]+)\] (?P<instruction>.*?):?\s*$")

V2 = ["docker", "compose"]
V1 = ["docker-compose"]

# Which Compose is installed does not change while the tool runs, and asking costs a second
# per process with v1: detect once per process. command -> (argv, version)
_DETECTED: dict[str, tuple[list[str], str]] = {}


@dataclass
class ComposeCli:
    shell: Shell
    directory: Path
    files: list[str]
    project_name: str
    command: str = "auto"
    docker_host: str | None = None
    # Where the version is remembered between runs, keyed by the installed binaries.
    version_cache: Path | None = None

    def binary(self) -> list[str]:
        """Which Compose runs here; v2 is preferred when both are installed."""
        return self._detect()[0]

    @property
    def is_v1(self) -> bool:
        return self.binary() == V1

    def version(self) -> str:
        return self._detect()[1]

    def _detect(self) -> tuple[list[str], str]:
        if self.command not in _DETECTED:
            candidates = [self.command.split()] if self.command != "auto" else [V2, V1]
            for argv in candidates:
                if shutil.which(argv[0]) is None:
                    continue
                version = self._remembered(argv)
                if version is None:
                    record = self.shell.run([*argv, "version", "--short"], timeout_s=30)
                    if record.exit_code != 0:
                        continue
                    version = record.stdout.strip()
                    self._remember(argv, version)
                _DETECTED[self.command] = (argv, version)
                break
            else:
                raise BlockedError(
                    "no Compose found: neither `docker compose` (v2 plugin) nor `docker-compose` (v1)"
                    if self.command == "auto"
                    else f"[compose] command {self.command!r} does not answer `version`",
                    hint="install the docker-compose-plugin package (or docker-compose)",
                )
        return _DETECTED[self.command]

    def _remembered(self, argv: list[str]) -> str | None:
        """The version as recorded for these very binaries: a v1 process takes about a
        second to start, and v2's (the docker CLI starting its plugin) tens of milliseconds
        on every run."""
        stamp = _binary_stamp(argv)
        if self.version_cache is None or stamp is None:
            return None
        try:
            cached = json.loads(self.version_cache.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(cached, dict) and cached.get("binary") == stamp:
            return str(cached.get("version") or "") or None
        return None

    def _remember(self, argv: list[str], version: str) -> None:
        stamp = _binary_stamp(argv)
        if self.version_cache is None or stamp is None:
            return
        with contextlib.suppress(OSError):
            self.version_cache.parent.mkdir(parents=True, exist_ok=True)
            self.version_cache.write_text(json.dumps({"binary": stamp, "version": version}))

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


def failure_line(record: CommandRecord) -> str:
    """The one line that says why a Compose command failed: its last line, plus the build
    error above it when that last line only says a build failed (v1), or the build step
    that failed, with its service, when BuildKit's last line does not name it (v2)."""
    output = record.stderr or record.stdout
    last = last_line(output)
    if _SOLVE_FAILED.search(last):
        # The build's own log (with the quoted step) is on stdout, the verdict on stderr.
        both = f"{record.stdout}\n{record.stderr}"
        steps = [m for m in map(_BUILDKIT_STEP.match, both.splitlines()) if m]
        if steps:
            where = steps[-1]
            return f"{last} (at [{where['step']}] {where['instruction']})"
        return last
    if _BUILD_FAILED.search(last):
        above = [line.strip() for line in output.strip().splitlines()[:-1] if line.strip()]
        cause = next((line for line in reversed(above) if _CAUSE.search(line)), None)
        if cause:
            return f"{last}: {cause}"
    return last


# Where the docker CLI looks for its plugins after its own config directory (the CLI's
# cli-plugins/manager, Unix defaults), in its order.
_SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def _binary_stamp(argv: list[str]) -> str | None:
    """The installed executable's path, size and mtime: what changes when it is upgraded.
    For `docker compose`, also every place the docker CLI may find the plugin in (and its
    config.json, which can name more): installing, upgrading or removing it changes this."""
    found = shutil.which(argv[0])
    stamp = _file_stamp(found) if found else None
    if stamp is None or argv != V2:
        return stamp
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    places = [config / "config.json", config / "cli-plugins" / "docker-compose"]
    places += [Path(d) / "docker-compose" for d in _SYSTEM_PLUGIN_DIRS]
    return ";".join([stamp, *(_file_stamp(str(p)) or f"{p}:-" for p in places)])


def _file_stamp(found: str) -> str | None:
    path = os.path.realpath(found)
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"
