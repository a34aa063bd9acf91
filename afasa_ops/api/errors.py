"""Errors routes raise; app.py maps each to one HTTP answer."""

from __future__ import annotations


class NotFound(Exception):
    """Unknown id, or an id of another tenant: both answer the same 404."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class UpstreamError(Exception):
    """A third party (UbiBot) failed: 502, or 503 when retrying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.status = 503 if retryable else 502
