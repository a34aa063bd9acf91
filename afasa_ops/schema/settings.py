"""What the schema tools need from the configuration, resolved once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from afasa_ops.infra.postgres import Timeouts

if TYPE_CHECKING:
    from afasa_ops.config import Settings


@dataclass(frozen=True)
class SchemaSettings:
    admin_dsn: str
    app_role: str = "afasa_app"
    app_password: str | None = None
    app_dsn: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    migrations_dir: Path | None = None
    vector: str = "auto"  # auto | require | off

    @classmethod
    def from_settings(cls, settings: Settings) -> SchemaSettings:
        from afasa_ops.config import require, secret_value

        db = settings.database
        admin = require(settings, "database", "admin_dsn", "the DSN migrations run with")
        return cls(
            admin_dsn=admin,
            app_role=db.app_role,
            app_password=db.app_password.get() if db.app_password else None,
            app_dsn=secret_value(db.app_dsn),
            timeouts=Timeouts.of(db),
            migrations_dir=migrations_dir(settings),
            vector=db.vector,
        )


def migrations_dir(settings: Settings) -> Path | None:
    """[database] migrations_dir resolved against the config file (None: the project's)."""
    configured = settings.database.migrations_dir
    if not configured:
        return None
    path = Path(configured)
    return path if path.is_absolute() else settings.base_dir / path


def admin_dsn_missing(settings: Settings) -> str | None:
    """Why there is no admin DSN to use, or None when there is one."""
    from afasa_ops.config import missing_key, secret_value

    if secret_value(settings.database.admin_dsn):
        return None
    return missing_key(settings, "database", "admin_dsn", "database steps skipped")
