"""Traefik's published ports from a compose file: short and long syntax, ranges, host IPs,
interpolation from .env, the entrypoint and API container ports from the command, and the
running container's ports when the file does not say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from afasa_ops.compose.project import load_project
from afasa_ops.errors import UsageError
from afasa_ops.traefik.ports import (
    PortMapping,
    TraefikPorts,
    api_port,
    from_compose,
    parse_ports,
    resolve,
    unpublished_api_advice,
    web_port,
)

WEB_AND_API = ["--api.insecure=true", "--entrypoints.web.address=:80"]


def one(entry: Any) -> PortMapping:
    (mapping,) = parse_ports([entry], "traefik")
    return mapping


@pytest.mark.parametrize(
    ("entry", "container_port", "url"),
    [
        ("18090:80", 80, "http://127.0.0.1:18090"),
        ("127.0.0.1:18090:80", 80, "http://127.0.0.1:18090"),
        ("0.0.0.0:18090:80", 80, "http://127.0.0.1:18090"),
        ("[::]:18090:80", 80, "http://127.0.0.1:18090"),
        ("::1:18090:80", 80, "http://[::1]:18090"),
        ("[::1]:18090:80", 80, "http://[::1]:18090"),
        ("192.168.7.2:8081:8080", 8080, "http://192.168.7.2:8081"),
        ("18090:80/tcp", 80, "http://127.0.0.1:18090"),
        ("18090:80/TCP", 80, "http://127.0.0.1:18090"),
        ("8000-8001:80-81", 80, "http://127.0.0.1:8000"),
        ("8000-8001:80-81", 81, "http://127.0.0.1:8001"),
        ("127.0.0.1:9000-9002:8080-8082", 8081, "http://127.0.0.1:9001"),
        ("8081-8081:8080", 8080, "http://127.0.0.1:8081"),
        ({"target": 80, "published": 18090}, 80, "http://127.0.0.1:18090"),
        ({"target": "80", "published": "18090", "protocol": "tcp"}, 80, "http://127.0.0.1:18090"),
        ({"target": 8080, "published": "18091", "host_ip": "127.0.0.1"}, 8080, "http://127.0.0.1:18091"),
        ({"target": 80, "published": "8000-8001", "mode": "host"}, 80, None),
        ({"target": 80}, 80, None),  # published at random
        ("80", 80, None),  # published at random
        (80, 80, None),  # YAML integer: the container port alone
        ("127.0.0.1::80", 80, None),  # host IP, random host port
        ("8000-8010:80", 80, None),  # any free port of the range
        ("18090:80/udp", 80, None),  # not HTTP
        ("18090:8080", 80, None),  # another container port
        ("8000-8001:80-81", 82, None),
    ],
)  # fmt: skip
def test_published_url_of_a_container_port(
    entry: Any, container_port: int, url: str | None
) -> None:
    found = resolve([one(entry)], container_port)
    assert (found[0] if found else None) == url


def test_first_tcp_entry_that_publishes_the_port_wins() -> None:
    mappings = parse_ports(["18090:80/udp", "80", "127.0.0.1:18091:80", "18092:80"], "traefik")
    assert resolve(mappings, 80) == ("http://127.0.0.1:18091", "127.0.0.1:18091:80")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["eighty:80"], "'eighty' is not a port or a port range"),
        (["18090:"], "'' is not a port"),
        (["70000:80"], "not a port range within 1-65535"),
        (["9000-8000:80"], "not a port range within 1-65535"),
        ([{"published": 80}], "the long syntax needs `target`"),
        ([["80"]], "is neither a port string nor a mapping"),
        ("80:80", "`ports` must be a list"),
    ],
)
def test_bad_entries_name_the_service_and_entry(entries: Any, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_ports(entries, "traefik")
    assert message in str(err.value)
    assert "service traefik" in str(err.value)


@pytest.mark.parametrize(
    ("command", "env", "web", "api"),
    [
        (WEB_AND_API, {}, 80, 8080),
        ([], {}, 80, None),  # Traefik's defaults: :80, no insecure API
        (["--entrypoints.web.address=:8000", "--api.insecure=true"], {}, 8000, 8080),
        (["--entryPoints.web.address=:8000", "--API.insecure"], {}, 8000, 8080),
        (["--entrypoints.web.address", ":8000", "--api.insecure", "true"], {}, 8000, 8080),
        (["--entrypoints.web.address=0.0.0.0:81/tcp", "--api.insecure=false"], {}, 81, None),
        (["--entrypoints.web.address=[::]:82"], {}, 82, None),
        (
            ["--api.insecure=true", "--entrypoints.traefik.address=:9000"],
            {},
            80,
            9000,
        ),
        # No `web`: the only other entrypoint is where routes answer.
        (["--entrypoints.http.address=:8888", "--entrypoints.traefik.address=:9"], {}, 8888, None),
        # Two candidates and no `web`: Traefik's default port.
        (["--entrypoints.a.address=:1", "--entrypoints.b.address=:2"], {}, 80, None),
        (
            "--api.insecure=true --entrypoints.web.address=:8001",  # command as a string
            {},
            8001,
            8080,
        ),
        ([], {"TRAEFIK_ENTRYPOINTS_WEB_ADDRESS": ":8002", "TRAEFIK_API_INSECURE": "true"}, 8002, 8080),
        # The command line wins over the environment.
        (["--entrypoints.web.address=:8003"], {"TRAEFIK_ENTRYPOINTS_WEB_ADDRESS": ":1"}, 8003, None),
    ],
)  # fmt: skip
def test_container_ports_from_traefiks_configuration(
    command: Any, env: dict[str, str], web: int, api: int | None
) -> None:
    ports = from_compose({"command": command, "environment": env}, "traefik", "docker-compose.yml")
    assert ports.entrypoint.container_port == web
    assert ports.api.container_port == api


def test_an_address_without_a_port_is_refused() -> None:
    with pytest.raises(UsageError, match="entrypoint web: cannot read a port from the address"):
        web_port(["--entrypoints.web.address=localhost"], {}, "traefik")
    assert api_port(["--api.insecure=true"], {}, "traefik") == 8080


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


COMPOSE = """\
services:
  proxy:
    image: traefik:v3.6.7
    command:
      - "--providers.docker=true"
      - "--api.insecure=true"
      - "--entrypoints.web.address=:80"
    ports:
{ports}
"""


def derived(
    directory: Path, ports: str, files: list[str] | None = None, **extra: str
) -> TraefikPorts:
    write(directory, {"docker-compose.yml": COMPOSE.format(ports=ports), **extra})
    project = load_project(directory, files, environ={})
    spec = project.services["proxy"]
    return from_compose(spec, "proxy", ", ".join(str(f.name) for f in project.files))


def test_interpolated_from_dot_env(tmp_path: Path) -> None:
    ports = derived(
        tmp_path,
        '      - "${WEB_PORT:-80}:80"\n      - "${API_HOST:-127.0.0.1}:${API_PORT}:8080"\n',
        **{".env": "WEB_PORT=18090\nAPI_PORT=18091\n"},
    )
    assert ports.entrypoint.url == "http://127.0.0.1:18090"
    assert ports.api.url == "http://127.0.0.1:18091"
    assert ports.api.source == "ports '127.0.0.1:18091:8080' of proxy in docker-compose.yml"


def test_interpolation_defaults_apply_without_dot_env(tmp_path: Path) -> None:
    ports = derived(tmp_path, '      - "${WEB_PORT:-8088}:80"\n      - "${API_PORT-8089}:8080"\n')
    assert (ports.entrypoint.url, ports.api.url) == (
        "http://127.0.0.1:8088",
        "http://127.0.0.1:8089",
    )


def test_long_syntax_in_the_file(tmp_path: Path) -> None:
    ports = derived(
        tmp_path,
        "      - target: 80\n        published: ${WEB_PORT:-18090}\n        protocol: tcp\n"
        '      - {target: 8080, published: "18091", host_ip: 127.0.0.1}\n',
    )
    assert ports.entrypoint.url == "http://127.0.0.1:18090"
    assert ports.api.url == "http://127.0.0.1:18091"


def test_an_override_file_adds_ports(tmp_path: Path) -> None:
    ports = derived(
        tmp_path,
        '      - "18090:80"\n',
        ["docker-compose.yml", "docker-compose.override.yml"],
        **{"docker-compose.override.yml": 'services:\n  proxy:\n    ports: ["18091:8080"]\n'},
    )
    assert ports.api.url == "http://127.0.0.1:18091"
    assert ports.api.source.endswith("in docker-compose.yml, docker-compose.override.yml")


def test_host_network_uses_the_container_ports(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"docker-compose.yml": COMPOSE.format(ports="      - 80") + "    network_mode: host\n"},
    )
    spec = load_project(tmp_path, environ={}).services["proxy"]
    ports = from_compose(spec, "proxy", "docker-compose.yml")
    assert (ports.entrypoint.url, ports.api.url) == ("http://127.0.0.1:80", "http://127.0.0.1:8080")


def test_random_and_missing_ports_come_from_the_running_container(tmp_path: Path) -> None:
    ports = derived(tmp_path, '      - "80"\n')
    assert ports.entrypoint.unresolved and ports.api.unresolved
    assert "a host port the engine picks" in ports.entrypoint.problem
    assert ports.api.problem == "container port 8080 is not published in docker-compose.yml"
    live = ports.with_runtime(
        {"80/tcp": [("::", "49154"), ("0.0.0.0", "49153")], "8080/tcp": [("127.0.0.1", "49155")]}
    )
    assert live.entrypoint.url == "http://127.0.0.1:49153"
    assert live.entrypoint.source == "the running container publishes 80/tcp on 0.0.0.0:49153"
    assert live.api.url == "http://127.0.0.1:49155"
    # The container does not publish the API either: still no URL, and the reason says both.
    bare = ports.with_runtime({"80/tcp": [("0.0.0.0", "49153")]})
    assert bare.api.url is None
    assert bare.api.problem.endswith("and the running container does not publish it either")
    assert "127.0.0.1:8081:8080" in unpublished_api_advice(bare)


def test_explicit_keys_win(tmp_path: Path) -> None:
    ports = derived(tmp_path, '      - "18090:80"\n      - "18091:8080"\n')
    mine = ports.configured("http://10.0.0.5:9", None)
    assert mine.api.url == "http://10.0.0.5:9" and mine.api.source == "[traefik] api_url"
    assert mine.entrypoint.url == "http://127.0.0.1:18090"


def test_api_without_insecure_is_not_served(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"docker-compose.yml": COMPOSE.format(ports='      - "18090:80"\n      - "8081:8080"').replace(
            '      - "--api.insecure=true"\n', ""
        )},
    )  # fmt: skip
    spec = load_project(tmp_path, environ={}).services["proxy"]
    ports = from_compose(spec, "proxy", "docker-compose.yml")
    assert ports.api.container_port is None and ports.api.url is None
    assert not ports.api.unresolved  # nothing to ask the container
    assert "no --api.insecure=true" in ports.api.problem
    assert '"--api.insecure=true"' in unpublished_api_advice(ports)
