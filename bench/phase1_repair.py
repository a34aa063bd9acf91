"""Repair speed: `afasa-ops run phase1 --yes` on the broken reference stack, until its routes
are verified, against the bare manual fix done by a script. Target: ratio <= 1.3 (median);
the measurements are in docs/reference-stack.md.

The stack is a fresh sandbox (compose/sandbox.py) behind the Docker 29.1 gate, in the state
the e2e tests start from: Traefik v3.6.0 refused by the engine's API floor, so every route
gets Traefik's own 404. Each round puts it back in that state (the compose file as found,
Traefik recreated from it and logging the refusal), then times one side; the two sides
rotate which goes first, side by side in one run:

  A) `afasa-ops run phase1 --yes --json`, to its exit: engine facts, the compose fix
     committed, Traefik recreated, its provider judged, routers and routes verified; timed
     through a command server (`afasa-ops daemon start`, the bench's own), as an operator
     who keeps one would run it, and as a fresh process (AFASA_OPS_DAEMON=off);
  B) the bare fix an operator would script: edit the compose file (pin Traefik, drop
     DOCKER_API_VERSION, name the real network), `compose up -d --force-recreate traefik`
     with the fastest Compose on the machine (v2 when installed), then poll a route every
     50 ms until AFASA's tb-adapter answers it (its own 401: no token, and no schema before phase 2),
     not Traefik's 404 or a 502/503/504.

    .venv/bin/python bench/phase1_repair.py               # 5 rounds
    .venv/bin/python bench/phase1_repair.py --rounds 9
    AFASA_APP_IMAGE=afasa-local/afasa-ops-app:TAG ...     # reuse an app image (else built when absent)

Prints every round, the medians and the ratios A/B; the target is for A through the server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "compose"))
sys.path.insert(0, str(ROOT))

import sandbox as sandbox_mod  # noqa: E402  (compose/ is not a package)
from _command_server import FRESH_PROCESS, command_server  # noqa: E402
from _rounds import Rounds, side_by_side  # noqa: E402

TARGET_RATIO = 1.3
INFRA = ("postgres", "nats", "s3", "traefik")
TOO_OLD = "client version 1.24 is too old"
ROUTE = "/api/devices"
FIXED_IMAGE = "traefik:v3.6.7"  # the runbook's pin target (afasa-repair.yaml)
TRAEFIK_404 = "404 page not found"


# -- the broken state, before every round ---------------------------------------------------


def break_again(box: sandbox_mod.Sandbox, as_found: str) -> None:
    """The compose file as found, Traefik recreated from it and refused by the gate again."""
    git(box, "reset", "-q", "--hard", as_found)
    box.compose("up", "-d", "--force-recreate", "--no-deps", "traefik")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if TOO_OLD in traefik_logs(box) and route_status(box) == (404, TRAEFIK_404):
            return
        time.sleep(0.2)
    raise SystemExit("phase1_repair.py: Traefik did not come back broken within 60 s")


def traefik_logs(box: sandbox_mod.Sandbox) -> str:
    ids = box.compose("ps", "-q", "traefik").stdout.split()
    if not ids:
        return ""
    proc = subprocess.run(
        ["docker", "logs", ids[0]], capture_output=True, text=True, env=box.harness_env()
    )
    return proc.stdout + proc.stderr


def route_status(box: sandbox_mod.Sandbox) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(box.url("http") + ROUTE, timeout=5) as resp:
            return resp.status, resp.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError):
        return None


def git(box: sandbox_mod.Sandbox, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(box.repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


# -- the two sides --------------------------------------------------------------------------


def with_afasa_ops(
    box: sandbox_mod.Sandbox, env: dict[str, str]
) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    proc = box.ops("run", "phase1", "--yes", "--json", timeout=600, env=env)
    elapsed = time.perf_counter() - start
    doc = json.loads(proc.stdout)
    steps = {s["id"]: s["status"] for s in doc["steps"]}
    if proc.returncode != 0 or steps.get("phase1.traefik.recreate") != "changed":
        raise SystemExit(f"phase1_repair.py: run phase1 exited {proc.returncode}: {steps}")
    return elapsed, doc


def split(doc: dict[str, object], total: float) -> str:
    """Where a run's time went: before the recreate (the process included), the recreate,
    and the wait and verification after it."""
    steps: list[dict[str, object]] = doc.get("steps", [])  # type: ignore[assignment]
    took = {str(s["id"]): float(s["duration_s"] or 0) for s in steps}  # type: ignore[arg-type]
    up = took.get("phase1.traefik.recreate", 0.0)
    after = took.get("phase1.traefik.provider", 0.0) + took.get("phase1.traefik.routing", 0.0)
    return f"before {total - up - after:.2f} + up {up:.2f} + after {after:.2f}"


def bare_fix(box: sandbox_mod.Sandbox, compose: list[str]) -> tuple[float, float]:
    """(the whole fix, its `compose up` alone), in seconds."""
    start = time.perf_counter()
    path = box.repo / "docker-compose.yml"
    text = path.read_text()
    text = text.replace("${TRAEFIK_IMAGE:-traefik:v3.6.0}", FIXED_IMAGE)
    text = text.replace(
        "    environment:\n      - DOCKER_API_VERSION=1.45   # workaround for Docker 29 (does not work)\n",
        "",
    )
    text = text.replace("network=afasa2_afasa_net", f"network={box.project}_afasa_net")
    path.write_text(text)
    up_started = time.perf_counter()
    proc = subprocess.run(
        [*compose, "up", "-d", "--force-recreate", "traefik"],
        cwd=box.repo,
        env=box.process_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"phase1_repair.py: the bare recreate failed: {proc.stderr[-800:]}")
    up_s = time.perf_counter() - up_started
    deadline = time.monotonic() + 120
    while not answered(route_status(box)):
        if time.monotonic() > deadline:
            raise SystemExit("phase1_repair.py: the bare fix's route did not answer in 120 s")
        time.sleep(0.05)
    return time.perf_counter() - start, up_s


def answered(got: tuple[int, str] | None) -> bool:
    """The api's own answer through a matched router, not Traefik's 404 or a 5xx."""
    if got is None:
        return False
    status, body = got
    return not (status == 404 and body == TRAEFIK_404) and status not in (502, 503, 504)


# -- the sandbox ----------------------------------------------------------------------------


@contextlib.contextmanager
def broken_sandbox(compose: list[str]) -> Iterator[sandbox_mod.Sandbox]:
    from tests.support.docker29_gate import Docker29Gate

    with tempfile.TemporaryDirectory(prefix="afasa-bench-p1-") as tmp:
        listen = Path(tmp) / "docker29.sock"
        gate = Docker29Gate(str(listen), sandbox_mod.ENGINE_SOCKET)
        gate.start()
        name = f"afasa-bench-p1-{Path(tmp).name[-6:].lower()}"
        box = sandbox_mod.create(
            Path(tmp) / "sb",
            name,
            docker_socket=str(listen),
            compose_command=" ".join(compose),
            app_image=sandbox_mod.ensure_app_image(),
        )
        try:
            box.up("postgres", timeout=180)
            box.up(*INFRA, timeout=180)
            box.compose("up", "-d", "--build")
            # AFASA's stubbed services: what phase 1's routes reach once Traefik works.
            box.wait_healthy("tb-adapter", "report", timeout=180)
            yield box
        finally:
            # A round stopped midway may leave an edited (even invalid) compose file, and
            # `compose down` reads it: put back what was committed first.
            subprocess.run(["git", "-C", str(box.repo), "checkout", "-q", "--", "."], check=False)
            box.down()
            gate.stop()


def precompile() -> None:
    """Bytecode for the package, as pip writes it when it installs the wheel: an editable
    checkout under PYTHONDONTWRITEBYTECODE=1 would compile every module on every run."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "afasa_ops")],
        capture_output=True,
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds of each side")
    args = parser.parse_args()
    compose = sandbox_mod.compose_binary()
    print(f"phase1_repair.py: Compose {' '.join(compose)}; making a broken sandbox...")
    precompile()
    up_s = 0.0
    with broken_sandbox(compose) as box, command_server(box) as server_env:
        as_found = git(box, "rev-parse", "HEAD")
        docs: dict[str, dict[str, object]] = {}

        def ops_side(name: str, env: dict[str, str]) -> float:
            secs, docs[name] = with_afasa_ops(box, env)
            return secs

        def bare_side() -> float:
            nonlocal up_s
            secs, up_s = bare_fix(box, compose)
            return secs

        def show(n: int, got: Rounds) -> None:
            bare = got.last("bare")
            line = [f"  round {n + 1}:"]
            for name in ("server", "fresh"):
                secs = got.last(name)
                line.append(f"run phase1 ({name}) {secs:5.2f} s ({split(docs[name], secs)})")
            line.append(f"bare fix {bare:5.2f} s (up {up_s:.2f} + route {bare - up_s:.2f})")
            print("   ".join(line))

        got = side_by_side(
            args.rounds,
            {
                "server": lambda: ops_side("server", server_env),
                "fresh": lambda: ops_side("fresh", FRESH_PROCESS),
                "bare": bare_side,
            },
            before_each=lambda: break_again(box, as_found),
            after_round=show,
        )
        b = statistics.median(got.times["bare"])
        for name, label in (("server", "with the command server"), ("fresh", "a fresh process")):
            a = statistics.median(got.times[name])
            print(
                f"{'run phase1, ' + label:<36} median {a:6.2f} s over {len(got.times[name])} rounds"
            )
        print(f"{'bare fix':<36} median {b:6.2f} s over {len(got.times['bare'])} rounds")
        ratio = statistics.median(got.times["server"]) / b
        verdict = "OK" if ratio <= TARGET_RATIO else "OVER"
        print(
            f"{'ratio, with the command server':<36} {ratio:6.2f}   (target <= {TARGET_RATIO})  {verdict}"
        )
        print(f"{'ratio, a fresh process':<36} {statistics.median(got.times['fresh']) / b:6.2f}")
        doc = docs["server"]
        print("steps of the last run phase1 (slowest commands):")
        for step in doc.get("steps", []):  # type: ignore[attr-defined]
            slow = sorted(step["commands"], key=lambda c: -float(c["duration_s"] or 0))[:2]
            cmds = "; ".join(f"{' '.join(c['argv'][:5])} {c['duration_s']:.2f}s" for c in slow)
            print(f"  {float(step['duration_s'] or 0):6.2f} s  {step['id']:<26} {cmds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
