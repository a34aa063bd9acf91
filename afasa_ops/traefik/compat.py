"""Which Traefik releases send a fixed Docker API version, as data with its sources.

Compatibility is decided from the engine's reported MinAPIVersion against the client's fixed
version, never from the number printed in an error message (FACTS.md, "Traefik and the
Docker 29 API floor").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOURCES = (
    "traefik PR #12256 (v3.6.1, 2025-11-13): docker provider negotiates the API version",
    "traefik PR #12262 (v2.11.31, 2025-11-13): the same for v2",
    "traefik <= v3.6.0 and <= v2.11.30: client built with the fixed API version 1.24",
    "traefik >= v3.6.16 and >= v2.11.45: docker provider needs engine API >= 1.40",
    "Docker Engine API ranges: 28.x 1.24-1.51; 29.0-29.1 1.44-1.52; 29.2 1.44-1.53; "
    "29.3-29.5 1.40-1.54; 29.6+ 1.40-1.55",
)


@dataclass(frozen=True)
class Band:
    """Releases from `first` up to and including `last` (None: open-ended)."""

    first: tuple[int, int, int]
    last: tuple[int, int, int] | None
    fixed_api: str | None  # None: negotiates with `HEAD /_ping`
    needs_engine_api: str | None  # the lowest engine max API version it works with
    source: str


# The table. Order does not matter; bands do not overlap.
TABLE: tuple[Band, ...] = (
    Band((2, 0, 0), (2, 11, 30), "1.24", None, SOURCES[2]),
    Band((2, 11, 31), (2, 11, 44), None, None, SOURCES[1]),
    Band((2, 11, 45), (2, 999, 999), None, "1.40", SOURCES[3]),
    Band((3, 0, 0), (3, 6, 0), "1.24", None, SOURCES[2]),
    Band((3, 6, 1), (3, 6, 15), None, None, SOURCES[0]),
    Band((3, 6, 16), None, None, "1.40", SOURCES[3]),
)

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def parse_api(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def release_of(tag: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a full release tag such as `v3.6.7` or `3.6.0`; else None."""
    match = _SEMVER.match(tag.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def band_of(release: tuple[int, int, int]) -> Band | None:
    for band in TABLE:
        if release >= band.first and (band.last is None or release <= band.last):
            return band
    return None


@dataclass(frozen=True)
class Verdict:
    compatible: bool | None  # None: the release is not in the table
    reason: str
    fixed_api: str | None = None
    source: str = ""


def judge(release: tuple[int, int, int], engine_min_api: str, engine_max_api: str) -> Verdict:
    """Whether this Traefik release's docker provider can talk to this engine."""
    shown = "v" + ".".join(map(str, release))
    band = band_of(release)
    if band is None:
        return Verdict(None, f"traefik {shown} is not in the compatibility table")
    if band.fixed_api is not None:
        if parse_api(band.fixed_api) < parse_api(engine_min_api):
            return Verdict(
                False,
                f"traefik {shown} sends the fixed API version {band.fixed_api}, below the "
                f"engine's minimum {engine_min_api}",
                band.fixed_api,
                band.source,
            )
        return Verdict(
            True,
            f"traefik {shown} sends API {band.fixed_api}, within the engine's range",
            band.fixed_api,
            band.source,
        )
    if band.needs_engine_api and parse_api(engine_max_api) < parse_api(band.needs_engine_api):
        return Verdict(
            False,
            f"traefik {shown} needs engine API >= {band.needs_engine_api}; the engine's "
            f"maximum is {engine_max_api}",
            None,
            band.source,
        )
    return Verdict(True, f"traefik {shown} negotiates the API version", None, band.source)
