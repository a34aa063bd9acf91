"""Adopt a database the AFASA init SQL made: check its tables and columns, record the baseline.

The expected shape is read from the baseline migration itself: it is run into a scratch schema
inside a transaction that is rolled back, so the file stays the single source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from afasa_ops.errors import BlockedError
from afasa_ops.findings import Finding, Severity
from afasa_ops.infra.postgres import Postgres, translated
from afasa_ops.schema import migrations as mig_files
from afasa_ops.schema.inspect import inspect
from afasa_ops.schema.migrations import Migration
from afasa_ops.schema.migrator import LEDGER_DDL, advisory_lock, ledger_insert
from afasa_ops.schema.settings import SchemaSettings

SCRATCH = "afasa_ops_baseline_scratch"
COLUMNS_SQL = """
SELECT table_name, column_name, format_type(a.atttypid, a.atttypmod)
FROM information_schema.columns c
JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass
  AND a.attname = c.column_name
WHERE c.table_schema = %s
"""

Shape = dict[str, dict[str, str]]


@dataclass
class BaselineReport:
    migration: Migration
    findings: list[Finding] = field(default_factory=list)
    recorded: bool = False

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]


def _shape(pg: Postgres, schema: str) -> Shape:
    shape: Shape = {}
    for table, column, typ in pg.conn().execute(COLUMNS_SQL, (schema,)):
        shape.setdefault(table, {})[column] = typ
    return shape


def expected_shape(pg: Postgres, baseline: Migration) -> Shape:
    conn = pg.conn()
    doing = f"reading the expected shape from {baseline.path.name}"
    with translated(pg.dsn, doing), conn.transaction(force_rollback=True):
        conn.execute(f"CREATE SCHEMA {SCRATCH}")
        conn.execute(f"SET LOCAL search_path = {SCRATCH}, public")
        conn.execute(baseline.body)
        return _shape(pg, SCRATCH)


def compare(expected: Shape, actual: Shape) -> list[Finding]:
    out: list[Finding] = []
    for table, columns in sorted(expected.items()):
        have = actual.get(table)
        if have is None:
            out.append(Finding.error("db.baseline_table_missing", f"table {table} is missing"))
            continue
        for col, typ in columns.items():
            if col not in have:
                out.append(
                    Finding.error("db.baseline_column_missing", f"{table}.{col} ({typ}) is missing")
                )
            elif have[col] != typ:
                out.append(
                    Finding.warning(
                        "db.baseline_type_differs", f"{table}.{col} is {have[col]}, expected {typ}"
                    )
                )
        for col in sorted(set(have) - set(columns)):
            out.append(
                Finding.info("db.baseline_extra_column", f"{table}.{col} is not in the baseline")
            )
    return out


def check(pg: Postgres, cfg: SchemaSettings) -> BaselineReport:
    baseline = mig_files.load(cfg.migrations_dir)[0]
    insp = inspect(pg)
    report = BaselineReport(baseline)
    if insp.state == "managed":
        return report
    if insp.state == "fresh":
        raise BlockedError(
            f"database {insp.database} has no AFASA tables: nothing to baseline",
            hint="run `afasa-ops schema migrate` to create the schema",
        )
    if not insp.has_tenants:
        raise BlockedError(
            f"database {insp.database} has no tenants table: it is not an AFASA database",
            hint="point [database] admin_dsn at the AFASA database",
        )
    with translated(pg.dsn, "reading the database's columns"):
        actual = _shape(pg, pg.conn().execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
    report.findings = compare(expected_shape(pg, baseline), actual)
    return report


def record(pg: Postgres, cfg: SchemaSettings) -> BaselineReport:
    """Check, then record the baseline in the ledger (under the schema lock)."""
    with advisory_lock(pg, cfg.timeouts.lock_s):
        report = check(pg, cfg)
        if inspect(pg).state == "managed":
            return report
        if report.blocking:
            first = report.blocking[0].message
            raise BlockedError(
                f"the database differs from {report.migration.path.name}: {first} "
                f"({len(report.blocking)} difference(s)); nothing recorded",
                hint="fix the database so it matches the AFASA init SQL, then baseline again",
            )
        conn = pg.conn()
        with translated(pg.dsn, "recording the baseline"), conn.transaction():
            conn.execute(LEDGER_DDL)
            conn.execute(ledger_insert(report.migration))
        report.recorded = True
    return report
