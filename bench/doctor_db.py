"""Benchmark: the doctor db RLS audit against one bare catalog query over pg_class and pg_policy.

Creates a scratch database with N tenant tables (RLS forced, one policy each), then times, side
by side in one run, the full audit (catalog read, per-table evaluation, role check) and a single
query over pg_class LEFT JOIN pg_policy. Prints both and the ratio (target <= 5).

    python bench/doctor_db.py              # 500 tenant tables, 20 rounds (a few seconds)
    python bench/doctor_db.py --tables 2000 --rounds 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from afasa_ops.infra.postgres import Postgres
from afasa_ops.schema import rls

ADMIN_DSN = os.environ.get("AFASA_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BARE_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.polname
FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
"""
POLICY = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def build(dsn: str, tables: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("CREATE TABLE tenants (id uuid PRIMARY KEY)")
        for i in range(tables):
            t = f"tenant_table_{i:04d}"
            conn.execute(
                f"CREATE TABLE {t} (id uuid PRIMARY KEY, tenant_id uuid NOT NULL);"
                f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;"
                f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY;"
                f"CREATE POLICY tenant_isolation ON {t} USING ({POLICY}) WITH CHECK ({POLICY})"
            )


def timed_pair(a, b, rounds: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Medians of a and b, measured alternately so both see the same machine load."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((a, samples[0]), (b, samples[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(samples[0]), statistics.median(samples[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()

    name = f"afasa_bench_{uuid.uuid4().hex[:8]}"
    head = ADMIN_DSN.rpartition("/")[0]
    dsn = f"{head}/{name}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        build(dsn, args.tables)
        pg = Postgres(dsn)
        conn = pg.conn()
        findings = rls.audit(pg, None, "postgres")
        table_findings = [f for f in findings if f.code != "db.rls_bypassed_by_role"]
        assert table_findings == [], table_findings  # the audit really evaluated clean tables
        assert len(rls.read_tables(pg)) == args.tables

        def bare() -> None:
            conn.execute(BARE_SQL).fetchall()

        def audit() -> None:
            rls.audit(pg, None, "postgres")

        bare(), audit()  # warm the catalog caches for both
        t_bare, t_audit = timed_pair(bare, audit, args.rounds)
        pg.close()
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    ratio = t_audit / t_bare
    print(f"tenant tables:                 {args.tables}")
    print(f"bare pg_class+pg_policy query: {t_bare * 1000:8.2f} ms (median of {args.rounds})")
    print(f"doctor db RLS audit:           {t_audit * 1000:8.2f} ms (median of {args.rounds})")
    print(f"ratio audit/bare:              {ratio:8.2f}  (target <= 5)")
    return 0 if ratio <= 5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
