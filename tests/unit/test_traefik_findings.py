"""Compose analysis findings, the compatibility table, and where each fix lands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from afasa_ops.compose.project import load_project
from afasa_ops.errors import UsageError
from afasa_ops.traefik.analysis import EngineApi, analyse
from afasa_ops.traefik.compat import judge
from afasa_ops.traefik.fix import compose_changes
from afasa_ops.traefik.images import parse_image
from tests.support.traefik_checkouts import MINIMAL_TRAEFIK

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "afasa"
DOCKER_29_1 = EngineApi("29.1.3", "1.52", "1.44")
DOCKER_28 = EngineApi("28.5.2", "1.51", "1.24")
TARGET = "traefik:v3.6.7"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "Afasa-main"))


def codes(directory: Path, engine: EngineApi | None = DOCKER_29_1, **kw: object) -> set[str]:
    project = load_project(directory, environ={}, **kw)  # type: ignore[arg-type]
    return {f.code for f in analyse(project, target_image=TARGET, engine=engine).findings}


def write(directory: Path, text: str, name: str = "docker-compose.yml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return directory


def test_example_has_every_contract_defect(checkout: Path) -> None:
    assert codes(checkout) == {
        "traefik.unpinned",
        "traefik.docker_api_version_env",
        "traefik.network_mismatch",
        "images.unpinned",
    }


def test_images_unpinned_lists_services(checkout: Path) -> None:
    project = load_project(checkout, environ={})
    finding = next(
        f for f in analyse(project, target_image=TARGET).findings if f.code == "images.unpinned"
    )
    assert finding.severity == "warning"
    assert finding.data["services"] == ["minio"]


@pytest.mark.parametrize(
    ("image", "unpinned"),
    [
        ("traefik", True),
        ("traefik:latest", True),
        ("traefik:v3", True),
        ("traefik:3.6", True),
        ("traefik:v3.6.7", False),
        ("docker.io/library/traefik:3.6.7", False),
        ("traefik@sha256:" + "a" * 64, False),
        ("registry.local:5000/traefik:latest", True),
    ],
)
def test_unpinned_tags(tmp_path: Path, image: str, unpinned: bool) -> None:
    write(tmp_path / "stack", MINIMAL_TRAEFIK.format(image=image))
    assert ("traefik.unpinned" in codes(tmp_path / "stack")) is unpinned


def test_v3_6_0_is_incompatible_with_docker_29_not_28(tmp_path: Path) -> None:
    write(tmp_path / "stack", MINIMAL_TRAEFIK.format(image="traefik:v3.6.0"))
    assert codes(tmp_path / "stack", DOCKER_29_1) == {"traefik.incompatible"}
    assert codes(tmp_path / "stack", DOCKER_28) == set()
    changes = compose_changes(
        analyse(
            load_project(tmp_path / "stack", environ={}), target_image=TARGET, engine=DOCKER_29_1
        ),
        tmp_path / "stack",
    )
    assert "+    image: traefik:v3.6.7" in changes[0].diff


def test_fixed_releases_are_compatible(tmp_path: Path) -> None:
    write(tmp_path / "stack", MINIMAL_TRAEFIK.format(image="traefik:v3.6.7"))
    assert codes(tmp_path / "stack", DOCKER_29_1) == set()


def test_compat_table() -> None:
    assert judge((3, 6, 0), "1.44", "1.52").compatible is False
    assert judge((3, 5, 4), "1.44", "1.52").fixed_api == "1.24"
    assert judge((2, 11, 30), "1.44", "1.52").compatible is False
    assert judge((2, 11, 31), "1.44", "1.52").compatible is True
    assert judge((3, 6, 1), "1.44", "1.52").compatible is True
    # 3.6.16+ needs an engine whose maximum API is at least 1.40.
    assert judge((3, 6, 16), "1.12", "1.39").compatible is False
    assert judge((3, 6, 16), "1.40", "1.55").compatible is True
    assert judge((1, 7, 0), "1.44", "1.52").compatible is None
    assert "12256" in judge((3, 6, 7), "1.44", "1.52").source


def test_image_parsing() -> None:
    ref = parse_image("registry.local:5000/library/traefik:v3.6.7@sha256:abc")
    assert (ref.repository, ref.tag, ref.digest, ref.name) == (
        "registry.local:5000/library/traefik",
        "v3.6.7",
        "sha256:abc",
        "traefik",
    )


def test_no_traefik_service_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "stack", "services:\n  app:\n    image: app:1\n")
    with pytest.raises(UsageError, match="no Traefik service"):
        analyse(load_project(tmp_path / "stack", environ={}), target_image=TARGET)


def test_configured_service_name_must_exist(tmp_path: Path) -> None:
    write(tmp_path / "stack", MINIMAL_TRAEFIK.format(image="traefik:v3.6.7"))
    project = load_project(tmp_path / "stack", environ={})
    with pytest.raises(UsageError, match="'edge': no such service"):
        analyse(project, target_image=TARGET, traefik_service="edge")


def test_no_docker_provider_without_socket(tmp_path: Path) -> None:
    write(
        tmp_path / "stack",
        "services:\n  traefik:\n    image: traefik:v3.6.7\n    command: [--api.insecure=true]\n",
    )
    project = load_project(tmp_path / "stack", environ={})
    analysis = analyse(project, target_image=TARGET)
    finding = next(f for f in analysis.findings if f.code == "traefik.no_docker_provider")
    assert "no Docker socket" in finding.message
    assert finding in analysis.unfixable


def test_command_as_string_is_parsed_and_fixed(tmp_path: Path) -> None:
    write(
        tmp_path / "stack",
        "services:\n"
        "  traefik:\n"
        "    image: traefik:v3.6.7\n"
        "    command: --providers.docker=true --providers.docker.network=afasa2_afasa_net\n"
        "    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n"
        "    networks: [afasa_net]\n"
        "networks:\n  afasa_net:\n",
    )
    project = load_project(tmp_path / "stack", environ={})
    analysis = analyse(project, target_image=TARGET)
    assert [f.code for f in analysis.findings] == ["traefik.network_mismatch"]
    diff = compose_changes(analysis, tmp_path / "stack")[0].diff
    assert (
        "+    command: --providers.docker=true --providers.docker.network=stack_afasa_net" in diff
    )


def test_label_network_mismatch_on_a_service(tmp_path: Path) -> None:
    write(
        tmp_path / "stack",
        MINIMAL_TRAEFIK.format(image="traefik:v3.6.7") + "  # not a network\nx-unused: 1\n",
    )
    text = (
        (tmp_path / "stack" / "docker-compose.yml")
        .read_text()
        .replace(
            "networks:\n  web: {}\n",
            "  app:\n    image: app:1\n    labels:\n      traefik.docker.network: web\n"
            "    networks: [web]\nnetworks:\n  web: {}\n",
        )
    )
    (tmp_path / "stack" / "docker-compose.yml").write_text(text)
    project = load_project(tmp_path / "stack", environ={})
    analysis = analyse(project, target_image=TARGET)
    assert [f.code for f in analysis.findings] == ["traefik.network_mismatch"]
    diff = compose_changes(analysis, tmp_path / "stack")[0].diff
    assert "+      traefik.docker.network: stack_web" in diff


def test_override_file_is_edited_where_it_sets_the_image(tmp_path: Path) -> None:
    stack = write(tmp_path / "stack", MINIMAL_TRAEFIK.format(image="traefik:v3.6.7"))
    write(stack, "services:\n  traefik:\n    image: traefik:latest  # override\n", "override.yml")
    project = load_project(stack, ["docker-compose.yml", "override.yml"], environ={})
    analysis = analyse(project, target_image=TARGET)
    assert [f.code for f in analysis.findings] == ["traefik.unpinned"]
    changes = compose_changes(analysis, stack)
    assert [c.rel for c in changes] == ["override.yml"]
    assert "+    image: traefik:v3.6.7  # override" in changes[0].diff


def test_environment_as_mapping_is_fixed(tmp_path: Path) -> None:
    stack = write(
        tmp_path / "stack",
        MINIMAL_TRAEFIK.format(image="traefik:v3.6.7").replace(
            "    volumes:", "    environment:\n      DOCKER_API_VERSION: '1.45'\n    volumes:"
        ),
    )
    analysis = analyse(load_project(stack, environ={}), target_image=TARGET)
    assert [f.code for f in analysis.findings] == ["traefik.docker_api_version_env"]
    diff = compose_changes(analysis, stack)[0].diff
    assert "-    environment:\n-      DOCKER_API_VERSION: '1.45'\n" in diff


def test_missing_compose_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="compose file not found"):
        load_project(tmp_path, ["nope.yml"], environ={})
