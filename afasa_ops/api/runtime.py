"""What the running service holds: settings, the token verifier, the app-role engine, probes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from afasa_ops.api.auth import TokenVerifier, build_verifier
from afasa_ops.api.health import Probe, database_probe, nats_probe, storage_probe
from afasa_ops.config import Settings, secret_value
from afasa_ops.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass
class ApiRuntime:
    settings: Settings
    verifier: TokenVerifier
    engine: Engine
    probes: dict[str, Probe] = field(default_factory=dict)

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings) -> ApiRuntime:
    """Everything checked before the first request: bad configuration stops the start."""
    verifier = build_verifier(settings.api)
    dsn = secret_value(settings.database.app_dsn)
    if not dsn:
        raise ConfigError(
            "[database] app_dsn is not set: the API connects as the application role",
            hint="set [database] app_dsn (a reference when it carries a password)",
        )
    from afasa_ops.infra.postgres import Timeouts, make_engine

    engine = make_engine(
        dsn,
        timeouts=Timeouts.of(settings.database),
        pool_size=10,
        application_name="afasa-ops-api",
    )
    probes = {
        "database": database_probe(engine),
        "nats": nats_probe(settings.nats.url, settings.nats.stream),
        "storage": storage_probe(settings),
    }
    return ApiRuntime(settings, verifier, engine, probes)
