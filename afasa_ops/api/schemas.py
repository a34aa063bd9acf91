"""Request bodies of the API, validated before any database work; 422 names the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from afasa_ops.platform.ranges import bound_problem, preset_start

ReportType = Literal["daily", "weekly", "monthly", "custom"]
ReportFormat = Literal["pdf", "xlsx", "csv"]

# The span a preset type covers, ending now.
PRESET_SPANS = {
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=30),
}


class FieldError(ValueError):
    """A validation error that knows which field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ReportType = Field(default="custom", description="daily, weekly, monthly or custom.")
    format: ReportFormat = Field(default="pdf", description="pdf, xlsx or csv.")
    range_from: datetime | None = Field(default=None, description="Start (ISO 8601).")
    range_to: datetime | None = Field(default=None, description="End (ISO 8601).")

    @model_validator(mode="after")
    def _range(self) -> ReportRequest:
        if self.range_from is not None and self.range_from.tzinfo is None:
            self.range_from = self.range_from.replace(tzinfo=UTC)
        if self.range_to is not None and self.range_to.tzinfo is None:
            self.range_to = self.range_to.replace(tzinfo=UTC)
        if self.type == "custom":
            if self.range_from is None:
                raise FieldError("range_from", "required when type is custom")
            if self.range_to is None:
                raise FieldError("range_to", "required when type is custom")
        for name in ("range_from", "range_to"):
            value = getattr(self, name)
            problem = bound_problem(value) if value is not None else None
            if problem is not None:
                raise FieldError(name, problem)
        if self.range_from is not None and self.range_to is not None:
            if self.range_to <= self.range_from:
                raise FieldError("range_to", "must be after range_from")
        elif self.range_from is None:
            end = self.range_to or datetime.now(UTC)
            if preset_start(end, PRESET_SPANS.get(self.type, timedelta(days=1))) is None:
                raise FieldError(
                    "range_to", f"a {self.type} report ending here starts before year 1"
                )
        return self

    def resolved_range(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The range to report on: as given, or the preset span ending now."""
        if self.range_from is not None and self.range_to is not None:
            return self.range_from, self.range_to
        end = self.range_to or now or datetime.now(UTC)
        start = self.range_from or preset_start(end, PRESET_SPANS.get(self.type, timedelta(days=1)))
        if start is None:  # only for a `now` in year 1; the validator refused the rest
            raise FieldError("range_to", "the preset range starts before year 1")
        return start, end
