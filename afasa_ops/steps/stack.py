"""The stack under repair as the steps see it: its Compose project (parsed by afasa-ops) and
the one Compose CLI driver of a run."""

from __future__ import annotations

from pathlib import Path

from afasa_ops.compose.project import ComposeProject, load_project
from afasa_ops.infra.compose import ComposeCli
from afasa_ops.runbook.context import Context

COMPOSE_VERSION_CACHE = "compose-version.json"
PROJECT_FACT = "compose_project"


def project_of(ctx: Context) -> ComposeProject:
    """The project as its files are now. Steps edit them mid-run (the pin, a patch), so the
    parsed project is reused only while no file it was read from has changed."""
    compose = ctx.settings.compose
    files = [ctx.repo / f for f in (compose.files or ["docker-compose.yml"])]
    stamp = [_stat(p) for p in [*files, ctx.repo / ".env"]]
    cached = ctx.facts.get(PROJECT_FACT)
    if cached is not None and cached[0] == stamp:
        project: ComposeProject = cached[1]
        return project
    project = load_project(ctx.repo, compose.files, project_name=compose.project_name)
    ctx.facts[PROJECT_FACT] = (stamp, project)
    return project


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def compose_of(ctx: Context) -> ComposeCli:
    def build() -> ComposeCli:
        settings = ctx.settings
        return ComposeCli(
            ctx.shell,
            ctx.repo,
            list(settings.compose.files),
            project_of(ctx).name,
            settings.compose.command,
            settings.docker.host,
            version_cache=_state_file(ctx, COMPOSE_VERSION_CACHE),
        )

    compose: ComposeCli = ctx.driver("compose", build)
    return compose


def _state_file(ctx: Context, name: str) -> Path | None:
    try:
        return ctx.state_file(name)
    except OSError:  # a read-only checkout: Compose is simply asked every time
        return None


def docker_env(ctx: Context) -> dict[str, str]:
    """The environment of a docker CLI call: the configured engine, when there is one."""
    host = ctx.settings.docker.host
    return {"DOCKER_HOST": host} if host else {}


def image_ids(ctx: Context, names: list[str]) -> list[str] | None:
    """The ids of these local images, in the order given; None when any is absent. One
    `docker image inspect` for them all."""
    if not names:
        return []
    argv = ["docker", "image", "inspect", "--format", "{{.Id}}", *names]
    record = ctx.shell.run(argv, env=docker_env(ctx), timeout_s=60)
    ids = record.stdout.split()
    return ids if record.exit_code == 0 and len(ids) == len(names) else None
