"""Benchmark 1: the UbiBot sync upsert of N channels (default 10,000) against one raw psycopg
`INSERT ... ON CONFLICT` of the same rows, both as the application role under RLS.

    python bench/sync_upsert.py            # 10,000 channels, best of 3
    python bench/sync_upsert.py --full     # 10,000 channels, best of 9, plus the HTTP path

Prints both times side by side and the ratio (the issue's limit: at most 2)."""

from __future__ import annotations

import argparse
import json
import time

import _workers_common as common  # noqa: F401  (puts the repo root on sys.path)
from _workers_common import ratio_line

# One raw psycopg INSERT ... ON CONFLICT of all rows. Two ways to pass the metadata: a text[]
# of JSON strings (the obvious one) and one string split server-side (what the sync does);
# the ratio is taken against the faster of the two.
RAW_SQL = """
INSERT INTO devices (tenant_id, provider, external_id, name, kind, metadata, last_seen_at, synced_at)
SELECT %(t)s::uuid, 'ubibot', x.e, x.n, 'sensor', x.m::jsonb, x.s, now()
FROM unnest(%(e)s::text[], %(n)s::text[], METAS, %(s)s::timestamptz[]) AS x(e, n, m, s)
ON CONFLICT (tenant_id, provider, external_id) DO UPDATE
SET name = EXCLUDED.name, metadata = EXCLUDED.metadata, last_seen_at = EXCLUDED.last_seen_at,
    synced_at = now(), updated_at = now()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--full", action="store_true", help="more repeats and the HTTP path")
    args = parser.parse_args()
    repeats = 9 if args.full else 3

    import psycopg

    from afasa_ops.infra.postgres import make_engine
    from afasa_ops.platform.db import tenant_transaction
    from afasa_ops.platform.devices import sync_ubibot, upsert_channels
    from afasa_ops.platform.ubibot import parse_channels
    from tests.support.platform_db import add_tenant, platform_database
    from tests.support.ubibot_double import UbibotDouble, make_channels

    raw_channels = make_channels(args.channels)
    body = json.dumps({"result": "success", "channels": raw_channels})
    channels = parse_channels(body)
    print(f"sync upsert: {len(channels)} channels, best of {repeats}")
    with platform_database() as db:
        engine = make_engine(db.app_dsn)
        ours: list[float] = []
        raw: list[float] = []
        raw_array: list[float] = []
        for i in range(repeats):
            # Fresh tenants each round: both sides insert every row.
            t_ours = add_tenant(db.admin_dsn, f"bench-ours-{i}")
            t_raw = add_tenant(db.admin_dsn, f"bench-raw-{i}")
            t_arr = add_tenant(db.admin_dsn, f"bench-arr-{i}")
            start = time.perf_counter()
            with tenant_transaction(engine, t_ours) as conn:
                counts = upsert_channels(conn, t_ours, channels)
            ours.append(time.perf_counter() - start)
            assert counts.inserted == len(channels), counts
            metas = [json.dumps(c.metadata, sort_keys=True, default=str) for c in channels]
            for tenant, sql, m, sink in (
                (
                    t_raw,
                    RAW_SQL.replace("METAS", "string_to_array(%(m)s, chr(30))"),
                    "\x1e".join(metas),
                    raw,
                ),
                (t_arr, RAW_SQL.replace("METAS", "%(m)s::text[]"), metas, raw_array),
            ):
                params = {
                    "t": str(tenant),
                    "e": [c.channel_id for c in channels],
                    "n": [c.name for c in channels],
                    "m": m,
                    "s": [c.last_entry_date for c in channels],
                }
                with psycopg.connect(db.app_dsn) as conn:
                    start = time.perf_counter()
                    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
                    conn.execute(sql, params)  # type: ignore[arg-type]
                    conn.commit()
                    sink.append(time.perf_counter() - start)
        print(
            f"raw with text[] metadata: {min(raw_array):.3f} s; raw with one joined string: {min(raw):.3f} s"
        )
        print(ratio_line("insert 10k", min(ours), min(min(raw), min(raw_array)), "s", 2.0))
        # The steady state: a second sync where nothing changed.
        t = add_tenant(db.admin_dsn, "bench-again")
        with tenant_transaction(engine, t) as conn:
            upsert_channels(conn, t, channels)
        again: list[float] = []
        for _ in range(repeats):
            start = time.perf_counter()
            with tenant_transaction(engine, t) as conn:
                counts = upsert_channels(conn, t, channels)
            again.append(time.perf_counter() - start)
            assert counts.unchanged == len(channels)
        print(f"unchanged 10k: ours {min(again):.3f} s (nothing written)")
        if args.full:
            with UbibotDouble() as ubi:
                ubi.set_channels("bench-key", raw_channels)
                t = add_tenant(db.admin_dsn, "bench-http")
                start = time.perf_counter()
                counts = sync_ubibot(engine, t, base_url=ubi.base_url, account_key="bench-key")
                print(
                    f"full sync over HTTP (fetch+parse+upsert+event): {time.perf_counter() - start:.3f} s {counts}"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
