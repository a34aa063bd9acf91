"""A sandbox's stack builds its app services from this source tree: creating one must leave
that build context complete, or `compose up --build` fails even when the app image exists."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "compose"))

import sandbox  # noqa: E402

MARKER = ROOT / "build" / "wheels" / "runtime.lock"


def test_create_completes_the_app_build_context(tmp_path: Path) -> None:
    # runtime.lock is what wheels.sh writes last, once every wheel is in build/wheels.
    saved = tmp_path / "runtime.lock.saved"
    if MARKER.exists():
        shutil.move(MARKER, saved)
    try:
        box = sandbox.create(tmp_path / "box", "afasa-ctx", app_image="afasa-local/unused:0")
        assert MARKER.exists()
        env = (box.repo / ".env").read_text()
        assert f"AFASA_OPS_SRC={ROOT}" in env
    finally:
        if not MARKER.exists() and saved.exists():
            shutil.move(saved, MARKER)
