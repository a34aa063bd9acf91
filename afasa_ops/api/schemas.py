"""Request bodies of the API, validated before any database work; 422 names the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ReportType = Literal["daily", "weekly", "monthly", "custom"]
ReportFormat = Literal["pdf", "xlsx", "csv"]

# The span a preset type covers, ending now.
PRESET_SPANS = {
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=30),
}
MAX_RANGE = timedelta(days=366)


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
        if self.range_from is not None and self.range_to is not None:
            if self.range_to <= self.range_from:
                raise FieldError("range_to", "must be after range_from")
            if self.range_to - self.range_from > MAX_RANGE:
                raise FieldError("range_to", f"range longer than {MAX_RANGE.days} days")
        return self

    def resolved_range(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The range to report on: as given, or the preset span ending now."""
        if self.range_from is not None and self.range_to is not None:
            return self.range_from, self.range_to
        end = self.range_to or now or datetime.now(UTC)
        start = self.range_from or end - PRESET_SPANS.get(self.type, timedelta(days=1))
        return start, end
