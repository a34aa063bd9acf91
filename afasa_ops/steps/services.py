"""Step kind `services.adopt`: afasa-ops' own API and workers in front of AFASA's stubbed
routes, through a Compose override (afasa_ops/compose/override.py), without touching AFASA's
code. The override, its build context and COMPOSE_FILE in .env are committed under Phase 0's
rules; `afasa-ops rollback` returns to the pre-audit tag and so removes them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import Field

from afasa_ops import __version__
from afasa_ops.compose.override import (
    BUILD_DIR,
    BUILD_GITIGNORE,
    DEFAULT_BASE_IMAGE,
    OVERRIDE_FILE,
    compose_file_value,
    inputs_from,
    render_dockerfile,
    render_override,
    route_rules,
    traefik_major,
    with_compose_file,
)
from afasa_ops.files import atomic_write, unified_diff
from afasa_ops.findings import Finding
from afasa_ops.runbook.commits import commit_change, required_message
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.files import replace_file
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.step import Params, Step, register


class AdoptParams(Params):
    message: str | None = Field(default=None, description="Commit message of the override.")
    base_image: str = Field(
        default=DEFAULT_BASE_IMAGE, description="Default base image of the services' Dockerfile."
    )


def adoption_choice(ctx: Context) -> tuple[bool, str]:
    """Whether to adopt, and why ([adopt] mode; auto yields to a configured patch bundle)."""
    mode = ctx.settings.adopt.mode
    if mode == "never":
        return False, "[adopt] mode = never"
    if mode == "always":
        return True, "[adopt] mode = always"
    if ctx.settings.patch.bundle:
        return False, "[adopt] mode = auto and a patch bundle is configured: its code wins"
    return True, "[adopt] mode = auto and no patch bundle is configured"


@register
class ServicesAdopt(Step[AdoptParams]):
    """Writes docker-compose.afasa-ops.yml, its Dockerfile and COMPOSE_FILE in .env."""

    kind = "services.adopt"
    Params = AdoptParams

    def _wanted(self, ctx: Context) -> dict[str, str]:
        """Repo-relative path -> wanted text, for every file this step owns."""
        main = [f for f in ctx.settings.compose.files if f != OVERRIDE_FILE]
        project = ctx.project()
        inputs = inputs_from(project, __version__, main, self.params.base_image)
        env_path = ctx.repo / ".env"
        env_text = env_path.read_text() if env_path.exists() else ""
        return {
            OVERRIDE_FILE: render_override(inputs),
            f"{BUILD_DIR}/Dockerfile": render_dockerfile(__version__),
            f"{BUILD_DIR}/.gitignore": BUILD_GITIGNORE,
            ".env": with_compose_file(env_text, compose_file_value(main, os.pathsep)),
        }

    def _differing(self, ctx: Context) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for rel, text in self._wanted(ctx).items():
            path = ctx.repo / rel
            current = path.read_text() if path.exists() else ""
            if current != text:
                out[rel] = (current, text)
        return out

    def check(self, ctx: Context) -> Assessment:
        adopt, why = adoption_choice(ctx)
        choice = Finding.info("services.adopt_choice", why, adopt=adopt)
        if not adopt:
            return Assessment.ok(f"not adopting: {why}", [choice])
        rules = [rule for _, rule in route_rules(traefik_major(ctx.project()))]
        routes = Finding.info(
            "services.routes",
            "routes moved to afasa-ops-api: " + "; ".join(rules),
            service="afasa-ops-api",
            routes=rules,
        )
        differing = self._differing(ctx)
        missing = self._missing_wheels(ctx)
        findings = [choice, routes, *self._wheel_findings(ctx)]
        if any(f.code == "services.wheelhouse_missing" for f in findings):
            return Assessment.blocked("the [adopt] wheelhouse is not a directory", findings)
        if not differing and not missing:
            return Assessment.ok(f"{OVERRIDE_FILE} is as wanted ({why})", findings)
        if not differing:
            return Assessment.pending(
                f"{len(missing)} wheel(s) to copy into {BUILD_DIR}/wheels", findings
            )
        diff = "".join(unified_diff(cur, new, rel) for rel, (cur, new) in differing.items())
        return Assessment.pending(
            f"{OVERRIDE_FILE} will route {len(rules)} repaired routes to afasa-ops ({why})",
            findings,
            diff=diff,
        )

    def apply(self, ctx: Context) -> Outcome:
        message = required_message(self.id, self.params.message)
        differing = self._differing(ctx)
        previous: dict[str, str | None] = {}
        for rel, (_current, text) in differing.items():
            path = ctx.repo / rel
            previous[rel] = path.read_text() if path.exists() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(ctx, path, text)
        copied = self._copy_wheels(ctx)
        # .env usually holds secrets and is ignored by git: then it is written, not committed.
        ignored = ctx.git.ignored_paths(list(differing))
        paths = [rel for rel in differing if rel not in ignored]
        record = commit_change(ctx, paths, message)
        return Outcome(
            True,
            f"wrote {', '.join(differing)}"
            + (f"; committed {record.commit[:12]}" if record.commit else ""),
            undo={"previous": previous},
            artifacts={"commit": record.commit, "files": list(differing), "wheels": copied},
        )

    def _wheelhouse(self, ctx: Context) -> Path | None:
        wheelhouse = ctx.settings.adopt.wheelhouse
        return (ctx.settings.base_dir / wheelhouse).resolve() if wheelhouse else None

    def _missing_wheels(self, ctx: Context) -> list[Path]:
        """Wheels of the wheelhouse the build context lacks (or holds with another size)."""
        source = self._wheelhouse(ctx)
        if source is None or not source.is_dir():
            return []
        target = ctx.repo / BUILD_DIR / "wheels"
        return [
            w
            for w in sorted(source.glob("*.whl"))
            if not (target / w.name).exists()
            or (target / w.name).stat().st_size != w.stat().st_size
        ]

    def _wheel_findings(self, ctx: Context) -> list[Finding]:
        source = self._wheelhouse(ctx)
        if source is None:
            return [
                Finding.warning(
                    "services.no_wheelhouse",
                    f"no [adopt] wheelhouse: put afasa-ops[service]'s wheels into "
                    f"{BUILD_DIR}/wheels before phase 3 builds afasa-ops-api",
                )
            ]
        if not source.is_dir():
            return [
                Finding.error(
                    "services.wheelhouse_missing",
                    f"[adopt] wheelhouse {source} is not a directory; set it to the wheels of "
                    "afasa-ops[service] and its dependencies",
                )
            ]
        return []

    def _copy_wheels(self, ctx: Context) -> list[str]:
        target = ctx.repo / BUILD_DIR / "wheels"
        missing = self._missing_wheels(ctx)
        if missing:
            target.mkdir(parents=True, exist_ok=True)
        for wheel in missing:
            shutil.copyfile(wheel, target / wheel.name)
        return [w.name for w in missing]

    def rollback(self, ctx: Context, outcome: Outcome) -> None:
        for rel, text in (outcome.undo.get("previous") or {}).items():
            path = ctx.repo / rel
            if text is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, text)
