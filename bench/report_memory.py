"""Benchmark 3: a csv report over many detection rows (default 200,000; --full 1,000,000):
peak RSS growth while rendering and uploading (limit 150 MB) and time against a plain
`COPY (SELECT ...) TO STDOUT` of the same rows (limit 3x), both as the app role under RLS.

    python bench/report_memory.py
    python bench/report_memory.py --full
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _workers_common as common  # noqa: F401  (puts the repo root on sys.path)
from _workers_common import ratio_line


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="1,000,000 rows")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.full else 200_000)

    import psycopg

    from afasa_ops.infra.postgres import make_engine
    from afasa_ops.platform import reports
    from afasa_ops.platform.storage import FileStorage
    from tests.support.platform_db import add_tenant, platform_database
    from tests.support.seed import seed_tenant_data

    start_at = datetime(2026, 11, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp, platform_database() as db:
        tenant = add_tenant(db.admin_dsn, "bench-mem")
        seed_tenant_data(db.admin_dsn, tenant, rows, start_at)
        with psycopg.connect(db.admin_dsn, autocommit=True) as conn:
            conn.execute("ANALYZE detections")
        engine = make_engine(db.app_dsn)
        rid = reports.request_report(
            engine, tenant, start_at, start_at + timedelta(days=365), "csv"
        )
        report = reports.claim(engine, tenant, rid)
        assert report is not None
        storage = FileStorage(Path(tmp) / "storage")

        # Baseline: the detections section's query, COPY'd to the client and thrown away.
        sql = reports._section_sql(reports.SECTIONS[0][1], report)
        with psycopg.connect(db.app_dsn) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
            start = time.perf_counter()
            copied = 0
            with conn.cursor().copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for chunk in copy:
                    copied += len(chunk)
            copy_s = time.perf_counter() - start

        reset_peak()
        base_kb = _status_kb("VmRSS")
        start = time.perf_counter()
        key = reports.render_to_storage(engine, report, storage, Path(tmp))
        ours_s = time.perf_counter() - start
        growth_mb = (_status_kb("VmHWM") - base_kb) / 1024
        size = (storage.root / key).stat().st_size
        engine.dispose()

    print(
        f"csv report over {rows:,} detection rows: {size / 1e6:.1f} MB written, COPY baseline {copied / 1e6:.1f} MB"
    )
    print(
        f"peak RSS growth: {growth_mb:.1f} MB (limit 150 MB){'  OK' if growth_mb < 150 else '  OVER'}"
    )
    print(ratio_line("time", ours_s, copy_s, "s", 3.0))


if __name__ == "__main__":
    main()
