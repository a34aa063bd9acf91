"""The PostgreSQL driver: connections with explicit timeouts, errors translated, DSNs redacted.

Every database call of the tool goes through here. psycopg errors become DriverError or
BlockedError with one line that names the database (password masked) and what to do. The
password of every DSN handed to this module is taught to the global redactor first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from afasa_ops.errors import AfasaOpsError, BlockedError, DriverError
from afasa_ops.redact import redactor

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Engine

    from afasa_ops.config import DatabaseSection

# SQLSTATEs that mean "someone else holds it" rather than "this is broken".
LOCK_STATES = {"55P03"}  # lock_not_available (lock_timeout)
AUTH_STATES = {"28P01", "28000"}  # invalid_password, invalid_authorization_specification


def redact_dsn(dsn: str) -> str:
    """The DSN with its password masked: safe to print, journal and bundle."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is not None:
            redactor.add(parts.password)
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            netloc = f"{parts.username or ''}:***@{host}"
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return dsn
    return redactor.redact(dsn)


def dsn_target(dsn: str) -> str:
    """user@host:port/dbname for messages (no password, no query)."""
    if "://" in dsn:
        p = urlsplit(dsn)
        port = f":{p.port}" if p.port else ""
        return f"{p.username or ''}@{p.hostname or 'localhost'}{port}{p.path or '/'}"
    return redact_dsn(dsn)


def sqlalchemy_url(dsn: str) -> str:
    """A SQLAlchemy URL for psycopg 3 from a libpq URL DSN."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


@dataclass(frozen=True)
class Timeouts:
    """Every wait a database session can make, as values ([database] *_timeout_s)."""

    connect_s: float = 5.0
    lock_s: float = 10.0
    statement_s: float = 300.0
    # How long an engine waits for a free pooled connection.
    pool_s: float = 30.0
    # A session that dies (kill -9, a lost host) must not keep its locks: the server ends an
    # idle transaction after idle_s, checks during a running statement that the client is
    # still there every client_check_s, and TCP keepalives find a silent peer (keepalive_s,
    # and tcp_user_timeout = 3x it). 0 turns a bound off.
    idle_s: float = 60.0
    client_check_s: float = 1.0
    keepalive_s: float = 10.0

    @classmethod
    def of(cls, db: DatabaseSection, *, statement_s: float | None = None) -> Timeouts:
        """The [database] bounds; `statement_s` for the services' own statement timeout."""
        return cls(
            connect_s=db.connect_timeout_s,
            lock_s=db.lock_timeout_s,
            statement_s=db.statement_timeout_s if statement_s is None else statement_s,
            pool_s=db.pool_timeout_s,
            idle_s=db.idle_in_transaction_timeout_s,
            keepalive_s=db.keepalive_s,
        )

    def options(self) -> str:
        # Passed at connect time so every statement of the session, including the first, is
        # bounded: no hidden infinite waits on a lock held by a running service.
        return (
            f"-c lock_timeout={int(self.lock_s * 1000)} "
            f"-c statement_timeout={int(self.statement_s * 1000)} "
            f"-c idle_in_transaction_session_timeout={int(self.idle_s * 1000)}"
        )

    def connect_args(self, application_name: str) -> dict[str, Any]:
        """libpq parameters of every connection, psycopg's and the engines' alike."""
        args: dict[str, Any] = {
            "options": self.options(),
            "application_name": application_name,
        }
        if self.connect_s > 0:
            args["connect_timeout"] = max(1, round(self.connect_s))
        if self.keepalive_s > 0:
            idle = max(1, round(self.keepalive_s))
            args.update(
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=idle,
                keepalives_count=3,
                tcp_user_timeout=idle * 3000,
            )
        return args


