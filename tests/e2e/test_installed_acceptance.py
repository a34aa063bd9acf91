"""Issue 11's acceptance: afasa-ops installed from its wheel into a new venv, run from outside
the source tree, repairs an AFASA checkout that differs from compose/ as real ones do.

The checkout is the reference stack in a folder named `afasa2.0` (Compose project `afasa20`,
which the broken provider network `afasa2_afasa_net` does not match), its Traefik service
renamed `edge` and published on ports of its own (`${TRAEFIK_WEB_PORT:-18090}:80`, the API
on `127.0.0.1:${TRAEFIK_DASHBOARD_PORT:-18091}:8080`, the values in .env), and a database
volume made by init SQL whose unrelated tables drifted from 0001_baseline.sql. The stack runs
on the real engine behind the Docker 29.1 gate with Compose v2, as Docker 29 hosts run it.
A v2 Traefik checkout is judged at plan level only: no v2 Traefik binary exists offline.

Unlike the other e2e tests' sandboxes, the Compose project's name is fixed (`afasa20`, from the
folder's name, which is the point): two runs of this test at once on one engine would share it.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_git_repo
from tests.e2e.conftest import Stack, sandbox_mod, traefik_routers
from tests.support import docker_fixtures as dx
from tests.support.traefik_checkouts import TRAEFIK_V2_CHECKOUT
from tests.support.wheel import Installed, build_wheel, clean_env, install

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(1500)]

# The checkout as found, beyond the reference stack's own defects (each edit must match once).
RENAMED_AND_REPORTED = (
    ("  traefik:\n    image: ${TRAEFIK_IMAGE", "  edge:\n    image: ${TRAEFIK_IMAGE"),
    ('"${TRAEFIK_HTTP_PORT:-80}:80"', '"${TRAEFIK_WEB_PORT:-18090}:80"'),
    ('"${TRAEFIK_API_PORT:-8081}:8080"', '"127.0.0.1:${TRAEFIK_DASHBOARD_PORT:-18091}:8080"'),
)
# Another AFASA version's init SQL: tables no later migration needs beyond tenant_id differ.
DRIFTED_INIT_SQL = (
    # tasks: title renamed, due_at dropped
    (
        "  title text NOT NULL,\n  status text NOT NULL DEFAULT 'open',\n  due_at timestamptz,\n",
        "  name text NOT NULL,\n  status text NOT NULL DEFAULT 'open',\n",
    ),
    # cameras.rtsp_url retyped
    (
        "  name text NOT NULL,\n  rtsp_url text,\n",
        "  name text NOT NULL,\n  rtsp_url varchar(512),\n",
    ),
    # an extra column and an extra table, as newer versions have
    (
        "  key text NOT NULL,\n  value jsonb\n);\n",
        "  key text NOT NULL,\n  value jsonb,\n  updated_at timestamptz\n);\n\n"
        "CREATE TABLE IF NOT EXISTS vision_models (id uuid PRIMARY KEY, name text);\n",
    ),
)
ADOPTED = {
    "tasks.title (text) is missing",
    "tasks.due_at (timestamp with time zone) is missing",
    "tasks.name (text) is not in the baseline",
    "cameras.rtsp_url is character varying(512), expected text",
    "tenant_settings.updated_at (timestamp with time zone) is not in the baseline",
    "table vision_models is not in the baseline",
}


def edit(path: Path, edits: tuple[tuple[str, str], ...]) -> None:
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
        text = text.replace(old, new)
    path.write_text(text)


def as_found(repo: Path) -> None:
    edit(repo / "docker-compose.yml", RENAMED_AND_REPORTED)
    edit(repo / "infra/postgres/init/001_init.sql", DRIFTED_INIT_SQL)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The operator's install: the wheel alone, no [service] extra, in a venv of its own."""
    wheel, _ = build_wheel(tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist"))
    return install(tmp_path_factory.mktemp("installed"), str(wheel))


@pytest.fixture
def site(
    engine: str, app_image: str, gate: str, installed: Installed, tmp_path: Path
) -> Iterator[Stack]:
    compose = dx.require_compose("v2")
    ports = {p: sandbox_mod.free_port() for p in sandbox_mod.PORTS}
    box = sandbox_mod.create(
        tmp_path / "site", "afasa2.0", docker_socket=gate, app_image=app_image, ports=ports,
        prepare=as_found, compose_command=compose, ops_binary=installed.exe,
        extra_env={"TRAEFIK_WEB_PORT": str(ports["http"]),
                   "TRAEFIK_DASHBOARD_PORT": str(ports["api"])},
    )  # fmt: skip
    try:
        yield Stack(box)
    finally:
        box.down()


def steps_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in doc["steps"]}


