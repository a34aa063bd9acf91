"""Phase 1 against the real Docker engine and the real Traefik binaries (traefik:v3.6.0 and
traefik:v3.6.7, built locally from the official release binaries).

The engine here is older than Docker 29, so the tests put the Docker-29 version gate
(tests/support/docker29_gate.py: the real engine behind Docker 29.1's API floor of 1.44) in
front of it, for afasa-ops and for Traefik alike. Under CI=true a missing engine, image or
gate fails the test instead of skipping it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from afasa_ops.commands.plan import plan
from afasa_ops.commands.run import run
from afasa_ops.config import load_settings
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.runner import Selection
from tests.conftest import git, make_git_repo
from tests.support import docker_fixtures as dx
from tests.support.services import free_port, unavailable

ROOT = Path(__file__).resolve().parents[2]
BROKEN = "traefik:v3.6.0"
FIXED = "traefik:v3.6.7"
BACKEND = "afasa-local/debian-python:bookworm"
SOCKET = "/var/run/docker.sock"

pytestmark = pytest.mark.docker

BACKEND_CODE = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'report ok')\n"
    "h.HTTPServer(('', 8000), H).serve_forever()\n"
)


def compose_text(
    web: int, api: int, gate: Path, image: str = "traefik:latest", project: str = "afasa"
) -> str:
    """The contract's shape: banners, comments, DOCKER_API_VERSION hack, wrong network; and a
    constraint to the project's own containers, since other tests' stacks share the engine."""
    code = BACKEND_CODE.replace("\n", "\\n").replace('"', '\\"')
    return f"""\
# =============================================================================
#  AFASA 2.0 - docker-compose.yml (test stack)
# =============================================================================

services:
  # ---------------------------------------------------------------------------
  #  Edge: reverse proxy
  # ---------------------------------------------------------------------------
  traefik:
    image: {image}
    environment:
      - DOCKER_API_VERSION=1.45   # workaround for Docker 29 (does not work)
    command:
      - "--providers.docker=true"
      - "--providers.docker.exposedbydefault=false"
      - "--providers.docker.network=afasa2_afasa_net"
      - "--providers.docker.constraints=Label(`com.docker.compose.project`,`{project}`)"
      - "--api.insecure=true"
      - "--entrypoints.web.address=:80"
      - "--log.level=INFO"
    ports:
      - "127.0.0.1:{web}:80"
      - "127.0.0.1:{api}:8080"   # dashboard / API
    volumes:
      - {gate}:/var/run/docker.sock:ro
    networks:
      - afasa_net

  # ---------------------------------------------------------------------------
  #  Application services (routed by labels)
  # ---------------------------------------------------------------------------
  report:
    image: {BACKEND}
    command: ["python3", "-c", "{code}"]
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.report.rule=PathPrefix(`/api/report`)"
      - "traefik.http.services.report.loadbalancer.server.port=8000"
    networks:
      - afasa_net

networks:
  afasa_net:
    driver: bridge
