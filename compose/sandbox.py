"""Sandboxes of the reference stack: a git repo of compose/ in its "before" state, ready to run.

A sandbox is a folder holding:

    <root>/<name>/          git repo: docker-compose.yml, infra/, .env.example (committed),
                            .env (generated secrets, local images, free ports; git-ignored)
    <root>/afasa-ops.toml   written by `afasa-ops init <repo>` (Traefik's URLs from its
                            published ports), completed with the keys a run needs (published
                            loopback ports, secret references)
    <root>/ops.env          the secret values those references name (AFASA_ADMIN_DSN, ...)
    <root>/sandbox.json     what was chosen (ports, project, socket), for `up`/`down`/tests

Used by scripts/demo.sh (`make demo`), the e2e tests and bench/rerun.py. Standard library
only, plus the `afasa-ops` executable for `init`.

    python compose/sandbox.py create .demo --name afasa-ref --docker-socket .demo/docker29.sock
    python compose/sandbox.py up .demo [--only postgres]
    python compose/sandbox.py down .demo
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STACK_FILES = ("docker-compose.yml", ".env.example", ".gitignore", "infra", "stubs")
TENANT_ID = "00000000-0000-0000-0000-000000000001"
ENGINE_SOCKET = "/var/run/docker.sock"
# Docker 29's API floor; Compose v1 must ask for at least this through the gate.
GATE_API_VERSION = "1.44"

LOCAL_IMAGES = {
    "TRAEFIK_IMAGE": "traefik:v3.6.0",
    "POSTGRES_IMAGE": "afasa-local/postgres:15-bookworm",
    "NATS_IMAGE": "afasa-local/nats:2.10.26",
    "SEAWEEDFS_IMAGE": "afasa-local/seaweedfs:4.48",
    "APP_BASE_IMAGE": "afasa-local/debian-python:bookworm",
}
PORTS = ("http", "api", "postgres", "nats", "s3")
WHEELS = ROOT / "build" / "wheels"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_image_tag() -> str:
    """The tag compose/images/build.sh gives the app image for this source tree."""
    if env := os.environ.get("AFASA_APP_IMAGE"):
        return env
    rev = _git_out(ROOT, "rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = "-dirty" if _git_out(ROOT, "status", "--porcelain") else ""
    return f"afasa-local/afasa-ops-app:git-{rev}{dirty}"


def ensure_app_image() -> str:
    """The app image of this source tree (the stand-ins run it), built when absent or when the
    tree is dirty; returns its tag. Raises RuntimeError with the build's last lines."""
    tag = app_image_tag()
    present = subprocess.run(["docker", "image", "inspect", tag], capture_output=True)
    if present.returncode != 0 or tag.endswith("-dirty"):
        proc = subprocess.run(
            ["bash", str(ROOT / "compose/images/build.sh"), "--only", "app"],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"building the app image failed: {proc.stderr.strip()[-1500:]}")
    return tag


