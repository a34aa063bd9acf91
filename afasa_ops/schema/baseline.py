"""Adopt a database the AFASA init SQL made: check what the later migrations need, record the
baseline with the drift it adopts.

The expected shape is read from the baseline migration itself: it is run into a scratch schema
inside a transaction that is rolled back, so the file stays the single source of truth. AFASA's
column sets differ between versions, so only what a later migration declares it uses (its
`-- depends:` line) blocks; every other difference is a finding, recorded with the baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from afasa_ops.errors import BlockedError
from afasa_ops.findings import Finding, Severity
from afasa_ops.infra.postgres import Postgres, translated
from afasa_ops.schema import migrations as mig_files
from afasa_ops.schema.inspect import LEDGER, inspect
from afasa_ops.schema.migrations import Dependency, Migration
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
# The ledger learns where the drift a baseline adopted is kept; nullable, added in place, so a
# ledger written by an earlier afasa-ops takes it without a rewrite.
ADOPTED_DDL = f"ALTER TABLE {LEDGER} ADD COLUMN IF NOT EXISTS adopted jsonb"

Shape = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Gap:
    """Something a later migration uses that the database lacks."""

    migration: Migration
    table: str
    column: str | None = None

    def message(self) -> str:
        what = f"column {self.table}.{self.column}" if self.column else f"table {self.table}"
        why = "" if self.migration.depends is not None else " (it declares no -- depends:)"
        return f"{self.migration.path.name} needs {what}, which is missing{why}"


@dataclass
class BaselineReport:
    migration: Migration
    findings: list[Finding] = field(default_factory=list)
    recorded: bool = False

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]

    @property
    def drift(self) -> list[Finding]:
        """What the baseline adopts: every difference that blocks nothing."""
        return [f for f in self.findings if f.severity != Severity.ERROR]

    def blocked_reason(self) -> str | None:
        if not self.blocking:
            return None
        return (
            "cannot baseline: "
            + "; ".join(f.message for f in self.blocking)
            + "; nothing recorded (add what is missing, then baseline again)"
        )


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
    """Every difference from the baseline, as drift: missing tables and columns and other types
    warn, extra ones are listed. What blocks is decided by the later migrations' needs."""
    out: list[Finding] = []
    for table, columns in sorted(expected.items()):
        have = actual.get(table)
        if have is None:
            out.append(
                Finding.warning(
                    "db.baseline_table_missing", f"table {table} is missing", table=table
                )
            )
            continue
        for col, typ in columns.items():
            if col not in have:
                out.append(
                    Finding.warning(
                        "db.baseline_column_missing",
                        f"{table}.{col} ({typ}) is missing",
                        table=table,
                        column=col,
                        expected=typ,
                    )
                )
            elif have[col] != typ:
                out.append(
                    Finding.warning(
                        "db.baseline_type_differs",
                        f"{table}.{col} is {have[col]}, expected {typ}",
                        table=table,
                        column=col,
                        expected=typ,
                        actual=have[col],
                    )
                )
        for col in sorted(set(have) - set(columns)):
            out.append(
                Finding.info(
                    "db.baseline_extra_column",
                    f"{table}.{col} ({have[col]}) is not in the baseline",
                    table=table,
                    column=col,
                    actual=have[col],
                )
            )
    for table in sorted(set(actual) - set(expected) - {LEDGER}):
        out.append(
            Finding.info(
                "db.baseline_extra_table", f"table {table} is not in the baseline", table=table
            )
        )
    return out


def needs(migration: Migration, expected: Shape) -> tuple[Dependency, ...]:
    """What a later migration uses of the baseline: its declaration, or (none declared) all."""
    if migration.depends is not None:
        return migration.depends
    return tuple(Dependency(t, tuple(cols)) for t, cols in sorted(expected.items()))


def gaps(later: list[Migration], expected: Shape, actual: Shape) -> list[Gap]:
    """Each table or column a later migration needs that the database lacks."""
    out: list[Gap] = []
    for m in later:
        for dep in needs(m, expected):
            have = actual.get(dep.table)
            if have is None:
                out.append(Gap(m, dep.table))
                continue
            out += [Gap(m, dep.table, col) for col in dep.columns if col not in have]
    return out


def dependency_findings(later: list[Migration], expected: Shape, actual: Shape) -> list[Finding]:
    out = [
        Finding.error(
            "db.baseline_dependency_missing",
            gap.message(),
            migration=gap.migration.path.name,
            table=gap.table,
            column=gap.column,
        )
        for gap in gaps(later, expected, actual)
    ]
    # A column a migration uses, of another type than the baseline's: it may still apply (the
    # migration rolls back cleanly if not), so it warns, naming the migration.
    for m in later:
        for dep in needs(m, expected):
            for col in dep.columns:
                want = expected.get(dep.table, {}).get(col)
                have = actual.get(dep.table, {}).get(col)
                if want and have and want != have:
                    out.append(
                        Finding.warning(
                            "db.baseline_dependency_type_differs",
                            f"{m.path.name} uses {dep.table}.{col}, which is {have} "
                            f"(the baseline says {want})",
                            migration=m.path.name,
                            table=dep.table,
                            column=col,
                        )
                    )
    return out


def check(pg: Postgres, cfg: SchemaSettings) -> BaselineReport:
    migrations = mig_files.load(cfg.migrations_dir)
    baseline = migrations[0]
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
    expected = expected_shape(pg, baseline)
    report.findings = dependency_findings(migrations[1:], expected, actual) + compare(
        expected, actual
    )
    return report


def record(pg: Postgres, cfg: SchemaSettings) -> BaselineReport:
    """Check, then record the baseline in the ledger (under the schema lock)."""
    with advisory_lock(pg, cfg.timeouts.lock_s):
        report = check(pg, cfg)
        if inspect(pg).state == "managed":
            return report
        reason = report.blocked_reason()
        if reason:
            raise BlockedError(reason)
        conn = pg.conn()
        with translated(pg.dsn, "recording the baseline"), conn.transaction():
            conn.execute(LEDGER_DDL)
            conn.execute(ADOPTED_DDL)
            conn.execute(ledger_insert(report.migration))
            conn.execute(
                f"UPDATE {LEDGER} SET adopted = %s::jsonb WHERE version = %s",
                (adopted_json(report), report.migration.version),
            )
        report.recorded = True
    return report


def adopted_json(report: BaselineReport) -> str:
    """The drift the baseline adopted, as the ledger keeps it."""
    rows: list[dict[str, Any]] = [
        {"code": f.code, "severity": str(f.severity), "message": f.message, **f.data}
        for f in report.drift
    ]
    return json.dumps(rows, sort_keys=True)
