"""afasa-ops as a user installs it: the wheel built from this tree, installed into new venvs.

The wheel is built and installed from a local wheelhouse (compose/app/wheels.sh: the lock's
runtime wheels plus the build backend) with --no-index, so nothing else is fetched. Commands
run with their working directory outside the checkout and no PYTHON* variables, so only
what the wheel holds can be found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "build" / "wheels"


def clean_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """base (default: os.environ) without afasa-ops' variables and anything that would let
    Python find this tree (PYTHONPATH, an active venv)."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(("AFASA_OPS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(NO_COLOR="1", **extra)
    return env


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=600
    )


def build_wheel(src: Path, out: Path) -> tuple[Path, str]:
    """The afasa-ops wheel, built from a copy of this tree in src with the wheelhouse's
    setuptools only, into out; with the build's log."""
    made = subprocess.run(
        ["bash", str(ROOT / "compose/app/wheels.sh")], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    # From a copy of what a clean clone holds: an in-tree build would reuse build/lib and
    # *.egg-info left by earlier builds, and could ship files the configuration forgets.
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "afasa_ops", src / "afasa_ops", ignore=shutil.ignore_patterns("__pycache__")
    )
    build = run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-index",
         "--find-links", str(WHEELHOUSE), "--wheel-dir", str(out), str(src)],
        cwd=out,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (found,) = out.glob("afasa_ops-*.whl")
    return found, build.stdout + build.stderr


@dataclass
class Installed:
    venv: Path
    home: Path  # a working directory outside the source tree

    @property
    def exe(self) -> str:
        return str(self.venv / "bin" / "afasa-ops")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run([self.exe, *args], cwd=self.home, **env)


def install(root: Path, requirement: str) -> Installed:
    """A new venv under root with requirement installed from the wheelhouse, and a home."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-index",
         "--find-links", str(WHEELHOUSE), requirement],
        cwd=root,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    home = root / "home"
    home.mkdir()
    return Installed(venv, home)
