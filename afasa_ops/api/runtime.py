"""What the running service holds: settings, the token verifier, the app-role engine, probes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from afasa_ops.api.auth import TokenVerifier, build_verifier
from afasa_ops.api.health import Probe, database_probe, nats_probe, storage_probe
from afasa_ops.config import Settings, require

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass
class ApiRuntime:
    settings: Settings
    verifier: TokenVerifier
    engine: Engine
    probes: dict[str, Probe] = field(default_factory=dict)
    other_engines: list[Engine] = field(default_factory=list)

    def close(self) -> None:
        self.engine.dispose()
        for engine in self.other_engines:
            engine.dispose()


def build_runtime(settings: Settings) -> ApiRuntime:
    """Everything checked before the first request: bad configuration stops the start."""
    verifier = build_verifier(settings.api)
    dsn = require(settings, "database", "app_dsn", "the API connects as the application role")
    from afasa_ops.infra.postgres import Timeouts, make_engine

    db = settings.database
    engine = make_engine(
        dsn,
        timeouts=Timeouts.of(db, statement_s=db.api_statement_timeout_s),
        pool_size=10,
        application_name="afasa-ops-api",
    )
    # /readyz never waits behind application work: its own connection, its own short bounds.
    short = Timeouts.of(db, statement_s=2.0)
    probe_engine = make_engine(
        dsn,
        timeouts=Timeouts(
            connect_s=min(db.connect_timeout_s or 2.0, 2.0),
            lock_s=min(short.lock_s, 2.0),
            statement_s=2.0,
            pool_s=1.0,
            idle_s=short.idle_s,
            keepalive_s=short.keepalive_s,
        ),
        pool_size=1,
        application_name="afasa-ops-readyz",
    )
    probes = {
        "database": database_probe(probe_engine),
        "nats": nats_probe(settings.nats.url, settings.nats.stream),
        "storage": storage_probe(settings),
    }
    return ApiRuntime(settings, verifier, engine, probes, [probe_engine])
