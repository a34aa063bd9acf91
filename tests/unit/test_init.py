"""`afasa-ops init` derives names exactly as Compose does and never overwrites by accident."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from afasa_ops.compose.project import load_project, normalize_project_name
from afasa_ops.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def init(repo: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "afasa_ops", "init", str(repo), "--output", str(out), *extra],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_init_writes_a_valid_config_describing_the_checkout(
    afasa_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "afasa-ops.toml"
    proc = init(afasa_repo, out)
    assert proc.returncode == 0, proc.stderr
    doc = tomllib.loads(out.read_text())
    assert doc["compose"]["project_name"] == "afasa-main"
    assert doc["compose"]["networks"] == ["afasa-main_afasa_net"]
    assert doc["compose"]["init_sql_dir"] == "infra/postgres/init"
    assert doc["compose"]["traefik_service"] == "traefik"
    services = {s["name"]: s for s in doc["services"]}
    assert services["report"]["routes"] == ["/api/report"]
    assert services["tb-adapter"]["routes"] == [
        "/api/tb",
        "/api/devices",
        "/api/integrations",
        "/api/discovery",
    ]
    assert services["report"]["health"] == "/readyz"
    settings = load_settings(out, environ={})
    assert settings.repo_path == afasa_repo.resolve()


def test_init_never_overwrites_without_force(afasa_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "afasa-ops.toml"
    out.write_text("# mine\n")
    proc = init(afasa_repo, out)
    assert proc.returncode == 2
    assert "--force" in proc.stderr
    assert out.read_text() == "# mine\n"
    assert init(afasa_repo, out, "--force").returncode == 0
    assert "afasa-main" in out.read_text()


def test_project_name_precedence(afasa_repo: Path) -> None:
    assert load_project(afasa_repo, environ={}).name == "afasa-main"
    compose = afasa_repo / "docker-compose.yml"
    compose.write_text('name: "AFASA 2.0"\n' + compose.read_text())
    project = load_project(afasa_repo, environ={})
    assert (project.name, project.name_source) == ("afasa20", "top-level name:")
    (afasa_repo / ".env").write_text("COMPOSE_PROJECT_NAME=afasa2\n")
    project = load_project(afasa_repo, environ={})
    assert project.name == "afasa2"
    assert project.network_names()["afasa_net"] == "afasa2_afasa_net"
    assert load_project(afasa_repo, environ={}, project_name="ops").name == "ops"


def test_directory_name_normalisation() -> None:
    assert normalize_project_name("afasa2.0") == "afasa20"
    assert normalize_project_name("Afasa-main") == "afasa-main"
    assert normalize_project_name("_-My Stack!") == "mystack"


def test_env_interpolation_and_override_files(afasa_repo: Path) -> None:
    (afasa_repo / ".env").write_text("POSTGRES_USER=farmer\n")
    (afasa_repo / "docker-compose.override.yml").write_text(
        "services:\n  report:\n    environment:\n      - EXTRA=1\n"
    )
    project = load_project(
        afasa_repo, ["docker-compose.yml", "docker-compose.override.yml"], environ={}
    )
    report_env = project.services["report"]["environment"]
    assert any(e.startswith("DATABASE_URL=postgresql://farmer:") for e in report_env)
    assert "EXTRA=1" in report_env
    assert "NATS_URL=nats://nats:4222" in report_env


def test_init_writes_traefiks_published_ports(afasa_repo: Path, tmp_path: Path) -> None:
    compose = afasa_repo / "docker-compose.yml"
    text = compose.read_text()
    assert '      - "80:80"\n      - "8081:8080"' in text
    compose.write_text(
        text.replace('"80:80"', '"${WEB_PORT:-80}:80"').replace(
            '"8081:8080"', '"127.0.0.1:${API_PORT:-8081}:8080"'
        )
    )
    (afasa_repo / ".env").write_text("WEB_PORT=18090\nAPI_PORT=18091\n")
    out = tmp_path / "afasa-ops.toml"
    proc = init(afasa_repo, out)
    assert proc.returncode == 0, proc.stderr
    assert "Traefik: entrypoint http://127.0.0.1:18090, API http://127.0.0.1:18091" in proc.stderr
    settings = load_settings(out, environ={})
    assert settings.traefik.entrypoint_url == "http://127.0.0.1:18090"
    assert settings.traefik.api_url == "http://127.0.0.1:18091"
    assert settings.checks.base_url == "http://127.0.0.1:18090"
    assert "# ports '127.0.0.1:18091:8080' of traefik in docker-compose.yml" in out.read_text()


def test_init_says_what_to_add_when_the_api_is_not_published(
    afasa_repo: Path, tmp_path: Path
) -> None:
    compose = afasa_repo / "docker-compose.yml"
    compose.write_text(compose.read_text().replace('      - "8081:8080"   # dashboard / API\n', ""))
    out = tmp_path / "afasa-ops.toml"
    proc = init(afasa_repo, out)
    assert proc.returncode == 0, proc.stderr
    settings = load_settings(out, environ={})
    assert settings.traefik.entrypoint_url == "http://127.0.0.1:80"
    assert settings.traefik.api_url is None  # derived at run time (the container may say)
    text = out.read_text()
    assert "# api_url: container port 8080 is not published in docker-compose.yml;" in text
    assert 'add ports: ["127.0.0.1:8081:8080"] under the traefik service' in text


def test_defaults_leave_the_traefik_urls_unset(tmp_path: Path) -> None:
    (tmp_path / "afasa-ops.toml").write_text('[repo]\npath = "."\n')
    settings = load_settings(tmp_path / "afasa-ops.toml", environ={})
    assert settings.traefik.api_url is None and settings.traefik.entrypoint_url is None
