"""Step kind `services.adopt`: afasa-ops' own API and workers in front of AFASA's stubbed
routes, through a Compose override (afasa_ops/compose/override.py), without touching AFASA's
code. The override, its build context and COMPOSE_FILE in .env are committed under Phase 0's
rules; `afasa-ops rollback` returns to the pre-audit tag and so removes them."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from afasa_ops import __version__
from afasa_ops.compose import wheelhouse
from afasa_ops.compose.override import (
    BUILD_DIR,
    BUILD_GITIGNORE,
    DEFAULT_BASE_IMAGE,
    OVERRIDE_FILE,
    ROUTER_PREFIX,
    SERVICE_PREFIX,
    compose_file_value,
    inputs_from,
    render_dockerfile,
    render_override,
    route_rules,
    traefik_major,
    with_compose_file,
)
from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.files import atomic_write, atomic_write_bytes, unified_diff
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


@dataclass
class WheelWork:
    """What the override's build context needs before phase 3 can build its image."""

    own: bool  # afasa-ops' own wheel is missing or was packed from other code
    copies: list[Path] = field(default_factory=list)  # from [adopt] wheelhouse
    downloads: list[wheelhouse.Pin] = field(default_factory=list)  # by pip
    findings: list[Finding] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return bool(self.own or self.copies or self.downloads or self.findings)

    def describe(self) -> str:
        parts = ["pack afasa-ops from the installed code"] if self.own else []
        if self.copies:
            parts.append(f"copy {len(self.copies)} from the wheelhouse")
        if self.downloads:
            parts.append(f"download {len(self.downloads)} with pip")
        return ", ".join(parts) or "up to date"


def _differing_wheels(source: Path, target: Path) -> list[Path]:
    """Wheels of the wheelhouse the build context lacks (or holds with another size)."""
    return [
        w
        for w in sorted(source.glob("*.whl"))
        if not (target / w.name).exists() or (target / w.name).stat().st_size != w.stat().st_size
    ]


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
        source = wheelhouse.source_fingerprint()
        inputs = inputs_from(project, __version__, main, self.params.base_image, source)
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
        source = self._wheelhouse(ctx)
        if source is not None and not source.is_dir():
            problem = Finding.error(
                "services.wheelhouse_missing",
                f"[adopt] wheelhouse {source} is not a directory; set it to a folder of the "
                "wheels of afasa-ops[service]'s dependencies, or remove it to download them",
            )
            return Assessment.blocked("the [adopt] wheelhouse is not a directory", [problem])
        differing = self._differing(ctx)
        wheels = self._wheel_work(ctx)
        findings = [choice, routes, *wheels.findings]
        if not differing and not wheels.pending:
            return Assessment.ok(f"{OVERRIDE_FILE} is as wanted ({why})", findings)
        if not differing:
            return Assessment.pending(f"{BUILD_DIR}/wheels: {wheels.describe()}", findings)
        diff = "".join(unified_diff(cur, new, rel) for rel, (cur, new) in differing.items())
        return Assessment.pending(
            f"{OVERRIDE_FILE} will route {len(rules)} repaired routes to afasa-ops ({why})",
            findings,
            diff=diff,
        )

    def apply(self, ctx: Context) -> Outcome:
        message = required_message(self.id, self.params.message)
        # The wheels first: they are ignored by git, so a failed download leaves no commit
        # and no half-written override behind.
        wheels = self._fill_wheels(ctx)
        differing = self._differing(ctx)
        previous: dict[str, str | None] = {}
        for rel, (_current, text) in differing.items():
            path = ctx.repo / rel
            previous[rel] = path.read_text() if path.exists() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(ctx, path, text)
        # .env usually holds secrets and is ignored by git: then it is written, not committed.
        ignored = ctx.git.ignored_paths(list(differing))
        paths = [rel for rel in differing if rel not in ignored]
        record = commit_change(ctx, paths, message) if paths else None
        commit = record.commit if record else None
        wrote = f"wrote {', '.join(differing)}" if differing else "override as wanted"
        return Outcome(
            True,
            wrote + (f"; committed {commit[:12]}" if commit else "") + f"; wheels: {wheels}",
            undo={"previous": previous},
            artifacts={
                "commit": commit,
                "files": list(differing),
                "wheels": wheels,
                # The report lists them: which of AFASA's routes afasa-ops now serves.
                "moved_routes": [
                    {
                        "rule": rule,
                        "service": f"{SERVICE_PREFIX}-api",
                        "router": f"{ROUTER_PREFIX}-{name}",
                    }
                    for name, rule in route_rules(traefik_major(ctx.project()))
                ],
            },
        )

    def _wheelhouse(self, ctx: Context) -> Path | None:
        wheelhouse = ctx.settings.adopt.wheelhouse
        return (ctx.settings.base_dir / wheelhouse).resolve() if wheelhouse else None

    def _wheel_work(self, ctx: Context) -> WheelWork:
        """What the build context's wheels lack: afasa-ops as installed now, and its
        dependencies (from the wheelhouse when configured, else from pip)."""
        target = ctx.repo / BUILD_DIR / "wheels"
        stamp = target / wheelhouse.STAMP
        own = not stamp.exists() or stamp.read_text() != wheelhouse.source_fingerprint()
        source = self._wheelhouse(ctx)
        if source is not None:
            return WheelWork(own, copies=_differing_wheels(source, target))
        try:
            return WheelWork(
                own, downloads=wheelhouse.missing_pins(wheelhouse.service_pins(), target)
            )
        except LookupError as exc:
            problem = Finding.error(
                "services.dependency_missing",
                f"afasa-ops' own installation is incomplete: {exc}; reinstall afasa-ops[service]",
            )
            return WheelWork(own, findings=[problem])

    def _fill_wheels(self, ctx: Context) -> str:
        work = self._wheel_work(ctx)
        if work.findings:
            raise BlockedError(work.findings[0].message)
        target = ctx.repo / BUILD_DIR / "wheels"
        target.mkdir(parents=True, exist_ok=True)
        for wheel in work.copies:
            shutil.copyfile(wheel, target / wheel.name)
        if work.downloads:
            argv = wheelhouse.pip_download_argv(sys.executable, work.downloads, target)
            done = ctx.shell.run(argv, timeout_s=900)
            if done.exit_code != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise DriverError(
                    f"pip could not download {len(work.downloads)} wheel(s) for the "
                    f"afasa-ops-services image: {last}",
                    hint="set [adopt] wheelhouse to a folder holding afasa-ops[service]'s "
                    "dependencies as wheels (docs/patch.md)",
                )
        if work.own:
            try:
                name, data = wheelhouse.pack_installed()
            except LookupError as exc:
                raise BlockedError(f"cannot pack afasa-ops for its image: {exc}") from None
            atomic_write_bytes(target / name, data)
            (target / wheelhouse.STAMP).write_text(wheelhouse.source_fingerprint())
        return work.describe()

    def rollback(self, ctx: Context, outcome: Outcome) -> None:
        previous = outcome.undo.get("previous") or {}
        for rel, text in previous.items():
            path = ctx.repo / rel
            if text is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, text)
        if previous.get(f"{BUILD_DIR}/Dockerfile", "") is None:
            shutil.rmtree(ctx.repo / BUILD_DIR, ignore_errors=True)  # the context was ours