def _git_out(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


@dataclass
class Sandbox:
    root: Path
    name: str
    ports: dict[str, int]
    docker_socket: str = ENGINE_SOCKET
    app_image: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    # The Compose CLI of the stack's own calls (`docker compose` or `docker-compose`) and of
    # afasa-ops' `[compose] command`; "" picks v2 when installed, else v1, for both.
    compose_command: str = ""
    ops_compose_command: str = ""
    # The afasa-ops executable (e.g. of a venv the wheel was installed into); "" is this
    # tree's .venv, else the one on PATH.
    ops_binary: str = ""
    # Extra .env lines, for a checkout whose compose file reads variables of its own.
    extra_env: dict[str, str] = field(default_factory=dict)

    # -- paths and names ------------------------------------------------------------------

    @property
    def repo(self) -> Path:
        return self.root / self.name

    @property
    def config(self) -> Path:
        return self.root / "afasa-ops.toml"

    @property
    def project(self) -> str:
        """Compose's project name: the directory name, normalised as Compose does."""
        keep = "".join(c for c in self.name.lower() if c.isalnum() or c in "_-")
        return keep.lstrip("_-")

    @property
    def gated(self) -> bool:
        return self.docker_socket != ENGINE_SOCKET

    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    # -- environments ---------------------------------------------------------------------

    def ops_env(self) -> dict[str, str]:
        """Secret values the config references, plus what the operator's shell needs."""
        pg = self.ports["postgres"]
        s = self.secrets
        env = {
            "AFASA_ADMIN_DSN": f"postgresql://afasa:{s['POSTGRES_PASSWORD']}@127.0.0.1:{pg}/afasa",
            "AFASA_APP_DSN": (
                f"postgresql://afasa_app:{s['AFASA_APP_PASSWORD']}@127.0.0.1:{pg}/afasa"
            ),
            "AFASA_APP_PASSWORD": s["AFASA_APP_PASSWORD"],
            "AFASA_S3_ACCESS_KEY": s["S3_ACCESS_KEY"],
            "AFASA_S3_SECRET_KEY": s["S3_SECRET_KEY"],
            "AFASA_DEV_JWT_SECRET": s["AFASA_DEV_JWT_SECRET"],
            "AFASA_MASTER_KEY_BASE64": s["AFASA_MASTER_KEY_BASE64"],
        }
        if self.gated:
            # The operator's tools speak Docker 29's API through the gate: Compose v1 and the
            # docker CLI (20.10 here) ask for the floor instead of their own older default.
            env["COMPOSE_API_VERSION"] = GATE_API_VERSION
            env["DOCKER_API_VERSION"] = GATE_API_VERSION
        return env

    def compose_env(self) -> dict[str, str]:
        """The stack's .env: secrets, local images, free ports, the stand-ins."""
        env = {
            **self.secrets,
            "POSTGRES_USER": "afasa",
            "POSTGRES_DB": "afasa",
            "AFASA_APP_ROLE": "afasa_app",
            "S3_BUCKET": "afasa-reports",
            "TRAEFIK_HTTP_PORT": str(self.ports["http"]),
            "TRAEFIK_API_PORT": str(self.ports["api"]),
            "POSTGRES_PUBLISHED_PORT": str(self.ports["postgres"]),
            "NATS_PUBLISHED_PORT": str(self.ports["nats"]),
            "S3_PUBLISHED_PORT": str(self.ports["s3"]),
            "DOCKER_SOCKET": str(Path(self.docker_socket).resolve()),
            **LOCAL_IMAGES,
            "AFASA_APP_IMAGE": self.app_image,
            # afasa-ops' adopted services (phase 2's override): built on the local base,
            # verifying the development tokens phase 4 mints (there is no Keycloak).
            "AFASA_OPS_BASE_IMAGE": LOCAL_IMAGES["APP_BASE_IMAGE"],
            "AFASA_OPS_API_ENVIRONMENT": "development",
            "AFASA_OPS_API_DEV_HS256_SECRET": self.secrets["AFASA_DEV_JWT_SECRET"],
            "COMPOSE_PROFILES": "demo",
            # Its Traefik routes only its own containers (other sandboxes share the engine).
            "AFASA_STACK": self.project,
            "UBIBOT_BASE_URL": "http://ubibot:8080",
            "UBIBOT_TENANT_ID": TENANT_ID,
            "UBIBOT_SYNC_INTERVAL_S": "60",
            "TB_BASE_URL": "http://thingsboard:8080",
            "TB_USERNAME": "tenant@thingsboard.org",
            **self.extra_env,
        }
        return env

    def process_env(self) -> dict[str, str]:
        """os.environ plus ops.env: what afasa-ops runs with (Docker through the gate, if any)."""
        env = _clean_environ()
        env.update(self.ops_env())
        env["DOCKER_HOST"] = f"unix://{Path(self.docker_socket).resolve()}"
        return env

    def harness_env(self) -> dict[str, str]:
        """What this helper's own compose and docker calls use: the engine itself."""
        env = _clean_environ()
        env["DOCKER_HOST"] = f"unix://{ENGINE_SOCKET}"
        return env

    # -- compose --------------------------------------------------------------------------

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binary = self.compose_command.split() if self.compose_command else compose_binary()
        argv = [*binary, *args]
        proc = subprocess.run(
            argv,
            cwd=self.repo,
            env=self.harness_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-800:]}"
            )
        return proc

    def up(self, *services: str, timeout: float = 240) -> None:
        """Start services (all by default) and wait until every started one is healthy."""
        self.compose("up", "-d", *services)
        self.wait_healthy(*services, timeout=timeout)

    def wait_healthy(self, *services: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.health()
            wanted = {s: states.get(s, "missing") for s in services} if services else states
            if wanted and all(v == "healthy" for v in wanted.values()):
                return
            time.sleep(2)
        raise RuntimeError(f"{self.project}: not healthy after {timeout:.0f}s: {states}")

    def health(self) -> dict[str, str]:
        """service -> health (or state when the service has no healthcheck)."""
        # -a: Compose v2's `ps` lists running containers only, v1's all of them.
        ids = self.compose("ps", "-a", "-q").stdout.split()
        if not ids:
            return {}
        fmt = (
            '{{index .Config.Labels "com.docker.compose.service"}} '
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
        )
        out = subprocess.run(
            ["docker", "inspect", "-f", fmt, *ids],
            capture_output=True,
            text=True,
            env=self.harness_env(),
        ).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def down(self) -> None:
        """Remove the stack's containers, networks and volumes (the repo stays)."""
        if self.repo.exists():
            self.compose("down", "-v", "--remove-orphans", "-t", "3", check=False)

    # -- the afasa-ops side ---------------------------------------------------------------

    def ops(
        self,
        *args: str,
        timeout: float = 900,
        check: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """afasa-ops with this sandbox's config and environment (plus `env`)."""
        proc = subprocess.run(
            [self.ops_executable(), "--config", str(self.config), *args],
            cwd=self.root,
            env={**self.process_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"afasa-ops {' '.join(args)} exited {proc.returncode}")
        return proc

    def ops_executable(self) -> str:
        return self.ops_binary or afasa_ops_binary()

    def save(self) -> None:
        doc = asdict(self)
        doc["root"] = str(self.root)
        _write_private(self.root / "sandbox.json", json.dumps(doc, indent=2) + "\n")
        _write_private(self.root / "ops.env", _env_lines(self.ops_env()))

    @classmethod
    def load(cls, root: Path) -> Sandbox:
        doc = json.loads((root / "sandbox.json").read_text())
        doc["root"] = Path(doc["root"])
        return cls(**doc)


def compose_binary() -> list[str]:
    """Compose v2 when the docker CLI has it, else v1 (the only one this machine kind has)."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def afasa_ops_binary() -> str:
    venv = ROOT / ".venv" / "bin" / "afasa-ops"
    return str(venv) if venv.exists() else (shutil.which("afasa-ops") or "afasa-ops")


def _clean_environ() -> dict[str, str]:
    # PYTHON*, VIRTUAL_ENV: an installed afasa-ops must not find this tree's package.
    drop = ("AFASA_OPS_", "COMPOSE_", "DOCKER_", "PYTHON", "VIRTUAL_ENV")
    # DOCKER_CONFIG stays: it is where the docker CLI finds its plugins (Compose v2).
    keep = ("DOCKER_CONFIG",)
    return {k: v for k, v in os.environ.items() if k in keep or not k.startswith(drop)}


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def _env_lines(env: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in env.items())


def ensure_build_context() -> None:
    """build/wheels: the app image (the stand-ins) installs from it, and it is the sandbox's
    [adopt] wheelhouse, so phase 2 builds afasa-ops' services without downloading."""
    proc = subprocess.run(["bash", str(HERE / "app" / "wheels.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        said = proc.stderr.strip().splitlines() or [f"wheels.sh exited {proc.returncode}"]
        raise RuntimeError(said[-1])


def _token(n: int = 18) -> str:
    return secrets.token_urlsafe(n).replace("-", "x").replace("_", "y")


def create(
    root: Path,
    name: str,
    *,
    docker_socket: str = ENGINE_SOCKET,
    app_image: str | None = None,
    ports: dict[str, int] | None = None,
    prepare: Callable[[Path], None] | None = None,
    compose_command: str = "",
    ops_compose_command: str | None = None,
    ops_binary: str = "",
    extra_env: dict[str, str] | None = None,
) -> Sandbox:
    """A fresh sandbox: the stack committed as found, .env, afasa-ops.toml and ops.env.
    `prepare(repo)` may change the stack's files before the first commit (tests use it).
    `compose_command` runs the stack's own Compose calls, `ops_compose_command` (default: the
    same) is afasa-ops' `[compose] command`: a stack started by one Compose, repaired by
    the other. `ops_binary` is the afasa-ops to run (init included); `extra_env` adds .env
    lines."""
    root = root.resolve()
    box = Sandbox(
        root=root,
        name=name,
        ports=ports or {p: free_port() for p in PORTS},
        docker_socket=docker_socket,
        app_image=app_image or app_image_tag(),
        compose_command=compose_command,
        ops_compose_command=compose_command if ops_compose_command is None else ops_compose_command,
        ops_binary=ops_binary,
        extra_env=dict(extra_env or {}),
        secrets={
            "POSTGRES_PASSWORD": _token(),
            "AFASA_APP_PASSWORD": _token(),
            # Not "afasa": every sink redacts secret values, and that word is everywhere.
            "S3_ACCESS_KEY": "ak" + _token(8),
            "S3_SECRET_KEY": _token(),
            "AFASA_MASTER_KEY_BASE64": base64.b64encode(secrets.token_bytes(32)).decode(),
            "AFASA_DEV_JWT_SECRET": _token(32),
            "UBIBOT_ACCOUNT_KEY": _token(12),
            "TB_PASSWORD": _token(),
        },
    )
    if box.repo.exists():
        raise FileExistsError(f"{box.repo} exists; remove the sandbox first (down --purge)")
    root.mkdir(parents=True, exist_ok=True)
    box.repo.mkdir()
    for item in STACK_FILES:
        src = HERE / item
        if src.is_dir():
            shutil.copytree(
                src, box.repo / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(src, box.repo / item)
    if prepare is not None:
        prepare(box.repo)
    ensure_build_context()
    git = ["git", "-C", str(box.repo), "-c", "user.email=ops@example.org", "-c", "user.name=AFASA"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "AFASA as found"], check=True)
    _write_private(box.repo / ".env", _env_lines(box.compose_env()))
    write_config(box)
    box.save()
    return box


def write_config(box: Sandbox) -> None:
    """`afasa-ops init` for the repo and compose keys, then the keys a run needs."""
    subprocess.run(
        [box.ops_executable(), "init", str(box.repo), "--output", str(box.config), "--force"],
        check=True,
        capture_output=True,
        cwd=box.root,
        env=box.process_env(),
    )
    doc = tomllib.loads(box.config.read_text())
    wanted: dict[str, dict[str, Any]] = {
        "docker": {"host": f"unix://{Path(box.docker_socket).resolve()}"},
        "database": {
            "admin_dsn": {"env": "AFASA_ADMIN_DSN"},
            "app_dsn": {"env": "AFASA_APP_DSN"},
            "app_role": "afasa_app",
            "app_password": {"env": "AFASA_APP_PASSWORD"},
        },
        "nats": {"url": f"nats://127.0.0.1:{box.ports['nats']}"},
        "storage": {
            "url": "s3://afasa-reports",
            "endpoint": box.url("s3"),
            "access_key": {"env": "AFASA_S3_ACCESS_KEY"},
            "secret_key": {"env": "AFASA_S3_SECRET_KEY"},
        },
        # The stack's api verifies development HS256 tokens; the checks mint them.
        "api": {"environment": "development", "dev_hs256_secret": {"env": "AFASA_DEV_JWT_SECRET"}},
        # [traefik] api_url/entrypoint_url and [checks] base_url: `init` derives them from
        # Traefik's published ports in .env (TRAEFIK_HTTP_PORT, TRAEFIK_API_PORT).
        "checks": {
            "tenant_id": TENANT_ID,
            "token_signing_key": {"env": "AFASA_DEV_JWT_SECRET"},
        },
        "phase3": {"timeout_s": 240},
    }
    if (WHEELS / "runtime.lock").exists():
        # The dependencies' wheels made by ensure_build_context: phase 2 copies them instead
        # of downloading them again (afasa-ops itself is packed from the installed code).
        wanted["adopt"] = {"wheelhouse": str(WHEELS)}
    if box.ops_compose_command:
        wanted["compose"] = {"command": box.ops_compose_command}
    known = _known_sections(box.ops_executable())
    for section, keys in wanted.items():
        if section not in known:
            continue  # a section this afasa-ops version does not have yet
        target = doc.setdefault(section, {})
        target.update({k: v for k, v in keys.items() if k in known[section]})
    box.config.write_text(render_toml(doc))


def _known_sections(binary: str) -> dict[str, set[str]]:
    """Sections and keys of the installed afasa-ops' Settings (asked of its own Python)."""
    code = (
        "import json\nfrom afasa_ops.config import section_classes\n"
        "print(json.dumps({n: list(c.model_fields) for n, c in section_classes().items()}))"
    )
    python = Path(binary).parent / "python"
    out = subprocess.run(
        [str(python) if python.exists() else sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {k: set(v) for k, v in json.loads(out).items()}


def render_toml(doc: dict[str, Any]) -> str:
    """TOML for this config's shapes: tables of scalars, lists and {env=...} references,
    and arrays of tables ([[services]]), written last."""
    lines = [
        "# afasa-ops configuration of a reference-stack sandbox: written by `afasa-ops init`,",
        "# completed by compose/sandbox.py. Secret values live in ops.env beside this file.",
    ]
    arrays = {k: v for k, v in doc.items() if isinstance(v, list)}
    for name, table in doc.items():
        if name in arrays:
            continue
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    for name, items in arrays.items():
        for item in items:
            lines += ["", f"[[{name}]]"] + [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="make the sandbox repo, .env, config and ops.env")
    c.add_argument("root", type=Path)
    c.add_argument("--name", default="afasa-ref")
    c.add_argument("--docker-socket", default=ENGINE_SOCKET)
    c.add_argument("--app-image", default=None)
    c.add_argument(
        "--compose",
        default="",
        help="Compose CLI for the stack and afasa-ops: 'docker compose' (v2) or 'docker-compose'"
        " (v1); default: v2 when installed, else v1",
    )
    u = sub.add_parser("up", help="start the stack (or --only SERVICE...) and wait for health")
    u.add_argument("root", type=Path)
    u.add_argument("--only", nargs="*", default=[])
    u.add_argument("--no-wait", action="store_true", help="start only; do not wait for health")
    d = sub.add_parser("down", help="remove containers, networks, volumes")
    d.add_argument("root", type=Path)
    d.add_argument("--purge", action="store_true", help="also delete the sandbox folder")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "create":
            box = create(
                args.root,
                args.name,
                docker_socket=args.docker_socket,
                app_image=args.app_image,
                compose_command=args.compose,
            )
            print(f"sandbox: {box.repo} (project {box.project}), config {box.config}")
            print(f"sandbox: Traefik {box.url('http')}, its API {box.url('api')}")
        elif args.cmd == "up":
            box = Sandbox.load(args.root.resolve())
            if args.no_wait:
                box.compose("up", "-d", *args.only)
            else:
                box.up(*args.only)
            print(f"sandbox: {box.project} up: {box.health()}")
        else:
            if (args.root / "sandbox.json").exists():
                Sandbox.load(args.root.resolve()).down()
            if args.purge:
                shutil.rmtree(args.root, ignore_errors=True)
    except (RuntimeError, FileExistsError, subprocess.CalledProcessError) as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
