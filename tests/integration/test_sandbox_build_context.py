"""A sandbox's wheelhouse (build/wheels): the app image (the stand-ins) installs from it, and
phase 2's adoption copies it into the override's build context ([adopt] wheelhouse), so
creating a sandbox must leave it complete."""

from __future__ import annotations

import shutil
import sys
import tomllib
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
        config = tomllib.loads(box.config.read_text())
        assert config["adopt"]["wheelhouse"] == str(ROOT / "build" / "wheels")
    finally:
        if not MARKER.exists() and saved.exists():
            shutil.move(saved, MARKER)
