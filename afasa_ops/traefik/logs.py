"""Scan Traefik's logs for the docker provider's failure lines (FACTS.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TOO_OLD = re.compile(
    r"client version (?P<client>\d+\.\d+) is too old\. Minimum supported API version is "
    r"(?P<min>\d+\.\d+)"
)
TOO_NEW = re.compile(
    r"client version (?P<client>\d+\.\d+) is too new\. Maximum supported API version is "
    r"(?P<max>\d+\.\d+)"
)
FAILURE_MARKERS = (
    "Failed to retrieve information of the docker client and server host",
    "Provider error, retrying in",
    "Provider connection error",
)
NETWORK_MARKER = "Could not find network named"
STARTED_MARKER = "Starting provider *docker.Provider"


@dataclass
class LogScan:
    failures: list[str] = field(default_factory=list)
    network_warnings: list[str] = field(default_factory=list)
    started: bool = False
    # (client version sent, engine minimum) when the engine refused an old client.
    too_old: tuple[str, str] | None = None
    too_new: tuple[str, str] | None = None

    @property
    def api_version_failure(self) -> bool:
        return self.too_old is not None or self.too_new is not None

    @property
    def broken(self) -> bool:
        return bool(self.failures)


def scan(text: str) -> LogScan:
    result = LogScan()
    for line in text.splitlines():
        if STARTED_MARKER in line:
            result.started = True
        if NETWORK_MARKER in line:
            result.network_warnings.append(line.strip())
        failing = any(marker in line for marker in FAILURE_MARKERS) or "is too old" in line
        if failing and line.strip() not in result.failures:
            result.failures.append(line.strip())
        old = TOO_OLD.search(line)
        if old:
            result.too_old = (old.group("client"), old.group("min"))
        new = TOO_NEW.search(line)
        if new:
            result.too_new = (new.group("client"), new.group("max"))
    return result
