"""Each shipped migration's `-- depends:` line says exactly what it uses of the baseline,
checked against PostgreSQL itself, so the declarations cannot rot:

- enough: on a baseline stripped to the declared tables and columns (after the migrations
  before it), the migration applies and its verify query is true;
- nothing extra: with any one declared column (or table) dropped, it fails or does not verify.

All inside transactions that are rolled back, on one fresh database.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from afasa_ops.schema import migrations as mig_files
from afasa_ops.schema.migrations import Migration
from tests.support.services import fresh_database

MIGRATIONS = mig_files.load()
BASELINE, LATER = MIGRATIONS[0], MIGRATIONS[1:]


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection]:
    with fresh_database("afasa_depends") as dsn, psycopg.connect(dsn) as c:
        c.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
        c.commit()
        yield c


def baseline_shape(conn: psycopg.Connection) -> dict[str, set[str]]:
    with conn.transaction(force_rollback=True):
        conn.execute(BASELINE.body)
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        ).fetchall()
    shape: dict[str, set[str]] = {}
    for table, column in rows:
        shape.setdefault(table, set()).add(column)
    return shape


def applies(conn: psycopg.Connection, m: Migration) -> bool:
    try:
        with conn.transaction():
            conn.execute(m.body)
            row = conn.execute(m.verify).fetchone()
            if not (row and row[0] is True):
                raise AssertionError("verify")
    except (psycopg.Error, AssertionError):
        return False
    return True


def test_every_later_migration_declares_what_it_uses() -> None:
    assert all(m.depends is not None for m in LATER), [m.path.name for m in LATER]


@pytest.mark.parametrize("migration", LATER, ids=lambda m: m.label)
def test_declared_dependencies_are_exactly_what_the_sql_uses(
    conn: psycopg.Connection, migration: Migration
) -> None:
    shape = baseline_shape(conn)
    declared = {d.table: set(d.columns) for d in migration.depends or ()}
    assert set(declared) <= set(shape), "a dependency that is not a baseline table"
    for table, cols in declared.items():
        assert cols <= shape[table], (table, cols - shape[table])
    before = MIGRATIONS[: MIGRATIONS.index(migration)]
    with conn.transaction(force_rollback=True):
        for m in before:
            conn.execute(m.body)

        # Enough: the baseline without everything undeclared still takes the migration.
        with conn.transaction(force_rollback=True):
            for table, cols in shape.items():
                if table not in declared:
                    conn.execute(f'DROP TABLE "{table}" CASCADE')
                    continue
                for col in sorted(cols - declared[table]):
                    conn.execute(f'ALTER TABLE "{table}" DROP COLUMN "{col}" CASCADE')
            assert applies(conn, migration), f"{migration.path.name} uses more than it declares"

        # Nothing extra: each declared column (a table without columns: the table) is needed.
        for table, cols in declared.items():
            for col in sorted(cols) or [None]:
                with conn.transaction(force_rollback=True):
                    if col is None:
                        conn.execute(f'DROP TABLE "{table}" CASCADE')
                    else:
                        conn.execute(f'ALTER TABLE "{table}" DROP COLUMN "{col}" CASCADE')
                    assert not applies(conn, migration), (
                        f"{migration.path.name} declares {table}({col or ''}) but applies without it"
                    )
