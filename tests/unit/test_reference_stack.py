"""The reference stack's contracts that need no engine: the compose file's shape (pinned,
overridable images, healthchecks, the before-state defects), the sandbox config writer, and
the UbiBot/ThingsBoard stand-ins as real HTTP servers."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "compose"))
sys.path.insert(0, str(ROOT / "compose" / "stubs"))

import sandbox  # noqa: E402
from standins.thingsboard import ThingsboardDouble  # noqa: E402
from standins.ubibot import UbibotDouble, make_channels  # noqa: E402

COMPOSE = ROOT / "compose" / "docker-compose.yml"


def services() -> dict[str, dict[str, object]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_every_image_is_pinned_and_overridable_and_every_service_has_a_healthcheck() -> None:
    for name, spec in services().items():
        image = str(spec["image"])
        assert re.fullmatch(r"\$\{[A-Z_]+:-[^}:]+:[^}]+\}", image), (name, image)
        assert not image.endswith(":latest}"), (name, image)
        assert "healthcheck" in spec, name


def test_the_before_state_carries_the_incident() -> None:
    traefik = services()["traefik"]
    assert traefik["image"] == "${TRAEFIK_IMAGE:-traefik:v3.6.0}"
    assert traefik["environment"] == ["DOCKER_API_VERSION=1.45"]
    command = list(traefik["command"])  # type: ignore[call-overload]
    assert "--providers.docker.network=afasa2_afasa_net" in command
    assert "--global.checknewversion=false" in command
    assert "--global.sendanonymoususage=false" in command
    assert traefik["volumes"] == ["${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock:ro"]
    assert "name" not in yaml.safe_load(COMPOSE.read_text())  # project from the directory


def test_the_before_state_runs_afasas_stubs_and_no_afasa_ops_service() -> None:
    svc = services()
    assert svc["ubibot"]["profiles"] == ["demo"] and svc["thingsboard"]["profiles"] == ["demo"]
    # afasa-ops' own services arrive with phase 2's override, never in the stack as found.
    assert not {"api", "worker-report", "worker-sync", "worker-commands"} & set(svc)
    assert not any(name.startswith("afasa-ops") for name in svc)


def test_stub_services_are_routed_as_afasa_routes_them() -> None:
    svc = services()
    tb, report = svc["tb-adapter"], svc["report"]
    assert "profiles" not in tb and "profiles" not in report  # started by a plain `up`
    assert tb["command"] == ["python3", "-m", "afasa_stub", "tb-adapter"]
    assert report["command"] == ["python3", "-m", "afasa_stub", "report"]
    labels = {k: v for k, _, v in (str(x).partition("=") for x in tb["labels"])}  # type: ignore[attr-defined]
    assert labels["traefik.http.routers.tb-adapter.rule"] == (
        "PathPrefix(`/api/tb`) || PathPrefix(`/api/devices`) || "
        "PathPrefix(`/api/integrations`) || PathPrefix(`/api/discovery`)"
    )
    assert labels["traefik.http.services.tb-adapter.loadbalancer.server.port"] == "8000"
    labels = {k: v for k, _, v in (str(x).partition("=") for x in report["labels"])}  # type: ignore[attr-defined]
    assert labels["traefik.http.routers.report.rule"] == "PathPrefix(`/api/report`)"
    # The sandbox copies the stubs' build context into its checkout.
    assert "stubs" in sandbox.STACK_FILES
    assert (ROOT / "compose" / "stubs" / "Dockerfile").is_file()


def test_init_sql_has_no_vector_and_the_seed_matches_it() -> None:
    init = ROOT / "compose" / "infra" / "postgres" / "init"
    sql = (init / "001_init.sql").read_text()
    statements = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
    assert "vector" not in statements and "CREATE POLICY" in statements
    assert "contact_email" not in (init / "002_seed.sql").read_text()


def test_sandbox_config_renders_as_valid_toml() -> None:
    doc = {
        "repo": {"path": "afasa-ref"},
        "database": {"admin_dsn": {"env": "AFASA_ADMIN_DSN"}, "lock_timeout_s": 10.0},
        "compose": {"files": ["docker-compose.yml"], "project_name": 'we"ird'},
        "services": [{"name": "api", "routes": ["/api/tb"]}],
    }
    assert tomllib.loads(sandbox.render_toml(doc)) == doc


def test_ubibot_standin_serves_channels_and_errors() -> None:
    with UbibotDouble(host="127.0.0.1", port=0) as ubi:
        ubi.set_channels("k1", make_channels(2))
        with urllib.request.urlopen(f"{ubi.base_url}/channels?account_key=k1") as resp:
            body = json.loads(resp.read())
        assert body["result"] == "success" and len(body["channels"]) == 2
        with urllib.request.urlopen(f"{ubi.base_url}/channels?account_key=nope") as resp:
            assert json.loads(resp.read())["result"] == "error"
        with urllib.request.urlopen(f"{ubi.base_url}/healthz") as resp:
            assert resp.status == 200


def test_thingsboard_standin_logs_in_and_stores_shared_attributes() -> None:
    with ThingsboardDouble(username="u", password="p") as tb:
        tb.add_device("d1")
        login = urllib.request.Request(
            f"{tb.base_url}/api/auth/login",
            data=json.dumps({"username": "u", "password": "p"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.loads(urllib.request.urlopen(login).read())["token"]
        write = urllib.request.Request(
            f"{tb.base_url}/api/plugins/telemetry/DEVICE/d1/attributes/SHARED_SCOPE",
            data=json.dumps({"enabled": False}).encode(),
            headers={"X-Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert urllib.request.urlopen(write).status == 200
        assert tb.attributes["d1"] == {"enabled": False}


def _stub_call(
    base: str, method: str, path: str, body: object = None, auth: bool = True
) -> tuple[int, Any]:
    claims = base64.urlsafe_b64encode(json.dumps({"tenant_id": "t1"}).encode()).decode()
    headers = {"Authorization": f"Bearer h.{claims.rstrip('=')}.s"} if auth else {}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_stub_tb_adapter_reads_ubibot_and_answers_success_for_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from afasa_stub import tb_adapter
    from afasa_stub.common import serve

    with UbibotDouble(host="127.0.0.1", port=0) as ubi:
        ubi.set_channels("k1", make_channels(2))
        # The stub's settings are its environment, as in its container.
        monkeypatch.setenv("UBIBOT_BASE_URL", ubi.base_url)
        monkeypatch.setenv("UBIBOT_ACCOUNT_KEY", "k1")
        server = serve(tb_adapter.routes(), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            for route in ("/api/discovery/ubibot/sync", "/api/tb/integrations/ubibot/sync"):
                assert _stub_call(base, "POST", route) == (
                    200,
                    {"result": "success", "devices_found": 2, "synced": 2},
                )
            assert ubi.requests == ["k1", "k1"]  # it did iterate UbiBot's channels
            status, body = _stub_call(base, "POST", "/api/tb/devices/any-id/disable")
            assert (status, body["result"], body["enabled"]) == (200, "success", False)
            assert _stub_call(base, "POST", "/api/devices/x/enable")[0] == 200
            assert _stub_call(base, "GET", "/api/devices") == (200, {"devices": []})
            assert _stub_call(base, "GET", "/api/devices/x")[0] == 404
            assert _stub_call(base, "GET", "/api/devices", auth=False)[0] == 401
            assert _stub_call(base, "GET", "/api/report/reports")[0] == 404  # not its prefix
        finally:
            server.shutdown()
            server.server_close()


def test_stub_report_renders_in_the_request_and_answers_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from afasa_stub import report
    from afasa_stub.common import serve

    monkeypatch.setenv("REPORT_RENDER_S", "0")
    server = serve(report.routes(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = _stub_call(base, "POST", "/api/report/generate", {"format": "pdf"})
        assert (status, body["status"]) == (200, "ready")
        assert base64.b64decode(body["content_base64"]).startswith(b"%PDF-1.4")
        assert _stub_call(base, "GET", f"/api/report/reports/{body['report_id']}")[0] == 404
        assert _stub_call(base, "POST", "/api/report/generate", {"format": "doc"})[0] == 422
    finally:
        server.shutdown()
        server.server_close()
