"""Step kind `docker.engine`: the engine's version, API range and OS, and which Compose runs."""

from __future__ import annotations

from afasa_ops.errors import BlockedError
from afasa_ops.findings import Finding
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment
from afasa_ops.runbook.step import Params, ReadOnlyStep, register


@register
class EngineStep(ReadOnlyStep[Params]):
    """Engine version, API range and OS through the Engine API; which Compose runs here."""

    kind = "docker.engine"

    def check(self, ctx: Context) -> Assessment:
        try:
            facts = ctx.engine_facts()
        except BlockedError as exc:
            return Assessment.blocked(
                str(exc), [Finding.error("docker.unreachable", str(exc), host=ctx.docker.host)]
            )
        findings = [
            Finding.info(
                "docker.engine",
                f"Docker Engine {facts.version} on {facts.operating_system or facts.os} "
                f"({facts.arch}), API {facts.min_api_version}..{facts.api_version}",
                **facts.to_json(),
            )
        ]
        try:
            cli = ctx.compose
            flavour = "docker-compose (v1)" if cli.is_v1 else "docker compose (v2 plugin)"
            findings.append(
                Finding.info("docker.compose", f"{flavour} {cli.version()}", command=cli.binary())
            )
        except BlockedError as exc:
            findings.append(Finding.warning("docker.compose_missing", str(exc)))
        return Assessment.ok(
            f"engine {facts.version}, API min {facts.min_api_version} max {facts.api_version}",
            findings,
        )
