"""tb-adapter as found: `/api/tb/...`, `/api/devices/...`, `/api/integrations/...`,
`/api/discovery/...`.

- The UbiBot sync fetches the account's channels, logs each one and saves nothing, then
  answers success with the number of channels found.
- enable/disable answer success for any device id and change nothing (no desired state, no
  command, nothing sent to ThingsBoard).
- The device list is what it returned before the registry existed: nothing.

Settings (environment): UBIBOT_BASE_URL, UBIBOT_ACCOUNT_KEY.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from typing import Any

from afasa_stub.common import Answer, Request, Routes, log

SERVICE = "tb-adapter"


def ubibot_channels() -> list[dict[str, Any]]:
    base = os.environ.get("UBIBOT_BASE_URL", "https://webapi.ubibot.com").rstrip("/")
    key = os.environ.get("UBIBOT_ACCOUNT_KEY", "")
    url = f"{base}/channels?{urllib.parse.urlencode({'account_key': key})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            doc = json.loads(response.read())
    except (OSError, ValueError) as exc:
        log(SERVICE, f"ubibot: {type(exc).__name__}: {exc}")
        return []
    if not isinstance(doc, dict) or doc.get("result") != "success":
        log(SERVICE, f"ubibot answered {str(doc)[:200]}")
        return []
    channels = doc.get("channels") or []
    return [c for c in channels if isinstance(c, dict)]


def sync(request: Request) -> Answer:
    channels = ubibot_channels()
    for channel in channels:
        # TODO(audit): upsert into a device registry. There is none; nothing is saved.
        log(SERVICE, f"sync: channel {channel.get('channel_id')} {channel.get('name')!r}")
    return 200, {"result": "success", "devices_found": len(channels), "synced": len(channels)}


def connect(request: Request) -> Answer:
    log(SERVICE, "ubibot connect: account key accepted (not stored)")
    return 200, {"result": "success"}


def list_devices(request: Request) -> Answer:
    return 200, {"devices": []}


def get_device(request: Request) -> Answer:
    return 404, {"detail": "device not found"}


def set_enabled(enabled: bool) -> Any:
    def handler(request: Request) -> Answer:
        device_id = request.params["device_id"]
        # TODO(audit): record the desired state and send the command to ThingsBoard.
        log(SERVICE, f"device {device_id}: {'enable' if enabled else 'disable'} requested")
        return 200, {"result": "success", "device_id": device_id, "enabled": enabled}

    return handler


def routes() -> Routes:
    table = Routes(SERVICE)
    for path in (
        "/api/discovery/ubibot/sync",
        "/api/tb/integrations/ubibot/sync",
        "/api/integrations/ubibot/sync",
    ):
        table.add("POST", path, sync)
    for path in ("/api/integrations/ubibot/connect", "/api/tb/integrations/ubibot/connect"):
        table.add("POST", path, connect)
    for prefix in ("/api/devices", "/api/tb/devices"):
        table.add("GET", prefix, list_devices)
        table.add("GET", prefix + "/{device_id}", get_device)
        table.add("POST", prefix + "/{device_id}/enable", set_enabled(True))
        table.add("POST", prefix + "/{device_id}/disable", set_enabled(False))
    return table
