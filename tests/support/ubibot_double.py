"""The UbiBot cloud double is the demo stack's stand-in: one implementation for both
(compose/standins/ubibot.py, standard library only)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compose"))

from standins.ubibot import FAILURES, UbibotDouble, make_channel, make_channels

__all__ = ["FAILURES", "UbibotDouble", "make_channel", "make_channels"]
