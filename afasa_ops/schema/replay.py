"""Replay an init directory on a scratch database: what an empty data volume would get.

The postgres image's entrypoint runs `/docker-entrypoint-initdb.d/*.sql` once, on an empty
volume, in name order, stopping at the first error. Init files can disagree with each other
(AFASA's seed inserts columns its first file never creates), and the live database, made
long ago or migrated over a connection, cannot show that. A scratch database on the same
server can: each file runs in it as the entrypoint would run it, and the database is dropped.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from afasa_ops.infra.postgres import Timeouts, connect, translated
from afasa_ops.schema.migrations import line_of

if TYPE_CHECKING:
    import psycopg

# What the entrypoint runs besides plain SQL; a replay over a connection cannot.
NOT_REPLAYED = ("*.sh", "*.sql.gz", "*.sql.xz", "*.sql.zst")
_NO_EXTENSION = re.compile(
    r'extension "([^"]+)" is not available|could not open extension control file ".*/([^/"]+)\.control"'
)


@dataclass
class Replay:
    directory: Path
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: str | None = None  # the file that stopped the replay
    line: int | None = None  # where in it, when PostgreSQL says
    error: str = ""  # why, one line
    missing_extension: str | None = None  # the failure is this server's, not the files'

    @property
    def complete(self) -> bool:
        return self.failed is None

    def where(self) -> str:
        """`002_seed.sql line 4: column ... does not exist` (no line when PostgreSQL gives none)."""
        at = f" line {self.line}" if self.line else ""
        return f"{self.failed}{at}: {self.error}"


def init_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """(the .sql files in the entrypoint's order, the files it would run that SQL cannot)."""
    sql = sorted(directory.glob("*.sql"))
    other = sorted({p for pattern in NOT_REPLAYED for p in directory.glob(pattern)})
    return sql, other


def replay(admin_dsn: str, directory: Path, timeouts: Timeouts | None = None) -> Replay:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    files, other = init_files(directory)
    result = Replay(directory, skipped=[p.name for p in other])
    scratch = f"afasa_ops_replay_{uuid.uuid4().hex[:12]}"
    admin = connect(admin_dsn, timeouts=timeouts)
    try:
        with translated(admin_dsn, "creating a scratch database for the init SQL replay"):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            with connect(make_conninfo(admin_dsn, dbname=scratch), timeouts=timeouts) as conn:
                for path in files:
                    text = path.read_text()
                    try:
                        # No parameters: the simple query protocol runs the whole file.
                        conn.execute(text.encode())
                    except psycopg.Error as exc:
                        result.failed = path.name
                        result.line, result.error = _describe(exc, text)
                        result.missing_extension = _extension_of(result.error)
                        break
                    result.applied.append(path.name)
        finally:
            with translated(admin_dsn, "dropping the init SQL replay's scratch database"):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )
    finally:
        admin.close()
    return result


def _describe(exc: psycopg.Error, text: str) -> tuple[int | None, str]:
    diag = exc.diag
    message = diag.message_primary or (str(exc).strip().splitlines() or [repr(exc)])[0]
    line = line_of(text, int(diag.statement_position)) if diag.statement_position else None
    return line, message


def _extension_of(error: str) -> str | None:
    match = _NO_EXTENSION.search(error)
    return (match.group(1) or match.group(2)) if match else None
