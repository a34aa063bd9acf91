"""Platform view objects to JSON-ready dicts."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi.encoders import jsonable_encoder


def as_json(view: Any) -> dict[str, Any]:
    as_dict = getattr(view, "as_dict", None)
    data = as_dict() if callable(as_dict) else dataclasses.asdict(view)
    encoded: dict[str, Any] = jsonable_encoder(data)
    return encoded
