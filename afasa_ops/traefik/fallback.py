"""The remedies when a pinned Traefik still cannot reach the engine's API.

(a) lower the daemon's API floor (`min-api-version` in daemon.json, Docker 29+), or
(b) the runbook's fallback B: Docker Engine 28.5.2 from download.docker.com, held and pinned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from afasa_ops.errors import BlockedError

ENGINE_VERSION = "28.5.2"
PACKAGES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
)
PIN_FILE = "/etc/apt/preferences.d/docker-pin"
PIN_TEXT = (
    f"Package: docker-ce docker-ce-cli\nPin: version 5:{ENGINE_VERSION}-1*\nPin-Priority: 1001\n"
)


@dataclass(frozen=True)
class OsRelease:
    id: str
    version_id: str
    codename: str

    @property
    def label(self) -> str:
        return f"{self.id} {self.version_id} ({self.codename})"


def read_os_release(path: Path) -> OsRelease:
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise BlockedError(f"{path}: cannot read the distribution ({exc.strerror})") from None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    codename = values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME", "")
    return OsRelease(values.get("ID", ""), values.get("VERSION_ID", ""), codename)


@dataclass(frozen=True)
class DowngradePlan:
    os: OsRelease
    version: str  # the full apt version string of docker-ce / docker-ce-cli
    # Versions of containerd.io and the two plugins: kept as installed (28.x runs on the
    # containerd.io 2.x that 29 left behind), or apt's candidate when not installed.
    others: tuple[tuple[str, str | None], ...] = ()

    @property
    def pinned_packages(self) -> list[str]:
        kept = dict(self.others)
        out = [f"docker-ce={self.version}", f"docker-ce-cli={self.version}"]
        for name in PACKAGES[2:]:
            out.append(f"{name}={kept[name]}" if kept.get(name) else name)
        return out

    def commands(self) -> list[list[str]]:
        return [
            ["apt-get", "update"],
            ["apt-cache", "madison", "docker-ce"],
            [
                "apt-get",
                "install",
                "-y",
                "--allow-downgrades",
                *self.pinned_packages,
            ],
            ["apt-mark", "hold", *PACKAGES],
        ]

    def shell_text(self) -> str:
        lines = [" ".join(c) for c in self.commands()]
        escaped = PIN_TEXT.replace("\n", "\\n")
        lines.append(f"printf '{escaped}' > {PIN_FILE}")
        lines.append("systemctl restart docker")
        return "\n".join(lines)


def downgrade_plan(
    os_release: OsRelease, others: dict[str, str | None] | None = None
) -> DowngradePlan:
    if os_release.id not in ("ubuntu", "debian") or not os_release.codename:
        raise BlockedError(
            f"fallback B supports Ubuntu and Debian hosts; this is {os_release.label or 'unknown'}",
            hint="install Docker Engine 28.5.2 by your distribution's means",
        )
    version = f"5:{ENGINE_VERSION}-1~{os_release.id}.{os_release.version_id}~{os_release.codename}"
    return DowngradePlan(os_release, version, tuple(sorted((others or {}).items())))


def daemon_config_text(min_api: str, daemon_json: Path) -> str:
    return (
        f'set "min-api-version": "{min_api}" in {daemon_json} '
        f"(or DOCKER_MIN_API_VERSION={min_api} in dockerd's environment), then "
        "`systemctl restart docker`; check with "
        "`docker version --format '{{.Server.MinAPIVersion}}'`"
    )