def said(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"


def test_the_installed_wheel_repairs_an_afasa2_0_checkout(
    site: Stack, installed: Installed
) -> None:
    box = site.box
    assert box.project == "afasa20"
    web, api = box.url("http"), box.url("api")
    outputs: list[str] = []

    # init (the installed one, from its own home): Traefik's URLs from the renamed service's
    # ports, interpolated from .env. The sandbox's config was written by the same init.
    init = installed.cli("init", str(box.repo), "--output", str(installed.home / "init.toml"))
    assert init.returncode == 0, said(init)
    written = tomllib.loads((installed.home / "init.toml").read_text())
    assert written["traefik"] == {"entrypoint_url": web, "api_url": api}
    assert written["checks"] == {"base_url": web}
    assert written["compose"]["project_name"] == "afasa20"  # the folder's name, as Compose has it
    assert written["compose"]["traefik_service"] == "edge"
    assert tomllib.loads(box.config.read_text())["traefik"] == written["traefik"]
    outputs.append(init.stdout + init.stderr)

    # The stack as found: a database volume made by the drifted init SQL, Traefik refused by
    # the engine's API floor, so every route is Traefik's own 404.
    box.up("postgres", timeout=180)
    box.compose("up", "-d", "--build", "edge", "tb-adapter", "report")
    box.wait_healthy("edge", "tb-adapter", "report", timeout=180)
    assert site.sql("SELECT count(*) FROM information_schema.columns "
                    "WHERE table_name = 'tasks' AND column_name = 'due_at'") == "0"  # fmt: skip
    assert site.get("http", "/api/devices")[0] == 404

    # plan phase1: changes pending (exit 3), the pin proposed, nothing written.
    before = (box.repo / "docker-compose.yml").read_text()
    code, doc = site.ops_json("plan", "phase1")
    assert code == 3, doc["message"]
    pin = steps_of(doc)["phase1.traefik.pin"]
    assert pin["status"] == "pending"
    assert "+    image: traefik:v3.6.7" in pin["diff"]
    assert (box.repo / "docker-compose.yml").read_text() == before
    assert site.git("status", "--porcelain") == ""
    outputs.append(json.dumps(doc))

    # run phase1 --yes: pinned, the project's network, committed, routes verified on the
    # checkout's own ports.
    code, doc = site.ops_json("run", "phase1", "--yes")
    assert code == 0, (doc["message"], [(s["id"], s["status"], s["summary"]) for s in doc["steps"]])
    steps = steps_of(doc)
    assert steps["phase1.traefik.pin"]["status"] == "changed"
    compose = (box.repo / "docker-compose.yml").read_text()
    assert re.search(r"^    image: traefik:v3\.6\.7$", compose, re.M)
    assert '"--providers.docker.network=afasa20_afasa_net"' in compose
    assert "- DOCKER_API_VERSION=" not in compose
    assert site.git("status", "--porcelain") == ""
    assert "afasa20-edge-1" in site.names()
    assert site.image_of("edge") == "traefik:v3.6.7"
    routing = steps["phase1.traefik.routing"]
    assert routing["status"] == "ok", routing["summary"]
    endpoints = next(f for f in routing["findings"] if f["code"] == "traefik.endpoints")
    assert endpoints["data"] == {"entrypoint_url": web, "api_url": api}
    assert "tb-adapter@docker" in {r["name"] for r in traefik_routers(site)}
    status, body = site.get("http", "/api/devices")
    assert status == 401 and body.lstrip().startswith("{"), body  # tb-adapter's own answer
    outputs.append(json.dumps(doc))

    # schema baseline: the drift is adopted and recorded, nothing blocks.
    baseline = site.ops("schema", "baseline")
    assert baseline.returncode == 0, said(baseline)
    outputs.append(baseline.stdout + baseline.stderr)
    adopted = json.loads(
        site.sql("SELECT adopted FROM afasa_ops_schema_migrations WHERE version = 1")
    )
    assert {d["message"] for d in adopted} >= ADOPTED, adopted

    # schema migrate: every shipped migration after the baseline applies.
    shipped = sorted(p.name for p in installed.venv.glob("lib/python*/site-packages/"
                                                          "afasa_ops/data/migrations/*.sql"))  # fmt: skip
    code, doc = site.ops_json("schema", "migrate")
    assert code == 0, doc
    assert doc["applied"] == shipped[1:]
    ledger = site.sql("SELECT string_agg(version::text, ',' ORDER BY version) "
                      "FROM afasa_ops_schema_migrations")  # fmt: skip
    assert ledger == ",".join(str(int(n[:4])) for n in shipped)
    status = site.ops("schema", "status")
    assert status.returncode == 0, said(status)
    assert f"adopted {len(adopted)} difference(s) from the baseline" in status.stdout
    outputs.append(json.dumps(doc) + status.stdout + status.stderr)

    leaked = [v for v in site.secret_values() if any(v in out for out in outputs)]
    assert leaked == []


def test_the_installed_wheel_pins_a_v2_checkout_within_v2(
    gate: str, installed: Installed, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "docker-compose.yml").write_text(TRAEFIK_V2_CHECKOUT)
    repo = make_git_repo(src, tmp_path / "afasa2.0")
    # No [runbook] path: the runbook shipped in the wheel.
    config = installed.home / "v2.toml"
    config.write_text(f'[repo]\npath = "{repo}"\n[docker]\nhost = "unix://{gate}"\n')
    proc = subprocess.run(
        [installed.exe, "--config", str(config), "plan", "phase1", "--json"],
        cwd=installed.home, env=clean_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 3, said(proc)
    pin = steps_of(json.loads(proc.stdout))["phase1.traefik.pin"]
    assert "+    image: traefik:v2.11.31" in pin["diff"]
    assert "v3." not in pin["diff"]
    assert "traefik.pin_in_line" in {f["code"] for f in pin["findings"]}
    assert (repo / "docker-compose.yml").read_text() == TRAEFIK_V2_CHECKOUT
