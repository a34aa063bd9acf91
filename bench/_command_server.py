"""A command server of the bench's own (`afasa-ops daemon start`), which rerun.py and
phase1_repair.py time afasa-ops through, beside a fresh process (AFASA_OPS_DAEMON=off)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

FRESH_PROCESS = {"AFASA_OPS_DAEMON": "off"}


@contextlib.contextmanager
def command_server(box: Any) -> Iterator[dict[str, str]]:
    """The environment that sends the sandbox's afasa-ops commands through a server started in
    a private cache folder (so a user's server is neither used nor stopped). One warm-up
    command first: a server whose code changed starts again on its first command."""
    with tempfile.TemporaryDirectory(prefix="afasa-bench-cache-") as cache:
        env = {"XDG_CACHE_HOME": cache}
        started = box.ops("daemon", "start", "--idle", "0", env=env)
        if started.returncode != 0:
            raise SystemExit(f"afasa-ops daemon start failed: {started.stderr.strip()}")
        try:
            box.ops("--version", env=env)
            yield env
        finally:
            box.ops("daemon", "stop", env=env)
