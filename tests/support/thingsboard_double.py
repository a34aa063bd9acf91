"""The ThingsBoard REST double is the demo stack's stand-in: one implementation for both
(compose/standins/thingsboard.py, standard library only)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compose"))

from standins.thingsboard import ATTR_PREFIX, ThingsboardDouble

__all__ = ["ATTR_PREFIX", "ThingsboardDouble"]
