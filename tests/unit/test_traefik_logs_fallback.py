"""Traefik log scanning (the FACTS.md failure lines) and the fallback commands per distro."""

from __future__ import annotations

from pathlib import Path

import pytest

from afasa_ops.errors import BlockedError
from afasa_ops.traefik.fallback import downgrade_plan, read_os_release
from afasa_ops.traefik.logs import scan

BROKEN_V3 = (
    "2026-11-28T10:00:00Z INF Starting provider *docker.Provider\n"
    "2026-11-28T10:00:00Z ERR Failed to retrieve information of the docker client and server host "
    'error="Error response from daemon: client version 1.24 is too old. Minimum supported API '
    'version is 1.44, please upgrade your client to a newer version" providerName=docker\n'
    '2026-11-28T10:00:00Z ERR Provider error, retrying in 512ms error="..." providerName=docker\n'
)
WORKING = (
    "2026-11-28T10:00:00Z INF Starting provider *docker.Provider\n"
    "2026-11-28T10:00:01Z INF Starting provider *traefik.Provider\n"
)
NETWORK = (
    '2026-11-28T10:00:02Z WRN Could not find network named "afasa2_afasa_net" for container '
    "\"/report\". Maybe you're missing the project's prefix in the label? providerName=docker\n"
)


def test_broken_provider_is_an_api_version_failure() -> None:
    result = scan(BROKEN_V3)
    assert result.broken and result.api_version_failure
    assert result.too_old == ("1.24", "1.44")
    assert len(result.failures) == 2


def test_working_provider_has_no_failures() -> None:
    result = scan(WORKING)
    assert result.started and not result.broken


def test_too_new_after_a_pinned_docker_api_version() -> None:
    line = "Error response from daemon: client version 1.45 is too new. Maximum supported API version is 1.41"
    result = scan(
        f'ERR Failed to retrieve information of the docker client and server host error="{line}"\n'
    )
    assert result.too_new == ("1.45", "1.41") and result.api_version_failure


def test_network_warning_is_not_a_provider_failure() -> None:
    result = scan(WORKING + NETWORK)
    assert not result.broken
    assert result.network_warnings == [NETWORK.strip()]


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (
            'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n',
            "5:28.5.2-1~ubuntu.24.04~noble",
        ),
        (
            'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
            "VERSION_CODENAME=bookworm\n",
            "5:28.5.2-1~debian.12~bookworm",
        ),
    ],
)
def test_downgrade_commands_use_the_full_version_strings(
    tmp_path: Path, text: str, version: str
) -> None:
    (tmp_path / "os-release").write_text(text)
    plan = downgrade_plan(
        read_os_release(tmp_path / "os-release"),
        {"containerd.io": "2.1.5-1", "docker-buildx-plugin": None},
    )
    shell = plan.shell_text()
    assert (
        f"apt-get install -y --allow-downgrades docker-ce={version} docker-ce-cli={version} "
        "containerd.io=2.1.5-1 docker-buildx-plugin docker-compose-plugin"
    ) in shell
    assert (
        "apt-mark hold docker-ce docker-ce-cli containerd.io docker-buildx-plugin "
        "docker-compose-plugin"
    ) in shell
    assert "Pin: version 5:28.5.2-1*" in shell and "Pin-Priority: 1001" in shell
    assert "/etc/apt/preferences.d/docker-pin" in shell


def test_other_distributions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "os-release").write_text('ID=fedora\nVERSION_ID="40"\n')
    with pytest.raises(BlockedError, match="fedora 40"):
        downgrade_plan(read_os_release(tmp_path / "os-release"))
