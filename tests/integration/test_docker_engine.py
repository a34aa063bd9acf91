"""The Docker engine driver (infra/docker.py) speaks the Engine API itself, over the socket:
facts, a Compose service's newest container, the services that have containers, and logs
(stdout and stderr demultiplexed; a terminal's logs as written), against the real engine.
The docker SDK is not imported: it cost every run a tenth of a second."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from afasa_ops.errors import DriverError
from afasa_ops.infra.docker import DockerEngine
from tests.support.docker_fixtures import BASE_IMAGE, TEST_LABEL, require_docker, require_images
from tests.support.fresh_python import imported_by

ROOT = Path(__file__).resolve().parents[2]


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def project() -> Iterator[str]:
    require_docker()
    require_images(BASE_IMAGE)
    name = f"afasa-drv-{uuid.uuid4().hex[:8]}"
    yield name
    ids = docker("ps", "-aq", "--filter", f"label={TEST_LABEL}={name}").split()
    if ids:
        docker("rm", "-f", *ids)


def start(
    project: str, service: str, script: str, *, tty: bool = False, oneoff: bool = False
) -> str:
    labels = [
        f"com.docker.compose.project={project}",
        f"com.docker.compose.service={service}",
        f"com.docker.compose.oneoff={oneoff}",
        f"{TEST_LABEL}={project}",
    ]
    argv = ["run", "-d", *(["-t"] if tty else []), "-e", "GREETING=hello"]
    for label in labels:
        argv += ["--label", label]
    return docker(*argv, BASE_IMAGE, "sh", "-c", script)


def wait_exited(container_id: str) -> None:
    deadline = time.monotonic() + 60
    while docker("inspect", "--format", "{{.State.Status}}", container_id) != "exited":
        assert time.monotonic() < deadline, "the container did not finish"
        time.sleep(0.1)


def test_facts_are_the_engines() -> None:
    require_docker()
    facts = DockerEngine("unix:///var/run/docker.sock").facts()
    assert facts.version == docker("version", "--format", "{{.Server.Version}}")
    assert facts.api_version == docker("version", "--format", "{{.Server.APIVersion}}")
    assert facts.os == "linux" and facts.operating_system


def test_a_service_container_its_services_and_its_logs(project: str) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    plain = start(project, "web", "echo out-line; echo err-line >&2; echo out-2")
    term = start(project, "term", "printf 'tty-line\\n'", tty=True)
    wait_exited(plain)
    wait_exited(term)
    engine = DockerEngine("unix:///var/run/docker.sock")
    try:
        assert engine.services_with_containers(project) == {"web", "term"}
        info = engine.service_container(project, "web")
        assert info is not None and info.id == plain
        assert info.image == BASE_IMAGE and info.status == "exited" and not info.running
        assert info.env["GREETING"] == "hello"
        assert info.cmd[:2] == ["sh", "-c"]
        assert engine.service_container(project, "absent") is None
        # Both streams, without the engine's 8-byte frame headers (the engine interleaves the
        # two pipes as it reads them: only each stream's own order is given).
        lines = engine.logs_since(plain, since).splitlines()
        assert sorted(lines) == ["err-line", "out-2", "out-line"]
        assert lines.index("out-line") < lines.index("out-2")
        assert engine.logs_since(term, since).strip() == "tty-line"
        # Nothing since a time after the container wrote.
        assert engine.logs_since(plain, datetime.now(UTC) + timedelta(seconds=2)) == ""
    finally:
        engine.close()


def test_an_unknown_container_is_a_one_line_driver_error() -> None:
    require_docker()
    engine = DockerEngine("unix:///var/run/docker.sock")
    with pytest.raises(DriverError, match=r"^docker logs: not found: No such container"):
        engine.logs_since("afasa-no-such-container", datetime.now(UTC))


def test_the_driver_does_not_import_the_docker_sdk() -> None:
    require_docker()
    code = (
        "from afasa_ops.infra.docker import DockerEngine\n"
        "engine = DockerEngine('unix:///var/run/docker.sock')\n"
        "engine.facts(); engine.services_with_containers('afasa-none')\n"
    )
    assert imported_by(code, ("docker", "requests", "pygments"))[0] == []


def test_project_containers_are_inspected_without_one_off_runs(project: str) -> None:
    """What the health and up-to-date checks read: every container of the project (exited
    ones too), inspected, but not a `compose run` container of the same service."""
    web = start(project, "web", "sleep 30")
    done = start(project, "job", "true")
    start(project, "web", "true", oneoff=True)
    wait_exited(done)
    engine = DockerEngine("unix:///var/run/docker.sock")
    try:
        found = {
            c["Config"]["Labels"]["com.docker.compose.service"]: c
            for c in engine.project_containers(project)
        }
        assert len(engine.project_containers(project)) == 2
        assert set(found) == {"web", "job"}
        assert found["web"]["Id"] == web and found["web"]["State"]["Status"] == "running"
        assert found["job"]["Id"] == done and found["job"]["State"]["ExitCode"] == 0
        assert engine.project_containers(f"{project}-none") == []
    finally:
        engine.close()


def test_image_ids_are_the_cli_s_and_none_when_one_is_absent() -> None:
    require_docker()
    require_images(BASE_IMAGE)
    engine = DockerEngine("unix:///var/run/docker.sock")
    expected = docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE)
    assert engine.image_ids([BASE_IMAGE, BASE_IMAGE]) == [expected, expected]
    assert engine.image_ids([]) == []
    absent = f"afasa-local/never-built-{uuid.uuid4().hex[:8]}:1"
    assert engine.image_ids([BASE_IMAGE, absent]) is None
    # A name with a registry port and a path, as Compose files write them.
    assert engine.image_ids([f"127.0.0.1:5999/team/{absent.split('/')[1]}"]) is None


def test_project_listing_is_one_list_of_each_services_newest_container(project: str) -> None:
    """What compose.up's check reads: state and labels from the list alone, one-off runs left
    out, and of two containers of a service the newer."""
    start(project, "web", "sleep 30")
    done = start(project, "job", "true")
    time.sleep(1.1)  # the list's creation times are whole seconds
    newer = start(project, "web", "sleep 30")
    start(project, "job", "sleep 30", oneoff=True)
    wait_exited(done)
    engine = DockerEngine("unix:///var/run/docker.sock")
    try:
        listed = engine.project_listing(project)
        assert set(listed) == {"web", "job"}
        assert listed["web"]["Id"] == newer and listed["web"]["State"] == "running"
        assert listed["job"]["Id"] == done and listed["job"]["State"] == "exited"
        assert listed["web"]["Labels"]["com.docker.compose.service"] == "web"
        assert engine.project_listing(f"{project}-none") == {}
    finally:
        engine.close()
