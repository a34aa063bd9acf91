"""afasa-ops' own services as processes over real infrastructure, for tests that run the
functional checks or probes against them: a migrated PostgreSQL database, a private NATS
JetStream server with the AFASA stream, an OIDC issuer whose key the checks sign tokens with,
and the UbiBot double (the only double) holding `demo-key`'s channels."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.api_stack import (
    MASTER_KEY,
    ApiDb,
    Process,
    UbibotCloud,
    create_stream,
    migrated_database,
    serve_process,
    ubibot_channel,
    worker_process,
    write_config,
)
from tests.support.oidc_issuer import OidcIssuer, running_issuer
from tests.support.services import NatsServer, free_port

UBIBOT_KEY = "demo-key"
# What `serve` and the workers need to read the tenants' stored UbiBot keys.
SERVICE_ENV = {"AFASA_MASTER_KEY_BASE64": MASTER_KEY}


@dataclass
class Platform:
    db: ApiDb
    nats: NatsServer
    issuer: OidcIssuer
    ubibot: UbibotCloud
    tmp: Path

    def config(
        self,
        name: str,
        port: int,
        base_url: str,
        *,
        tenant: uuid.UUID | None = None,
        sections: str = "",
        checks: str = "",
    ) -> Path:
        """`name.toml`: the services on `port`, and [checks] against `base_url` signing its
        tokens with the issuer's key (the check's tenant when given; other [checks] keys in
        `checks`, other sections in `sections`)."""
        lines = [
            sections,
            "[checks]",
            f'base_url = "{base_url}"',
            *([f'tenant_id = "{tenant}"'] if tenant is not None else []),
            f'token_signing_key = {{ file = "{self.tmp / "issuer.pem"}" }}',
            f'token_kid = "{self.issuer.kid}"',
            checks,
        ]
        return write_config(
            self.tmp / f"{name}.toml",
            self.db,
            nats_url=self.nats.url,
            storage_url=f"file://{self.tmp / 'storage'}",
            issuer_url=self.issuer.url,
            ubibot_url=self.ubibot.base_url,
            port=port,
            extra="\n".join(line for line in lines if line),
        )

    def store_ubibot_key(self, tenant: uuid.UUID) -> None:
        """The tenant's UbiBot key, stored encrypted as the API reads it."""
        from afasa_ops.infra.postgres import make_engine
        from afasa_ops.platform.secrets import master_key_from_env, store_secret

        engine = make_engine(self.db.app_dsn, pool_size=1)
        try:
            key = master_key_from_env(SERVICE_ENV)
            store_secret(engine, tenant, "ubibot_api_key", UBIBOT_KEY, key)
        finally:
            engine.dispose()


@contextmanager
def running_platform(tmp: Path, channels: int) -> Iterator[Platform]:
    """The infrastructure, with `channels` UbiBot channels behind `demo-key`."""
    nats_server = NatsServer(free_port(), tmp / "jetstream")
    nats_server.start()
    try:
        with migrated_database() as db, running_issuer() as issuer, UbibotCloud() as ubibot:
            create_stream(nats_server.url)
            ubibot.channels[UBIBOT_KEY] = [ubibot_channel(i) for i in range(channels)]
            (tmp / "issuer.pem").write_text(issuer.private_pem)
            yield Platform(db, nats_server, issuer, ubibot, tmp)
    finally:
        nats_server.stop()


@contextmanager
def afasa_ops_services(
    platform: Platform, config: Path, port: int, workers: tuple[str, ...] = ()
) -> Iterator[Process]:
    """`afasa-ops serve` on `port` and the given workers as processes, logs in the platform's
    folder; yields the serve process."""
    procs: list[Process] = []
    try:
        serve = serve_process(config, port, platform.tmp / "serve.log", SERVICE_ENV)
        procs.append(serve)
        for kind in workers:
            log = platform.tmp / f"worker-{kind}.log"
            procs.append(worker_process(config, kind, log, SERVICE_ENV))
        yield serve
    finally:
        for proc in procs:
            proc.stop()
