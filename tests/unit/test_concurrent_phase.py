"""A concurrent phase: its checks run side by side, each once the steps it comes `after`
have passed, and are reported and judged in the runbook's order. The proof of side by side is
a barrier in a real HTTP server on 127.0.0.1 that two checks must reach together (in order,
the first would wait there alone until the barrier gives up and answers 500)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from afasa_ops.config import load_settings
from afasa_ops.errors import RunbookError
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.model import Status
from afasa_ops.runbook.runner import Runner, Selection


class Platform:
    """/together/NAME answers 200 once two requests wait there at once (500 after 3 s
    alone); /fail answers 500; any other path 200. `log` is the order of what happened."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=3)
        self.log: list[str] = []
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/")
                platform.log.append(f"{name} asked")
                status = 200
                if name.startswith("together/"):
                    try:
                        platform.barrier.wait()
                    except threading.BrokenBarrierError:
                        status = 500
                elif name == "fail":
                    status = 500
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")
                platform.log.append(f"{name} answered {status}")

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform() -> Iterator[Platform]:
    p = Platform()
    yield p
    p.close()


def check(step_id: str, path: str, after: list[str] | None = None) -> str:
    order = f"\n        after: {after}" if after else ""
    return f"""
      - id: {step_id}
        kind: check.functional{order}
        params:
          actions:
            - name: get
              request: {{path: "{path}", auth: none}}"""


def run(  # type: ignore[no-untyped-def]
    tmp_path: Path, platform: Platform, steps: str, concurrent: bool = True, **options: bool
):
    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(
        f"name: t\nphases:\n  - id: verify\n    concurrent: {str(concurrent).lower()}\n"
        f"    steps:{steps}\n"
    )
    config = tmp_path / "afasa-ops.toml"
    config.write_text(
        f'[repo]\npath = "{tmp_path}"\n[runbook]\npath = "{runbook}"\n'
        f'[checks]\nbase_url = "{platform.url}"\ntimeout_s = 5\n'
    )
    settings = load_settings(config)
    ctx = Context(settings, Options(**options), confirm=lambda question: True)
    return Runner(load_runbook(settings.runbook_path()), ctx).run(Selection())


def test_checks_of_a_concurrent_phase_run_side_by_side(tmp_path: Path, platform: Platform) -> None:
    steps = check("a", "/together/a") + check("b", "/together/b") + check("c", "/c", ["a"])
    result = run(tmp_path, platform, steps)
    assert result.status == "ok", result.message
    # Reported in the runbook's order, whatever order they finished in.
    assert [s.id for s in result.steps] == ["verify.a", "verify.b", "verify.c"]
    assert all(s.status == Status.OK for s in result.steps)
    # c comes after a: it was asked only once a had its answer.
    assert platform.log.index("c asked") > platform.log.index("together/a answered 200")


def test_in_a_phase_run_in_order_the_barrier_is_met_alone(
    tmp_path: Path, platform: Platform
) -> None:
    """The control: without `concurrent`, the first check waits at the barrier alone."""
    steps = check("a", "/together/a") + check("b", "/together/b")
    result = run(tmp_path, platform, steps, concurrent=False)
    assert result.status == "failed"
    assert [s.id for s in result.steps] == ["verify.a"]
    assert "answered 500" in result.steps[0].summary


def test_a_failed_check_blocks_what_comes_after_it_and_stops_the_run(
    tmp_path: Path, platform: Platform
) -> None:
    steps = check("a", "/fail") + check("b", "/b") + check("c", "/c", ["a"])
    result = run(tmp_path, platform, steps)
    assert result.status == "failed"
    assert result.message.startswith("step verify.a failed")
    got = {s.id: s for s in result.steps}
    assert [s.id for s in result.steps] == ["verify.a", "verify.b", "verify.c"]
    assert got["verify.b"].status == Status.OK  # independent: it ran, and passed
    assert got["verify.c"].status == Status.BLOCKED
    assert got["verify.c"].summary == "not run: it comes after verify.a, which failed"
    assert "c asked" not in platform.log
    assert result.incident  # evidence of the failure, as in a phase run in order


def test_with_step_a_concurrent_phase_runs_in_order(tmp_path: Path, platform: Platform) -> None:
    """--step asks before each step, one question at a time: the phase runs in order."""
    steps = check("a", "/together/a") + check("b", "/together/b")
    result = run(tmp_path, platform, steps, step_by_step=True, interactive=True)
    assert result.status == "failed"
    assert [s.id for s in result.steps] == ["verify.a"]


@pytest.mark.parametrize(
    ("phase", "steps", "message"),
    [
        (
            "concurrent: false",
            check("a", "/a") + check("b", "/b", ["a"]),
            "`after` orders the steps of a concurrent phase",
        ),
        (
            "concurrent: true",
            check("a", "/a", ["b"]) + check("b", "/b"),
            "after: 'b' is not an earlier step",
        ),
        ("concurrent: yes please", check("a", "/a"), "`concurrent` must be true or false"),
        (
            "concurrent: true",
            check("a", "/a")
            + "\n      - id: w\n        kind: file.content\n        params: {path: x, content: y}",
            "changes the target, and a concurrent phase holds only steps that judge",
        ),
    ],
)
def test_a_misordered_concurrent_phase_is_refused_on_load(
    tmp_path: Path, phase: str, steps: str, message: str
) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(f"name: t\nphases:\n  - id: verify\n    {phase}\n    steps:{steps}\n")
    with pytest.raises(
        RunbookError, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as caught:
        load_runbook(path)
    assert str(path) in str(caught.value)
