"""The UbiBot cloud client: GET {base}/channels?account_key=... checked on both the HTTP
status and the body's `result`, and every channel validated before anything is written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from afasa_ops.errors import DriverError
from afasa_ops.redact import redactor

# UbiBot error codes that mean "later", not "wrong".
RETRYABLE_CODES = {"request_too_fast", "over_limit", "too_many_requests", "server_busy"}


class UbibotError(DriverError):
    def __init__(self, message: str, *, retryable: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


@dataclass(frozen=True)
class Channel:
    channel_id: str
    name: str
    product_id: str | None
    last_entry_date: datetime | None
    metadata: dict[str, Any]


def _parse_date(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _decode_nested(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_channel(raw: Any, index: int) -> Channel:
    if not isinstance(raw, dict):
        raise UbibotError(f"channel #{index} is not an object", retryable=False)
    cid = raw.get("channel_id")
    if cid in (None, ""):
        raise UbibotError(f"channel #{index} has no channel_id", retryable=False)
    meta = {
        k: _decode_nested(v)
        for k, v in raw.items()
        if k not in ("channel_id", "name") and not str(k).startswith("field")
    }
    return Channel(
        channel_id=str(cid),
        name=str(raw.get("name") or cid),
        product_id=str(raw["product_id"]) if raw.get("product_id") is not None else None,
        last_entry_date=_parse_date(raw.get("last_entry_date")),
        metadata=meta,
    )


def parse_channels(body: bytes | str) -> list[Channel]:
    """The channel list from a /channels body; raises UbibotError on any malformed part."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UbibotError("UbiBot answered with malformed JSON", retryable=True) from None
    if not isinstance(doc, dict):
        raise UbibotError("UbiBot answered with JSON that is not an object", retryable=True)
    result = doc.get("result")
    if result != "success":
        code = str(doc.get("errorCode") or doc.get("error_code") or "unknown")
        desp = str(doc.get("desp") or doc.get("message") or "")
        return_msg = f"UbiBot error {code}" + (f": {desp}" if desp else "")
        raise UbibotError(redactor.redact(return_msg), retryable=code in RETRYABLE_CODES, code=code)
    channels = doc.get("channels")
    if not isinstance(channels, list):
        raise UbibotError("UbiBot answer has no channels list", retryable=False)
    parsed = [parse_channel(raw, i) for i, raw in enumerate(channels)]
    # The same channel twice would make one upsert statement touch a row twice.
    seen: dict[str, Channel] = {}
    for ch in parsed:
        seen[ch.channel_id] = ch
    return list(seen.values())


@dataclass
class UbibotClient:
    base_url: str
    timeout_s: float = 10.0

    def fetch_channels(self, account_key: str) -> list[Channel]:
        from afasa_ops.infra import http

        redactor.add(account_key)
        url = self.base_url.rstrip("/") + "/channels"
        try:
            resp = http.request(
                "GET",
                url,
                params={"account_key": account_key},
                timeout_s=self.timeout_s,
                what=f"UbiBot {self.base_url}",
            )
        except http.HttpFailure as exc:
            raise UbibotError(exc.message, retryable=True) from None
        if resp.status_code == 429:
            raise UbibotError("UbiBot rate limit (HTTP 429)", retryable=True, code="429")
        if resp.status_code >= 500:
            raise UbibotError(f"UbiBot HTTP {resp.status_code}", retryable=True)
        if resp.status_code >= 400:
            # Errors come back as {"result":"error"} bodies; use them when present.
            try:
                parse_channels(resp.content)
            except UbibotError as exc:
                raise UbibotError(
                    f"UbiBot HTTP {resp.status_code}: {exc.message}",
                    retryable=exc.retryable,
                    code=exc.code,
                ) from None
            raise UbibotError(f"UbiBot HTTP {resp.status_code}", retryable=False)
        return parse_channels(resp.content)
