"""Rerun cost: a converged `afasa-ops run all` (every step ok, nothing applied) against the sum
of the same probes run bare: `docker version`, `compose ps`, one SQL query per database check,
one HTTP request per route, and phase 4's functional checks replayed as bare requests and
queries (they make the platform do work, a sync, a command and its undo, a report, that a
single request would not wait for, and clean up after it as the checks do). The bare side
runs the fastest Compose on the machine (v2's `docker compose` when installed, as an operator
would), whatever the sandbox's own is.

afasa-ops is timed two ways: through a command server (`afasa-ops daemon start`, the bench's
own), as an operator who reruns it would, and as a fresh process (AFASA_OPS_DAEMON=off).
Target: ratio <= 1.5 with the command server; the fresh process's ratio is printed beside it.
What was measured is in docs/reference-stack.md.

The converged stack is the demo's (`make demo` leaves one in .demo/) or one passed with
--sandbox; without either, --converge makes a fresh sandbox behind the Docker 29.1 gate and
runs the runbook once first (minutes: image checks, migrations, rebuild), then measures.

    .venv/bin/python bench/rerun.py                 # uses .demo (after `make demo`)
    .venv/bin/python bench/rerun.py --converge      # its own sandbox, removed afterwards
    .venv/bin/python bench/rerun.py --repeat 5      # more rounds (the minimum is reported)

Each round runs the three sides, rotating which goes first (bench/_rounds.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "compose"))
sys.path.insert(0, str(ROOT))

import sandbox as sandbox_mod  # noqa: E402  (compose/ is not a package)
from _command_server import FRESH_PROCESS, command_server  # noqa: E402
from _rounds import side_by_side  # noqa: E402

TARGET_RATIO = 1.5


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def converged_run(box: sandbox_mod.Sandbox, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = box.ops("run", "all", "--yes", "--json", timeout=900, env=env)
    doc: dict[str, Any] = json.loads(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"rerun.py: run all exited {proc.returncode}: {doc.get('message')}")
    return doc


def bare_probes(box: sandbox_mod.Sandbox, doc: dict[str, Any]) -> dict[str, float]:
    """The same observations a converged run makes, each done once, directly."""
    import psycopg

    env = box.process_env()
    routes = [r for s in _services(box) for r in s.get("routes", [])]
    db_checks = [s for s in doc["steps"] if s["phase"] == "phase2" and s["status"] != "skipped"]
    checks = [s for s in doc["steps"] if s["phase"] == "phase4"]
    admin = box.ops_env()["AFASA_ADMIN_DSN"]

    token, s3 = _check_token(box), _s3_client(box)

    def run(argv: list[str], cwd: Path | None = None) -> None:
        subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=True)

    def sql() -> None:
        with psycopg.connect(admin) as conn:
            conn.execute("SELECT count(*) FROM pg_policies").fetchone()

    def http(url: str) -> None:
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(url, timeout=10).read()

    binary = sandbox_mod.compose_binary()
    out = {
        "docker version": timed(run, ["docker", "version"]),
        "compose ps": timed(run, [*binary, "ps"], box.repo),
        f"SQL x{len(db_checks)}": sum(timed(sql) for _ in db_checks),
        f"HTTP routes x{len(routes) + 1}": sum(
            timed(http, url)
            for url in [box.url("http") + r for r in routes]
            + [box.url("api") + "/api/http/routers"]
        ),
        f"phase4 checks x{len(checks)} (replayed)": timed(replay_checks, box, admin, token, s3),
    }
    return out


def replay_checks(box: sandbox_mod.Sandbox, admin_dsn: str, token: str, s3: Any) -> None:
    """Phase 4's three functional checks as bare requests and queries, in the runbook's order:
    the same work (a sync, a device command and its undo, a report) waited for with a tight
    50 ms poll, so the comparison is of afasa-ops' overhead, not of the platform's work. Like
    the checks, it leaves nothing behind: the device is enabled again (waited for), the two
    command rows, the report row and its stored object are deleted. `token` and the S3 client
    `s3` are made before the timing starts (_check_token, _s3_client)."""
    import psycopg

    base = box.url("http")
    bucket = _bucket_name(box)

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=15) as resp:
            doc: dict[str, Any] = json.loads(resp.read() or b"{}")
            return doc

    def until(probe: Any) -> Any:
        deadline = time.monotonic() + 120
        while not (got := probe()):
            if time.monotonic() > deadline:
                raise SystemExit("rerun.py: a replayed check did not finish in 120 s")
            time.sleep(0.05)
        return got

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        call("POST", "/api/tb/integrations/ubibot/sync")
        conn.execute("SELECT id FROM devices WHERE provider = 'ubibot' LIMIT 5").fetchall()
        device = call("GET", "/api/devices?provider=ubibot")["devices"][0]["id"]
        command = call("POST", f"/api/tb/devices/{device}/disable")["command_id"]
        conn.execute("SELECT desired_enabled FROM devices WHERE id = %s", (device,)).fetchone()
        until(
            lambda: conn.execute(
                "SELECT 1 FROM device_commands WHERE id = %s AND status = 'completed'", (command,)
            ).fetchone()
        )
        restore = call("POST", f"/api/tb/devices/{device}/enable")["command_id"]
        until(
            lambda: conn.execute(
                "SELECT 1 FROM device_commands WHERE id = %s AND status = 'completed'", (restore,)
            ).fetchone()
        )
        conn.execute("DELETE FROM device_commands WHERE id IN (%s, %s)", (command, restore))
        report = call("POST", "/api/report/generate", {"type": "daily", "format": "pdf"})
        path = f"/api/report/reports/{report['report_id']}"
        key = until(lambda: (doc := call("GET", path))["status"] == "ready" and doc["s3_key"])
        s3.stat_object(bucket, key)
        s3.remove_object(bucket, key)
        conn.execute("DELETE FROM reports WHERE id = %s", (report["report_id"],))


def _s3_client(box: sandbox_mod.Sandbox) -> Any:
    """An operator's S3 client for the report bucket's endpoint."""
    from urllib.parse import urlsplit

    from minio import Minio

    storage = _storage(box)
    endpoint = urlsplit(storage["endpoint"])
    env = box.ops_env()
    client = Minio(
        endpoint.netloc,
        access_key=env["AFASA_S3_ACCESS_KEY"],
        secret_key=env["AFASA_S3_SECRET_KEY"],
        secure=endpoint.scheme == "https",
    )
    return client


def _bucket_name(box: sandbox_mod.Sandbox) -> str:
    from urllib.parse import urlsplit

    return urlsplit(_storage(box)["url"]).netloc


def _storage(box: sandbox_mod.Sandbox) -> dict[str, Any]:
    import tomllib

    return dict(tomllib.loads(box.config.read_text())["storage"])


def _check_token(box: sandbox_mod.Sandbox) -> str:
    """The bearer token phase 4 uses, minted the same way (not part of what is timed)."""
    from afasa_ops.config import load_settings
    from afasa_ops.steps.check import resolve_token

    os.environ.update(box.ops_env())
    return resolve_token(load_settings(box.config))


def _services(box: sandbox_mod.Sandbox) -> list[dict[str, Any]]:
    import tomllib

    return list(tomllib.loads(box.config.read_text()).get("services", []))


@contextlib.contextmanager
def own_sandbox() -> Iterator[sandbox_mod.Sandbox]:
    from tests.support.docker29_gate import Docker29Gate

    with tempfile.TemporaryDirectory(prefix="afasa-bench-") as tmp:
        listen = Path(tmp) / "docker29.sock"
        gate = Docker29Gate(str(listen), sandbox_mod.ENGINE_SOCKET)
        gate.start()
        box = sandbox_mod.create(
            Path(tmp) / "sb",
            "afasa-bench",
            docker_socket=str(listen),
            app_image=sandbox_mod.ensure_app_image(),
        )
        try:
            box.up("postgres", "nats", "s3", "traefik")
            box.compose("up", "-d")
            print("rerun.py: converging a fresh sandbox (run all, once)...", file=sys.stderr)
            converged_run(box)
            yield box
        finally:
            box.down()
            gate.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", type=Path, default=ROOT / ".demo")
    parser.add_argument("--converge", action="store_true", help="make and converge a sandbox")
    parser.add_argument("--repeat", type=int, default=2, help="measured rounds (min is kept)")
    args = parser.parse_args()
    if args.converge:
        ctx: contextlib.AbstractContextManager[sandbox_mod.Sandbox] = own_sandbox()
    elif (args.sandbox / "sandbox.json").exists():
        ctx = contextlib.nullcontext(sandbox_mod.Sandbox.load(args.sandbox.resolve()))
    else:
        print(f"rerun.py: no sandbox at {args.sandbox}: run `make demo`, or pass --converge")
        return 2
    with ctx as box, command_server(box) as server_env:
        doc: dict[str, Any] = {}
        probes: list[dict[str, float]] = []

        def ops_side(env: dict[str, str]) -> float:
            nonlocal doc
            start = time.perf_counter()
            doc = converged_run(box, env)
            took = time.perf_counter() - start
            changed = [s["id"] for s in doc["steps"] if s["status"] == "changed"]
            if changed:
                print(f"rerun.py: warning: not converged, changed: {', '.join(changed)}")
            return took

        def bare_side() -> float:
            # The first round runs afasa-ops first: the bare side replays what its run did.
            probes.append(bare_probes(box, doc))
            return sum(probes[-1].values())

        sides = {
            "server": lambda: ops_side(server_env),
            "fresh": lambda: ops_side(FRESH_PROCESS),
            "bare": bare_side,
        }
        got = side_by_side(args.repeat, sides)
        best = min(probes, key=lambda p: sum(p.values()))
        bare_s = sum(best.values())
        print(f"bare Compose: {' '.join(sandbox_mod.compose_binary())}")
        for name, secs in best.items():
            print(f"  bare {name:<23} {secs:8.2f} s")
        print(f"{'sum of bare probes':<28} {bare_s:8.2f} s")
        for side, label in (("server", "with the command server"), ("fresh", "a fresh process")):
            run_s = min(got.times[side])
            print(
                f"{'converged run all, ' + label:<44} {run_s:6.2f} s   ({len(doc['steps'])} steps)"
            )
        ratio = min(got.times["server"]) / bare_s
        fresh_ratio = min(got.times["fresh"]) / bare_s
        verdict = "OK" if ratio <= TARGET_RATIO else "OVER"
        print(
            f"{'ratio, with the command server':<44} {ratio:6.2f}   (target <= {TARGET_RATIO})  {verdict}"
        )
        print(f"{'ratio, a fresh process':<44} {fresh_ratio:6.2f}")
        # Where a converged run's time goes: the slowest steps and their slowest commands.
        print("slowest steps of the converged run:")
        for step in sorted(doc["steps"], key=lambda s: -float(s["duration_s"] or 0))[:6]:
            slow = sorted(step["commands"], key=lambda c: -float(c["duration_s"] or 0))[:2]
            cmds = "; ".join(f"{' '.join(c['argv'][:5])} {c['duration_s']:.1f}s" for c in slow)
            print(f"  {float(step['duration_s'] or 0):6.2f} s  {step['id']:<28} {cmds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
