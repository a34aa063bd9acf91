"""The stack under repair as the steps see it: its Compose project (parsed by afasa-ops) and
the one Compose CLI driver of a run."""

from __future__ import annotations

from afasa_ops.compose.project import ComposeProject, load_project
from afasa_ops.infra.compose import ComposeCli
from afasa_ops.runbook.context import Context

COMPOSE_VERSION_CACHE = "compose-version.json"


def project_of(ctx: Context) -> ComposeProject:
    compose = ctx.settings.compose
    return load_project(ctx.repo, compose.files, project_name=compose.project_name)


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
            version_cache=ctx.state_dir / COMPOSE_VERSION_CACHE,
        )

    compose: ComposeCli = ctx.driver("compose", build)
    return compose
