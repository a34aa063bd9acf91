"""Step kind `api.config` (doctor api): would `afasa-ops serve` start, and can the phase 4 checks authenticate?"""

from __future__ import annotations

from afasa_ops.config import missing_key, secret_value
from afasa_ops.errors import ConfigError
from afasa_ops.findings import Finding
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment
from afasa_ops.runbook.step import Params, ReadOnlyStep, register
from afasa_ops.tokens import check_auth_config


@register
class ApiConfig(ReadOnlyStep[Params]):
    """Read-only: the [api] auth settings are coherent and the service has an app DSN."""

    kind = "api.config"

    def check(self, ctx: Context) -> Assessment:
        settings = ctx.settings
        try:
            check_auth_config(settings.api)
        except ConfigError as exc:
            return Assessment.blocked(str(exc), [Finding.error("api.auth_config", exc.message)])
        if not secret_value(settings.database.app_dsn):
            why = missing_key(settings, "database", "app_dsn", "`afasa-ops serve` connects as it")
            return Assessment.blocked(why, [Finding.error("api.no_app_dsn", why)])
        findings = []
        checks = settings.checks
        has_key = secret_value(checks.token) or secret_value(checks.token_signing_key)
        if not has_key and settings.api.dev_hs256_secret is None:
            findings.append(
                Finding.warning(
                    "checks.no_credentials",
                    "[checks] has no token or token_signing_key: phase 4 cannot authenticate",
                )
            )
        mode = "HS256 development" if settings.api.dev_hs256_secret else "OIDC RS256"
        return Assessment.ok(
            f"serve would start ({mode} tokens, {settings.api.environment})", findings
        )
