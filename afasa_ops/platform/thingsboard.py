"""The ThingsBoard REST client: login for a JWT, then write shared attributes.

ThingsBoard has no device 'enabled' flag; desired state is the shared attribute `enabled`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from afasa_ops.errors import DriverError
from afasa_ops.redact import redactor


class ThingsboardError(DriverError):
    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@dataclass
class ThingsboardClient:
    base_url: str
    username: str
    password: str
    timeout_s: float = 10.0
    _token: str | None = field(default=None, repr=False)

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        from afasa_ops.infra import http

        url = self.base_url.rstrip("/") + path
        try:
            return http.request(
                method, url, timeout_s=self.timeout_s, what=f"ThingsBoard {method} {path}", **kw
            )
        except http.HttpFailure as exc:
            raise ThingsboardError(exc.message, retryable=True) from None

    def login(self) -> str:
        redactor.add(self.password)
        resp = self._request(
            "POST", "/api/auth/login", json={"username": self.username, "password": self.password}
        )
        if resp.status_code != 200:
            raise ThingsboardError(
                f"ThingsBoard login as {self.username}: HTTP {resp.status_code}",
                retryable=resp.status_code >= 500,
                status=resp.status_code,
            )
        try:
            token = str(resp.json()["token"])
        except (ValueError, KeyError, TypeError):
            raise ThingsboardError(
                "ThingsBoard login: no token in the answer", retryable=True
            ) from None
        redactor.add(token)
        self._token = token
        return token

    def _authed(self, method: str, path: str, **kw: Any) -> Any:
        if self._token is None:
            self.login()
        resp = self._request(
            method, path, headers={"X-Authorization": f"Bearer {self._token}"}, **kw
        )
        if resp.status_code == 401:  # token expired: log in again once
            self.login()
            resp = self._request(
                method, path, headers={"X-Authorization": f"Bearer {self._token}"}, **kw
            )
        return resp

    def set_shared_attributes(self, device_id: str, attributes: dict[str, Any]) -> None:
        path = f"/api/plugins/telemetry/DEVICE/{device_id}/attributes/SHARED_SCOPE"
        resp = self._authed("POST", path, json=attributes)
        if resp.status_code == 200:
            return
        raise ThingsboardError(
            f"ThingsBoard device {device_id}: setting {sorted(attributes)} got HTTP "
            f"{resp.status_code}",
            retryable=resp.status_code >= 500 or resp.status_code == 429,
            status=resp.status_code,
        )