def translate(exc: BaseException, dsn: str, doing: str) -> AfasaOpsError:
    """The most specific project error for a psycopg exception, one line, password masked."""
    import psycopg

    where = dsn_target(dsn)
    text = redactor.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, psycopg.OperationalError) and state is None:
        lowered = text.lower()
        if "authentication" in lowered or ('role "' in lowered and "does not exist" in lowered):
            return DriverError(
                f"PostgreSQL at {where} refused the credentials while {doing}: {text}",
                hint="check the user and password of the DSN ([database] admin_dsn / app_dsn)",
            )
        if "does not exist" in lowered and "database" in lowered:
            return DriverError(
                f"PostgreSQL at {where}: {text}", hint="create the database or fix the DSN"
            )
        return DriverError(
            f"cannot reach PostgreSQL at {where} while {doing}: {text}",
            hint="is the server running and the host/port in the DSN right?",
        )
    if state in AUTH_STATES:
        return DriverError(
            f"PostgreSQL at {where} refused the credentials while {doing}: {text}",
            hint="check the user and password of the DSN ([database] admin_dsn / app_dsn)",
        )
    if state in LOCK_STATES:
        return BlockedError(
            f"PostgreSQL at {where}: a lock was not granted within lock_timeout while {doing}",
            hint="another session holds it; retry when it is done or raise "
            "[database] lock_timeout_s",
        )
    if state == "57014":  # query_canceled: statement_timeout
        return DriverError(
            f"PostgreSQL at {where}: a statement ran past statement_timeout while {doing}",
            hint="raise [database] statement_timeout_s or find what blocks it",
        )
    return DriverError(f"PostgreSQL at {where} failed while {doing}: {text}")


@contextmanager
def translated(dsn: str, doing: str) -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, dsn, doing) from exc


def connect(
    dsn: str, *, timeouts: Timeouts | None = None, autocommit: bool = True
) -> psycopg.Connection[Any]:
    """A psycopg connection with lock/statement timeouts set for the session."""
    import psycopg

    redact_dsn(dsn)  # teaches the redactor the password before anything can print it
    t = timeouts or Timeouts()
    with translated(dsn, "connecting"):
        conn = psycopg.connect(dsn, autocommit=autocommit, **t.connect_args("afasa-ops"))
        # PostgreSQL 14+: notice a vanished client during a long statement (a migration),
        # not only when it next writes to it. Set after connecting: older servers lack it.
        if t.client_check_s > 0 and conn.info.server_version >= 140000:
            conn.execute(
                "SELECT set_config('client_connection_check_interval', %s, false)",
                (f"{int(t.client_check_s * 1000)}ms",),
            )
            if not autocommit:
                conn.commit()
        return conn


class Postgres:
    """One lazily opened admin connection per run (Context.postgres)."""

    def __init__(self, dsn: str, timeouts: Timeouts | None = None) -> None:
        self.dsn = dsn
        self.timeouts = timeouts or Timeouts()
        self._conn: psycopg.Connection[Any] | None = None
        redact_dsn(dsn)

    @property
    def target(self) -> str:
        return dsn_target(self.dsn)

    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, timeouts=self.timeouts)
        return self._conn

    def rows(self, sql: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> list[Any]:
        with translated(self.dsn, "querying"):
            return list(self.conn().execute(sql, params).fetchall())

    def scalar(self, sql: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


def make_engine(
    dsn: str,
    *,
    timeouts: Timeouts | None = None,
    pool_size: int = 5,
    max_overflow: int | None = None,
    application_name: str = "afasa-ops",
) -> Engine:
    """The one SQLAlchemy 2 engine factory (psycopg 3) of every process (the CLI, `serve`, the
    workers): connect, lock, statement and idle-transaction timeouts and TCP keepalives on
    every connection, a bounded wait for the pool, and the DSN's password taught to the
    redactor first."""
    from sqlalchemy import create_engine

    redact_dsn(dsn)
    t = timeouts or Timeouts()
    return create_engine(
        sqlalchemy_url(dsn),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=t.pool_s if t.pool_s > 0 else None,
        pool_pre_ping=True,
        connect_args=t.connect_args(application_name),
    )
