"""The install instructions name the wheel this version builds (test_wheel_install.py checks
that the build makes exactly that file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from afasa_ops import __version__

ROOT = Path(__file__).resolve().parents[2]
WHEEL = f"afasa_ops-{__version__}-py3-none-any.whl"


@pytest.mark.parametrize("doc", ["README.md", "docs/install.md"])
def test_the_install_docs_name_this_versions_wheel(doc: str) -> None:
    text = (ROOT / doc).read_text()
    named = set(re.findall(r"[\w./-]+\.whl", text))
    assert named == {f"dist/{WHEEL}"}, named
