"""`afasa-ops schema status|sql|migrate|verify|baseline` over [database] admin_dsn. Each
returns the schema layer's result object; render/schema.py draws them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from afasa_ops.config import Settings
    from afasa_ops.schema.service import StatusReport
    from afasa_ops.schema.settings import SchemaSettings


def _cfg(settings: Settings) -> SchemaSettings:
    from afasa_ops.schema.settings import SchemaSettings

    return SchemaSettings.from_settings(settings)


def status(settings: Settings) -> StatusReport:
    """Applied and pending migrations, and why the database is blocked if it is."""
    from afasa_ops.schema import service

    return service.status(_cfg(settings))


def sql(settings: Settings) -> str:
    """Exactly the SQL `migrate` would run; changes nothing."""
    from afasa_ops.schema import service

    return service.sql(_cfg(settings))


def migrate(settings: Settings) -> Any:
    """Pending migrations applied under an advisory lock; the app role's grants re-applied."""
    from afasa_ops.schema import service

    return service.migrate(_cfg(settings))


def verify(settings: Settings) -> StatusReport:
    """Every migration applied, unchanged, and its verify query true."""
    from afasa_ops.schema import service

    return service.verify(_cfg(settings))


def baseline(settings: Settings, *, record: bool) -> Any:
    """A database made by the AFASA init SQL checked (and, with record, adopted)."""
    from afasa_ops.schema import service

    return service.baseline(_cfg(settings), record=record)
