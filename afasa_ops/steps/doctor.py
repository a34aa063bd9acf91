"""Read-only checks for `afasa-ops doctor config|repo`."""

from __future__ import annotations

from afasa_ops.config import SecretRef, says, section_classes
from afasa_ops.errors import AfasaOpsError
from afasa_ops.findings import Finding
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment
from afasa_ops.runbook.step import Params, ReadOnlyStep, register


@register
class ConfigCheck(ReadOnlyStep[Params]):
    kind = "doctor.config"

    def check(self, ctx: Context) -> Assessment:
        findings: list[Finding] = []
        settings = ctx.settings
        for section_name in section_classes():
            section = getattr(settings, section_name)
            for key in type(section).model_fields:
                value = getattr(section, key)
                problem = value.problem() if isinstance(value, SecretRef) else None
                if problem:
                    findings.append(
                        Finding.warning(
                            "config.secret_unresolved", says(f"[{section_name}] {key}", problem)
                        )
                    )
        try:
            from afasa_ops.runbook.loader import load_runbook

            load_runbook(settings.runbook_path())
        except AfasaOpsError as exc:
            findings.append(Finding.error("config.runbook_invalid", str(exc)))
            return Assessment.blocked("the runbook does not load", findings)
        source = settings.source or "defaults"
        return Assessment.ok(f"configuration from {source} is valid", findings)


@register
class RepoCheck(ReadOnlyStep[Params]):
    kind = "doctor.repo"

    def check(self, ctx: Context) -> Assessment:
        repo = ctx.repo
        if not repo.is_dir():
            return Assessment.blocked(
                f"{repo} does not exist",
                [Finding.error("repo.missing", "set [repo] path to an AFASA checkout")],
            )
        findings: list[Finding] = []
        if not (repo / ".git").exists():
            findings.append(Finding.error("repo.not_git", f"{repo} is not a git work tree"))
        try:
            from afasa_ops.compose.project import load_project

            compose = ctx.settings.compose
            project = load_project(repo, compose.files, project_name=compose.project_name)
        except AfasaOpsError as exc:
            findings.append(Finding.error("repo.compose_unreadable", str(exc)))
            return Assessment.blocked("the compose project does not load", findings)
        findings.append(
            Finding.info(
                "repo.compose_project",
                f"project {project.name!r} (from {project.name_source}); networks: "
                + ", ".join(sorted(set(project.network_names().values()))),
            )
        )
        if any(f.severity == "error" for f in findings):
            return Assessment.blocked("the repository is not usable", findings)
        return Assessment.ok(f"{repo}: {len(project.services)} services", findings)
