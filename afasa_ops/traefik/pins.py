"""The pin target: the nearest known-good release in the release line the checkout runs.

A major upgrade (v2 -> v3) changes router rule syntax and removes static options, so it can
break every route; the runbook upgrades only with proof. So the pin stays in the current
major line: the configured target when it is of that line, else the compatibility table's
nearest known-good release of it (for v2: v2.11.31, the fixed release of the v2.11 line).
Crossing a major version takes an explicit `--param target_image=...`, and then a finding
names the migration it implies. Floating tags stand for the line they follow today:
`latest` and no tag for v3, `v3.6` for v3, `2.11` for v2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from afasa_ops.findings import Finding
from afasa_ops.traefik.compat import TABLE, Band, judge
from afasa_ops.traefik.images import ImageRef, parse_image

Release = tuple[int, int, int]

# The major line `latest` (and an image without a tag) follows today.
LATEST_MAJOR = 3
_LINE_TAG = re.compile(r"^v?(\d+)(?:\.\d+){0,2}(?:[-+].*)?$")
# Table bounds above this are "the rest of the line", not releases.
_OPEN_BOUND = 999

V2_TO_V3_GUIDE = "https://doc.traefik.io/traefik/migration/v2-to-v3/"
# Static options v3 no longer accepts: Traefik v3 refuses to start with them.
REMOVED_IN_V3 = {
    "--providers.docker.swarmmode": "use the swarm provider (--providers.swarm.*)",
    "--providers.docker.tls.caoptional": "remove it",
}


class Engine(Protocol):
    """The engine's API range (analysis.EngineApi): candidates are judged against it."""

    @property
    def min_api_version(self) -> str: ...

    @property
    def api_version(self) -> str: ...


@dataclass(frozen=True)
class PinTarget:
    image: str
    why: str  # for the finding's message
    source: str = ""  # the table's source, when the table chose
    findings: list[Finding] = field(default_factory=list)
    blocked: Finding | None = None  # no release of the line can be chosen


def line_of(ref: ImageRef) -> int | None:
    """The major version a tag follows: `v2.11.10`, `2.11` and `v2` -> 2; `latest` and no
    tag -> LATEST_MAJOR; None for tags that name no version (codenames, digests only)."""
    if ref.tag is None:
        return None if ref.digest else LATEST_MAJOR
    if ref.tag == "latest":
        return LATEST_MAJOR
    match = _LINE_TAG.match(ref.tag)
    return int(match.group(1)) if match else None


def known_good(major: int, engine: Engine | None) -> list[tuple[Release, Band]]:
    """Releases of this major line the table knows to work with the engine (with any engine
    when it is unknown): the bounds of each negotiating band, ascending."""
    found: dict[Release, Band] = {}
    for band in TABLE:
        if band.first[0] != major or band.fixed_api is not None:
            continue
        for release in (band.first, band.last):
            if release is None or release[0] != major or release[1] >= _OPEN_BOUND:
                continue
            if engine is not None:
                verdict = judge(release, engine.min_api_version, engine.api_version)
                if verdict.compatible is not True:
                    continue
            elif band.needs_engine_api is not None:
                continue
            found.setdefault(release, band)
    return sorted(found.items())


def nearest(
    current: Release | None, candidates: Sequence[tuple[Release, Band]]
) -> tuple[Release, Band]:
    """The first candidate at or above the running release (an upgrade within the line);
    else the highest below it. Without a release (a floating tag): the line's first fixed."""
    if current is not None:
        above = [c for c in candidates if c[0] >= current]
        if above:
            return above[0]
        return candidates[-1]
    return candidates[0]


def choose(
    current_image: str,
    *,
    configured: str,
    explicit: str | None,
    engine: Engine | None,
    command: Sequence[str] = (),
) -> PinTarget:
    """Where to pin a Traefik image that needs a pin. `configured` is the runbook's (or
    [traefik]) target_image, used within its own major line; `explicit` is the operator's
    `--param target_image`, used as given."""
    current = parse_image(current_image)
    line = line_of(current)
    if explicit:
        target_line = line_of(parse_image(explicit))
        findings = []
        if line is not None and target_line is not None and target_line != line:
            findings.append(migration_finding(line, target_line, current_image, explicit, command))
        return PinTarget(explicit, "given with --param target_image", findings=findings)
    configured_line = line_of(parse_image(configured))
    if line is None or configured_line == line:
        return PinTarget(configured, "the runbook's target_image")
    candidates = known_good(line, engine)
    if not candidates:
        blocked = Finding.error(
            "traefik.no_pin_in_line",
            f"no known-good v{line} release in the compatibility table for {current_image}; "
            f"pinning {configured} crosses a major version: migrate, then pass "
            f"--param target_image={configured}",
            image=current_image,
        )
        return PinTarget(configured, "", blocked=blocked)
    release, band = nearest(current.release, candidates)
    image = f"{current.repository}:v{'.'.join(map(str, release))}"
    note = Finding.info(
        "traefik.pin_in_line",
        f"{image} is the nearest known-good v{line} release ({band.source}); the runbook's "
        f"target {configured} is v{configured_line}, a major version away: pass "
        f"--param target_image={configured} to cross it",
        image=image,
        line=line,
        source=band.source,
    )
    return PinTarget(image, f"the nearest known-good v{line} release", band.source, [note])


def migration_finding(
    line: int, target_line: int, current: str, target: str, command: Sequence[str]
) -> Finding:
    """What a pin across major versions implies, named for the operator."""
    if (line, target_line) == (2, 3):
        removed = [
            f"{arg.split('=', 1)[0]} ({REMOVED_IN_V3[key]})"
            for arg in command
            if (key := arg.split("=", 1)[0].lower()) in REMOVED_IN_V3
        ]
        text = (
            f"{current} -> {target} is the Traefik v2 -> v3 migration ({V2_TO_V3_GUIDE}): "
            "router rules take the v3 syntax (one value per matcher, PathPrefix without "
            "regular expressions, HostRegexp/PathRegexp in Go regexp syntax; "
            "--core.defaultRuleSyntax=v2 keeps v2 rules while moving), and static options "
            "v3 removed stop it from starting"
        )
        text += (
            f"; this checkout sets {', '.join(removed)}"
            if removed
            else " (e.g. --providers.docker.swarmMode)"
        )
    elif target_line < line:
        text = (
            f"{current} -> {target} goes back a major version (v{line} -> v{target_line}): "
            f"options and rule syntax of v{line} are not understood by v{target_line}"
        )
    else:
        text = (
            f"{current} -> {target} crosses a major version (v{line} -> v{target_line}): "
            "follow Traefik's migration guide for it"
        )
    return Finding.warning(
        "traefik.major_upgrade" if target_line > line else "traefik.major_downgrade",
        text,
        image=current,
        target=target,
        migration=f"v{line}->v{target_line}",
    )
