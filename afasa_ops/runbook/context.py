"""What a step sees of the world: settings, the operator's options, one driver per external
system (built on first use, closed at the end of the run) and the facts a run learns once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from afasa_ops.config import Settings
from afasa_ops.infra.shell import Shell
from afasa_ops.runbook.journal import Journal

if TYPE_CHECKING:
    from afasa_ops.compose.project import ComposeProject
    from afasa_ops.infra.compose import ComposeCli
    from afasa_ops.infra.docker import DockerCli, DockerEngine, EngineFacts
    from afasa_ops.infra.git import GitRepo
    from afasa_ops.infra.postgres import Postgres

COMPOSE_VERSION_CACHE = "compose-version.json"


@dataclass
class Options:
    """The operator's choices for one invocation."""

    yes: bool = False
    step_by_step: bool = False
    allow_dirty: bool = False
    no_commit: bool = False
    allow_engine_downgrade: bool = False
    allow_daemon_config: bool = False
    interactive: bool = False


@dataclass
class Facts:
    """What the run learns once and reuses. Each fact is computed by the step that reads it
    (through Context), never left behind by another step's check, so `--only` judges a step
    exactly as a full run does."""

    engine: EngineFacts | None = None
    # When this run last (re)started Traefik: its logs are judged from then on.
    traefik_recreated_at: datetime | None = None
    # The parsed compose project, with the stat of the files it was read from.
    project: tuple[list[tuple[int, int, int] | None], ComposeProject] | None = None


class _Closeable(Protocol):
    def close(self) -> None: ...


def _never(question: str) -> bool:
    return False


def _quiet(message: str) -> None:
    return None


@dataclass
class Context:
    settings: Settings
    options: Options = field(default_factory=Options)
    shell: Shell = field(default_factory=Shell)
    run_id: str = ""
    # Runbook-level parameters (the repair date, branch names...), merged over defaults.
    params: dict[str, Any] = field(default_factory=dict)
    facts: Facts = field(default_factory=Facts)
    # The run's journal; None under plan and doctor, which record nothing.
    journal: Journal | None = None
    confirm: Callable[[str], bool] = _never
    say: Callable[[str], None] = _quiet
    _git: GitRepo | None = field(default=None, init=False, repr=False)
    _docker: DockerEngine | None = field(default=None, init=False, repr=False)
    _docker_cli: DockerCli | None = field(default=None, init=False, repr=False)
    _compose: ComposeCli | None = field(default=None, init=False, repr=False)
    _postgres: Postgres | None = field(default=None, init=False, repr=False)

    @property
    def repo(self) -> Path:
        return self.settings.repo_path

    @property
    def state_dir(self) -> Path:
        return self.repo / ".afasa-ops"

    def state_file(self, name: str) -> Path:
        """A file of the tool's own state in the repo: .afasa-ops/ is created and kept out of
        git first, so even `plan` leaves `git status` clean."""
        from afasa_ops.runbook.journal import ensure_state_dir

        return ensure_state_dir(self.repo) / name

    def branch(self) -> Context:
        """The same run for another thread (a concurrent phase's step): settings, options,
        parameters, facts and journal shared; its own shell record and drivers, built on
        first use and closed by its close()."""
        return replace(self, shell=Shell(default_timeout_s=self.shell.default_timeout_s))

    # -- drivers -----------------------------------------------------------------------------
    @property
    def git(self) -> GitRepo:
        if self._git is None:
            from afasa_ops.infra.git import GitRepo

            self._git = GitRepo(self.repo)
        return self._git

    @property
    def docker(self) -> DockerEngine:
        if self._docker is None:
            from afasa_ops.infra.docker import DockerEngine

            self._docker = DockerEngine(self.settings.docker.host)
        return self._docker

    @property
    def docker_cli(self) -> DockerCli:
        if self._docker_cli is None:
            from afasa_ops.infra.docker import DockerCli

            self._docker_cli = DockerCli(self.shell, self.settings.docker.host)
        return self._docker_cli

    @property
    def compose(self) -> ComposeCli:
        """The one Compose CLI driver of a run, for the project the repo's files define."""
        if self._compose is None:
            from afasa_ops.infra.compose import ComposeCli

            compose = self.settings.compose
            self._compose = ComposeCli(
                self.shell,
                self.repo,
                self.compose_files(),
                self.project().name,
                compose.command,
                self.settings.docker.host,
                version_cache=self.cache_file(COMPOSE_VERSION_CACHE),
            )
        # Phase 2 may add the adoption override mid-run: every later call must include it.
        self._compose.files = self.compose_files()
        return self._compose

    @property
    def postgres(self) -> Postgres:
        """One admin connection per run, over [database] admin_dsn."""
        if self._postgres is None:
            from afasa_ops.infra.postgres import Postgres
            from afasa_ops.schema.settings import SchemaSettings

            cfg = SchemaSettings.from_settings(self.settings)
            self._postgres = Postgres(cfg.admin_dsn, cfg.timeouts)
        return self._postgres

    def engine_facts(self) -> EngineFacts:
        """Engine version, API range and OS: asked once per run (again after a restart)."""
        if self.facts.engine is None:
            self.facts.engine = self.docker.facts()
        return self.facts.engine

    def forget_engine(self) -> None:
        """The engine was restarted or replaced: reconnect and ask again."""
        if self._docker is not None:
            self._docker.close()
        self.facts.engine = None

    def project(self) -> ComposeProject:
        """The compose project as its files are now. Steps edit them mid-run (the pin, a
        patch), so the parsed project is reused only while no file it was read from changed."""
        from afasa_ops.compose.project import load_project

        compose = self.settings.compose
        names = self.compose_files()
        files = [self.repo / f for f in names]
        stamp = [_stat(p) for p in [*files, self.repo / ".env"]]
        cached = self.facts.project
        if cached is not None and cached[0] == stamp:
            return cached[1]
        project = load_project(self.repo, names, project_name=compose.project_name)
        self.facts.project = (stamp, project)
        return project

    def compose_files(self) -> list[str]:
        """[compose] files, plus the adoption override once it exists in the checkout (so
        every Compose call includes it, as COMPOSE_FILE in .env does for operators)."""
        from afasa_ops.compose.override import OVERRIDE_FILE

        files = list(self.settings.compose.files or ["docker-compose.yml"])
        if OVERRIDE_FILE not in files and (self.repo / OVERRIDE_FILE).exists():
            files.append(OVERRIDE_FILE)
        return files

    def state_file_or_none(self, name: str) -> Path | None:
        try:
            return self.state_file(name)
        except OSError:  # a read-only checkout: the cache is simply not kept
            return None

    def cache_file(self, name: str) -> Path | None:
        """A cache of this checkout in the user's cache directory, never in the checkout, so
        plan and doctor leave it (and its .git) byte for byte as they found it."""
        try:
            return checkout_cache_dir(self.repo) / name
        except OSError:  # no usable cache directory: the cache is simply not kept
            return None

    def close(self) -> None:
        drivers: list[_Closeable | None] = [self._docker, self._postgres]
        for drv in drivers:
            if drv is not None:
                drv.close()
        self._git = self._docker = self._docker_cli = self._compose = self._postgres = None


def checkout_cache_dir(repo: Path) -> Path:
    """$XDG_CACHE_HOME/afasa-ops/<key> (default ~/.cache), the key naming the checkout."""
    import hashlib
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    resolved = str(repo.resolve())
    key = f"{repo.resolve().name}-{hashlib.sha256(resolved.encode()).hexdigest()[:12]}"
    path = Path(base) / "afasa-ops" / key
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