"""


def _gate_module() -> ModuleType:
    try:
        return importlib.import_module("tests.support.docker29_gate")
    except ImportError:
        path = os.environ.get("AFASA_TEST_DOCKER29_GATE")
        if not path:
            unavailable("tests/support/docker29_gate.py (the Docker-29 version gate) is missing")
        spec = importlib.util.spec_from_file_location("docker29_gate", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["docker29_gate"] = module
        spec.loader.exec_module(module)
        return module


def _require_engine_and_images() -> None:
    if not Path(SOCKET).exists():
        unavailable(f"no Docker engine socket at {SOCKET}")
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        unavailable(f"docker info failed: {probe.stderr.strip()[-200:]}")
    for image in (BROKEN, FIXED, BACKEND):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            unavailable(f"local image {image} missing; run compose/images/build.sh")


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    _require_engine_and_images()
    module = _gate_module()
    listen = tmp_path / "docker29.sock"
    server = module.Docker29Gate(str(listen), SOCKET)
    server.start()
    os.chmod(listen, 0o666)
    yield listen
    server.stop()


class Stack:
    def __init__(self, tmp_path: Path, gate: Path, image: str, ops_compose: str) -> None:
        self.web, self.api = free_port(), free_port()
        self.name = f"afasa-p1-{secrets.token_hex(3)}"
        src = tmp_path / "src"
        src.mkdir()
        (src / "docker-compose.yml").write_text(
            compose_text(self.web, self.api, gate, image, self.name)
        )
        self.repo = make_git_repo(src, tmp_path / self.name)
        git(self.repo, "tag", "pre-audit-2026-11-28")
        self.gate = gate
        self.config = tmp_path / "afasa-ops.toml"
        self.config.write_text(
            f'[repo]\npath = "{self.repo}"\n'
            f'[runbook]\npath = "{ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"}"\n'
            f'[docker]\nhost = "unix://{gate}"\n'
            f'[traefik]\napi_url = "http://127.0.0.1:{self.api}"\n'
            f'entrypoint_url = "http://127.0.0.1:{self.web}"\nwait_s = 60\n'
            f'[compose]\ncommand = "{ops_compose}"\n'
        )
        self.ops_compose = ops_compose

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        # The test's own Compose talks to the real engine, not through the gate.
        return subprocess.run(
            ["docker-compose", "-p", self.name, *args],
            cwd=self.repo,
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"},
        )

    def traefik_image(self) -> str:
        """The image of the project's Traefik container, whichever Compose named it."""
        found = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.name}",
             "--filter", "label=com.docker.compose.service=traefik"],
            capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        assert len(found) == 1, found
        return subprocess.run(
            ["docker", "inspect", "-f", "{{.Name}} {{.Config.Image}}", found[0]],
            capture_output=True,
            text=True,
        ).stdout.strip()

    def context(self, **opts: Any) -> Context:
        return Context(settings=load_settings(self.config), options=Options(**opts))

    def book(self) -> Any:
        return load_runbook(ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml")


@pytest.fixture
def broken_stack(request: pytest.FixtureRequest, tmp_path: Path, gate: Path) -> Iterator[Stack]:
    """Started by Compose v1 (the test's own); repaired with the Compose the test names
    (indirect parameter `v1` or `v2`, default v1)."""
    ops = dx.require_compose(getattr(request, "param", "v1"))
    stack = Stack(tmp_path, gate, BROKEN, ops)
    up = stack.compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", "-t", "2")


def statuses(result: Any) -> dict[str, str]:
    return {s.id: s.status.value for s in result.steps}


@pytest.mark.parametrize("broken_stack", ["v1", "v2"], indirect=True)
def test_phase1_repairs_routing_on_docker_29(broken_stack: Stack) -> None:
    stack = broken_stack
    book = stack.book()
    planned = plan(book, stack.context(), Selection(["phase1"]))
    codes = {f.code for s in planned.steps for f in s.findings}
    assert {
        "traefik.incompatible",
        "traefik.docker_api_version_env",
        "traefik.network_mismatch",
    } <= codes
    engine = next(f for s in planned.steps for f in s.findings if f.code == "docker.engine")
    assert engine.data["min_api_version"] == "1.44"
    provider = next(s for s in planned.steps if s.id == "phase1.traefik.provider")
    assert any("is too old" in f.message for f in provider.findings)
    pin = next(s for s in planned.steps if s.id == "phase1.traefik.pin")
    assert pin.diff and f"+    image: {FIXED}" in pin.diff
    assert f'+      - "--providers.docker.network={stack.name}_afasa_net"' in pin.diff
    assert git(stack.repo, "status", "--porcelain") == ""

    result = run(book, stack.context(yes=True), Selection(["phase1"]))
    assert result.status == "ok", (result.message, [(s.id, s.summary) for s in result.steps])
    assert statuses(result) == {
        "phase1.engine": "ok",
        "phase1.traefik.pin": "changed",
        "phase1.traefik.recreate": "changed",
        "phase1.traefik.provider": "ok",
        "phase1.traefik.routing": "ok",
    }
    # The provider was judged on proof, not on a quiet log alone: Traefik's API listed the
    # router only the docker provider could have built (which also ends the wait early).
    provider = next(s for s in result.steps if s.id == "phase1.traefik.provider")
    assert "docker provider connected: 1 @docker router listed" in provider.summary, provider
    assert git(stack.repo, "log", "-1", "--format=%s") == (
        "chore(compose): pin traefik + fix network discovery"
    )
    changed = [
        ln
        for ln in git(stack.repo, "show", "--format=", "HEAD").splitlines()
        if ln[:1] in "+-" and ln[:3] not in ("+++", "---")
    ]
    assert changed == [
        f"-    image: {BROKEN}",
        "-    environment:",
        "-      - DOCKER_API_VERSION=1.45   # workaround for Docker 29 (does not work)",
        f"+    image: {FIXED}",
        '-      - "--providers.docker.network=afasa2_afasa_net"',
        f'+      - "--providers.docker.network={stack.name}_afasa_net"',
    ]
    # Recreated by the repairing Compose: v2 names it <project>-traefik-1, v1 <project>_..._1.
    sep = "_" if stack.ops_compose == dx.COMPOSE_COMMANDS["v1"] else "-"
    assert stack.traefik_image() == f"/{stack.name}{sep}traefik{sep}1 {FIXED}"
    body = urllib.request.urlopen(f"http://127.0.0.1:{stack.web}/api/report/x", timeout=5).read()
    assert body == b"report ok"

    again = run(book, stack.context(yes=True), Selection(["phase1"]))
    assert again.status == "ok"
    assert set(statuses(again).values()) == {"ok"}

    # Rollback returns to the tagged state and recreates only the service that changed.
    from afasa_ops.commands.rollback import rollback

    back = rollback(stack.context())
    assert back.tag == "pre-audit-2026-11-28" and back.found_by == "tag pattern"
    assert back.services_changed == ["traefik"] and back.recreated == ["traefik"]
    assert stack.traefik_image() == f"/{stack.name}{sep}traefik{sep}1 {BROKEN}"


def test_only_judges_the_provider_as_a_full_plan_does(broken_stack: Stack) -> None:
    """The provider's check asks itself whether the compose fix and the recreate are still to
    come; it used to read what those steps' checks left behind, so `--only` judged the broken
    stack as "the pin did not clear the failure" (blocked) before any pin was made."""
    stack = broken_stack
    full = plan(stack.book(), stack.context(), Selection(["phase1"]))
    only = plan(stack.book(), stack.context(), Selection(only_step="phase1.traefik.provider"))
    in_full = next(s for s in full.steps if s.id == "phase1.traefik.provider")
    [alone] = only.steps
    assert in_full.status.value == "pending", in_full.summary
    assert (alone.status, alone.summary) == (in_full.status, in_full.summary)


def test_pin_that_does_not_clear_the_failure_is_blocked_with_remedies(
    broken_stack: Stack,
) -> None:
    stack = broken_stack
    book = stack.book()
    for step in book.phase("phase1").steps:
        if step.kind in ("traefik.compose", "traefik.provider"):
            step.params.target_image = BROKEN  # type: ignore[attr-defined]
    result = run(book, stack.context(yes=True), Selection(["phase1"]))
    assert result.status == "blocked"
    provider = result.steps[-1]
    assert provider.id == "phase1.traefik.provider"
    assert "--allow-daemon-config" in provider.summary
    assert "--allow-engine-downgrade" in provider.summary
    remedies = {f.code: f.message for f in provider.findings}
    assert "min-api-version" in remedies["docker.remedy_daemon_config"]
    downgrade = remedies["docker.remedy_engine_downgrade"]
    osr = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    distro = osr["ID"].strip('"')
    codename = osr.get("VERSION_CODENAME", "").strip('"')
    if distro in ("debian", "ubuntu"):
        version = f"5:28.5.2-1~{distro}.{osr['VERSION_ID'].strip(chr(34))}~{codename}"
        assert f"docker-ce={version}" in downgrade
        assert f"docker-ce-cli={version}" in downgrade
        assert "--allow-downgrades" in downgrade
        assert "apt-mark hold docker-ce docker-ce-cli containerd.io" in downgrade
        assert "/etc/apt/preferences.d/docker-pin" in downgrade


def test_no_engine_is_blocked_with_one_line(tmp_path: Path) -> None:
    repo = make_git_repo(ROOT / "examples" / "afasa", tmp_path / "Afasa-main")
    config = tmp_path / "afasa-ops.toml"
    config.write_text(
        f'[repo]\npath = "{repo}"\n[docker]\nhost = "unix://{tmp_path}/no-such.sock"\n'
        f'[runbook]\npath = "{ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"}"\n'
    )
    ctx = Context(settings=load_settings(config))
    result = plan(
        load_runbook(ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"), ctx, Selection(["phase1"])
    )
    engine = result.steps[0]
    assert engine.status.value == "blocked"
    assert (
        engine.summary
        == f"Docker engine at unix://{tmp_path}/no-such.sock: socket {tmp_path}/no-such.sock is missing (is dockerd running?)"
    )
    # The compose analysis still runs without an engine, and says what it could not judge.
    pin = result.steps[1]
    assert "traefik.engine_unknown" in {f.code for f in pin.findings}


def test_engine_downgrade_runs_for_real_and_stops_where_apt_does_not_offer_28_5_2(
    broken_stack: Stack,
) -> None:
    # Fallback B with its flag and --yes, on this real host: apt's index is refreshed and asked
    # for docker-ce 28.5.2; Debian's own sources do not carry it (Docker's repository does),
    # so the step fails saying so, before anything is installed, held or pinned.
    from afasa_ops.traefik.fallback import PIN_FILE

    if Path(PIN_FILE).exists():
        pytest.fail(f"{PIN_FILE} exists before the test: this host was downgraded by hand")
    stack = broken_stack
    book = stack.book()
    for step in book.phase("phase1").steps:
        if step.kind in ("traefik.compose", "traefik.provider"):
            step.params.target_image = BROKEN  # type: ignore[attr-defined]
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "docker.io"], capture_output=True, text=True
    ).stdout
    result = run(book, stack.context(yes=True, allow_engine_downgrade=True), Selection(["phase1"]))
    assert result.status == "failed", result.message
    provider = result.steps[-1]
    assert provider.id == "phase1.traefik.provider"
    assert "is not offered by the configured apt sources" in (provider.error or ""), provider
    ran = [c.argv[:2] for c in provider.commands]
    assert ["apt-get", "update"] in ran and ["apt-cache", "madison"] in ran
    assert ["apt-get", "install"] not in ran and ["apt-mark", "hold"] not in ran
    assert not Path(PIN_FILE).exists()
    assert (
        "docker"
        not in subprocess.run(["apt-mark", "showhold"], capture_output=True, text=True).stdout
    )
    assert (
        subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "docker.io"], capture_output=True, text=True
        ).stdout
        == installed
    )
