"""Load on the reference service: POST /api/report/generate at a fixed rate, against
GET /healthz on the same server, measured side by side in one run.

The server is a real `afasa-ops serve` subprocess (uvicorn) over a fresh migrated database on
the machine's PostgreSQL and a private NATS JetStream server; the load comes from this
process over loopback. Each run prints, for both routes: requests sent, errors, p50/p99
latency at the fixed rate, then the saturation throughput (closed loop) and the ratio.

    .venv/bin/python bench/api_load.py               # 5 s per phase (quick)
    .venv/bin/python bench/api_load.py --seconds 30  # the full-size run
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BODY = {"type": "daily", "format": "csv"}


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    elapsed_s: float = 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @property
    def throughput(self) -> float:
        ok = self.sent - self.errors
        return ok / self.elapsed_s if self.elapsed_s else 0.0


async def _one(
    client, method: str, path: str, headers: dict[str, str], expect: int, s: Sample
) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        if method == "POST":
            response = await client.post(path, json=BODY, headers=headers)
        else:
            response = await client.get(path, headers=headers)
        ok = response.status_code == expect
    except Exception:
        ok = False
    s.latencies.append(time.perf_counter() - started)
    if not ok:
        s.errors += 1


async def fixed_rate(base: str, method: str, path: str, headers: dict[str, str], expect: int,
                     rate: float, seconds: float) -> Sample:  # fmt: skip
    """Open loop: request i starts at t0 + i/rate whether or not earlier ones finished."""
    import httpx

    sample = Sample()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        tasks = []
        t0 = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(client, method, path, headers, expect, sample)))
            sample.sent += 1
        await asyncio.gather(*tasks)
        sample.elapsed_s = time.perf_counter() - t0
    return sample


async def saturate(base: str, method: str, path: str, headers: dict[str, str], expect: int,
                   concurrency: int, seconds: float) -> Sample:  # fmt: skip
    """Closed loop: `concurrency` clients back to back; the server's ceiling."""
    import httpx

    sample = Sample()
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                sample.sent += 1
                await _one(client, method, path, headers, expect, sample)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        sample.elapsed_s = time.perf_counter() - t0
    return sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase (full: 30)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    args = parser.parse_args()

    from tests.support.api_stack import (
        add_tenant,
        admin_rows,
        create_stream,
        migrated_database,
        new_port,
        serve_process,
        write_config,
    )
    from tests.support.oidc_issuer import running_issuer
    from tests.support.services import NatsServer, free_port

    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp_name:
        tmp = Path(tmp_name)
        nats_server = NatsServer(free_port(), tmp / "js")
        nats_server.start()
        serve = None
        try:
            with migrated_database() as db, running_issuer() as issuer:
                create_stream(nats_server.url)
                tenant = add_tenant(db.admin_dsn, "bench farm")
                port = new_port()
                config = write_config(
                    tmp / "afasa-ops.toml",
                    db,
                    nats_url=nats_server.url,
                    storage_url=f"file://{tmp / 'storage'}",
                    issuer_url=issuer.url,
                    port=port,
                )
                serve = serve_process(config, port, tmp / "serve.log", {})
                base = f"http://127.0.0.1:{port}"
                token = issuer.token(tenant, exp=int(time.time()) + 3600)
                auth = {"Authorization": f"Bearer {token}"}
                print(f"afasa-ops serve on {base}; {args.seconds:.0f}s per phase, "
                      f"{args.rate:.0f} req/s fixed rate, {args.concurrency} closed-loop clients")  # fmt: skip
                # Warm up both routes (JWKS fetch, connection pool).
                asyncio.run(fixed_rate(base, "POST", "/api/report/generate", auth, 202, 10, 1))
                asyncio.run(fixed_rate(base, "GET", "/healthz", {}, 200, 10, 1))

                gen = asyncio.run(fixed_rate(base, "POST", "/api/report/generate", auth, 202,
                                             args.rate, args.seconds))  # fmt: skip
                hz = asyncio.run(
                    fixed_rate(base, "GET", "/healthz", {}, 200, args.rate, args.seconds)
                )
                gen_max = asyncio.run(saturate(base, "POST", "/api/report/generate", auth, 202,
                                               args.concurrency, args.seconds))  # fmt: skip
                hz_max = asyncio.run(saturate(base, "GET", "/healthz", {}, 200,
                                              args.concurrency, args.seconds))  # fmt: skip
                queued = admin_rows(db.admin_dsn, "SELECT count(*) FROM reports")[0][0]
        finally:
            if serve is not None:
                serve.stop()
            nats_server.stop()

    rows = [
        ("", "POST /api/report/generate", "GET /healthz"),
        ("fixed rate: sent", f"{gen.sent}", f"{hz.sent}"),
        ("fixed rate: errors", f"{gen.errors}", f"{hz.errors}"),
        ("fixed rate: achieved req/s", f"{gen.throughput:.1f}", f"{hz.throughput:.1f}"),
        ("fixed rate: p50 ms", f"{gen.pct(50):.2f}", f"{hz.pct(50):.2f}"),
        ("fixed rate: p99 ms", f"{gen.pct(99):.2f}", f"{hz.pct(99):.2f}"),
        ("saturation: req/s", f"{gen_max.throughput:.1f}", f"{hz_max.throughput:.1f}"),
        ("saturation: errors", f"{gen_max.errors}", f"{hz_max.errors}"),
        ("saturation: p50 ms", f"{gen_max.pct(50):.2f}", f"{hz_max.pct(50):.2f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, a, b in rows:
        print(f"{label:<{width}}  {a:>26}  {b:>14}")
    ratio = gen_max.throughput / hz_max.throughput if hz_max.throughput else float("nan")
    print(f"throughput ratio generate/healthz (saturation): {ratio:.3f}")
    print(f"reports queued in the database: {queued}")
    errors = gen.errors + hz.errors
    print("errors: 0 (target met)" if errors == 0 else f"errors: {errors} (target 0: MISSED)")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
