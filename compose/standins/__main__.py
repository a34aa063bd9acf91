"""Run a stand-in as a server: `python -m standins ubibot|thingsboard`.

Seeded from the environment, so the compose file configures them like the real services:
  STANDIN_HOST (0.0.0.0), STANDIN_PORT (8080)
  ubibot:      UBIBOT_ACCOUNT_KEY (required), UBIBOT_CHANNELS (3): channels for that key
  thingsboard: TB_USERNAME, TB_PASSWORD (required), TB_DEVICES: comma-separated device ids
               (default: one per UbiBot channel, `tb-<channel_id>`)
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        sys.exit(f"standins: {name} is not set")
    return value


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("ubibot", "thingsboard"):
        print("usage: python -m standins ubibot|thingsboard", file=sys.stderr)
        return 2
    from standins.thingsboard import ThingsboardDouble
    from standins.ubibot import UbibotDouble, make_channels

    host = os.environ.get("STANDIN_HOST", "0.0.0.0")
    port = int(os.environ.get("STANDIN_PORT", "8080"))
    channels = make_channels(int(os.environ.get("UBIBOT_CHANNELS", "3")))
    server: UbibotDouble | ThingsboardDouble
    if argv[0] == "ubibot":
        ubi = UbibotDouble(host=host, port=port)
        ubi.set_channels(_env("UBIBOT_ACCOUNT_KEY"), channels)
        server = ubi
    else:
        tb = ThingsboardDouble(
            username=_env("TB_USERNAME"), password=_env("TB_PASSWORD"), host=host, port=port
        )
        default_ids = ",".join(f"tb-{c['channel_id']}" for c in channels)
        for device_id in os.environ.get("TB_DEVICES", default_ids).split(","):
            if device_id.strip():
                tb.add_device(device_id.strip(), name=device_id.strip())
        server = tb
    server.start()
    print(f"standins: {argv[0]} listening on {host}:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
