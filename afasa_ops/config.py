"""One Settings object: afasa-ops.toml, then AFASA_OPS_* environment variables, validated.

Secrets are never written inline in the file. A secret key takes a reference,
`{ env = "NAME" }` or `{ file = "/run/secrets/name" }`, or comes whole from the environment
(`AFASA_OPS_<SECTION>_<KEY>`). A DSN may sit in the file only while it carries no password.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from afasa_ops.errors import ConfigError
from afasa_ops.redact import redactor

ENV_PREFIX = "AFASA_OPS_"
CONFIG_ENV = "AFASA_OPS_CONFIG"
DEFAULT_CONFIG = "afasa-ops.toml"
# Variables that steer the tool itself rather than override a key.
RESERVED_ENV = {CONFIG_ENV}


class SecretRef(BaseModel):
    """Where a secret lives. The value is read on demand and taught to the redactor."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str | None = None
    file: str | None = None
    # Only set from an AFASA_OPS_* environment variable, never from a file.
    value: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [k for k in ("env", "file", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError('give exactly one of env = "NAME" or file = "PATH"')
        return self

    def get(self) -> str | None:
        if self.value is not None:
            secret: str | None = self.value
        elif self.env is not None:
            secret = os.environ.get(self.env)
        else:
            assert self.file is not None
            path = Path(self.file)
            secret = path.read_text().strip() if path.exists() else None
        redactor.add(secret)
        return secret

    def describe(self) -> str:
        if self.env:
            return f"env:{self.env}"
        if self.file:
            return f"file:{self.file}"
        return "environment override"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Keys whose values are secrets (always references) or DSNs (references once they
    # carry a password).
    secret_keys: ClassVar[tuple[str, ...]] = ()
    dsn_keys: ClassVar[tuple[str, ...]] = ()


class RepoSection(Section):
    path: str = Field(description="Path of the AFASA checkout, relative to the config file.")


class RunbookSection(Section):
    path: str = Field(
        default="runbooks/afasa-repair.yaml",
        description="Runbook file; relative paths are tried beside the config, then in afasa-ops.",
    )
    timezone: str = Field(default="local", description="IANA zone for dated names, or local.")
    plugins: list[str] = Field(
        default_factory=list, description="Python modules imported to register extra step kinds."
    )


class ComposeSection(Section):
    files: list[str] = Field(
        default_factory=lambda: ["docker-compose.yml"],
        description="Compose files, in -f order, relative to the repo.",
    )
    project_name: str | None = Field(
        default=None, description="Compose project name; derived as Compose does when unset."
    )
    command: str = Field(
        default="auto", description="auto, 'docker compose' (v2) or 'docker-compose' (v1)."
    )
    traefik_service: str | None = Field(
        default=None, description="Traefik's service name; found by image when unset."
    )
    networks: list[str] = Field(
        default_factory=list, description="Real network names (written by init)."
    )
    init_sql_dir: str = Field(
        default="infra/postgres/init", description="Init SQL directory inside the repo."
    )


class DockerSection(Section):
    host: str | None = Field(
        default=None,
        description="Engine address (unix:///var/run/docker.sock); DOCKER_HOST when unset.",
    )


class TraefikSection(Section):
    api_url: str = Field(
        default="http://127.0.0.1:8081",
        description="Traefik API base URL (the dashboard port; --api.insecure=true).",
    )
    entrypoint_url: str = Field(
        default="http://127.0.0.1:80", description="Traefik's web entrypoint, for route checks."
    )
    target_image: str = Field(
        default="traefik:v3.6.7",
        description="Image Traefik is pinned to when unpinned or incompatible.",
    )
    wait_s: float = Field(
        default=60.0, description="How long to wait for the provider and routers after a recreate."
    )


class DatabaseSection(Section):
    dsn_keys = ("admin_dsn", "app_dsn")
    secret_keys = ("app_password",)
    admin_dsn: SecretRef | str | None = Field(
        default=None, description="DSN for migrations (an owner or superuser)."
    )
    app_dsn: SecretRef | str | None = Field(
        default=None, description="DSN the services use (the application role)."
    )
    app_role: str = Field(default="afasa_app", description="The application role to ensure.")
    app_password: SecretRef | None = Field(
        default=None, description="Password for the application role (a reference)."
    )
    connect_timeout_s: float = Field(
        default=5.0, description="How long opening a database connection may take."
    )
    lock_timeout_s: float = Field(
        default=10.0, description="lock_timeout of every session (the tool, serve, workers)."
    )
    statement_timeout_s: float = Field(
        default=300.0, description="statement_timeout of every session (the tool, serve, workers)."
    )
    pool_timeout_s: float = Field(
        default=30.0, description="How long serve and the workers wait for a pooled connection."
    )
    migrations_dir: str | None = Field(
        default=None,
        description="Directory of NNNN_name.sql migrations (default: the afasa-ops schema/).",
    )
    vector: str = Field(
        default="auto",
        pattern="^(auto|require|off)$",
        description="pgvector for detections.embedding: auto (use it where the server has it),"
        " require (preflight blocks without it) or off.",
    )


class NatsSection(Section):
    url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL.")
    stream: str = Field(default="AFASA", description="The JetStream stream on afasa.>.")


class StorageSection(Section):
    secret_keys = ("access_key", "secret_key")
    url: str = Field(
        default="file://.afasa-ops/storage", description="file://DIR or s3://BUCKET for reports."
    )
    endpoint: str | None = Field(default=None, description="S3 endpoint URL for s3:// storage.")
    access_key: SecretRef | None = Field(default=None, description="S3 access key (a reference).")
    secret_key: SecretRef | None = Field(default=None, description="S3 secret key (a reference).")
    region: str = Field(default="us-east-1", description="S3 region.")


class UbibotSection(Section):
    secret_keys = ("account_key",)
    base_url: str = Field(default="https://webapi.ubibot.com", description="UbiBot API base URL.")
    account_key: SecretRef | None = Field(
        default=None, description="Single-tenant UbiBot account key (a reference)."
    )
    tenant_id: str | None = Field(
        default=None, description="Tenant the single-tenant account_key belongs to."
    )
    interval_s: float = Field(
        default=300.0, description="worker sync: seconds between passes (UbiBot: >= 60)."
    )
    jitter_s: float = Field(
        default=30.0, description="worker sync: random extra delay per pass, 0..jitter_s."
    )
    timeout_s: float = Field(default=10.0, description="UbiBot HTTP timeout in seconds.")


class ThingsboardSection(Section):
    secret_keys = ("password",)
    base_url: str | None = Field(default=None, description="ThingsBoard REST base URL.")
    username: str | None = Field(default=None, description="ThingsBoard tenant user.")
    password: SecretRef | None = Field(
        default=None, description="ThingsBoard password (a reference)."
    )


class WorkersSection(Section):
    ack_wait_s: float = Field(
        default=30.0, description="JetStream ack_wait: redelivery after this long without ack."
    )
    max_deliver: int = Field(
        default=5, description="Deliveries before a message is failed and dead-lettered."
    )
    backoff_s: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 30.0, 120.0],
        description="nak(delay=) per retry; the last value repeats.",
    )
    grace_s: float = Field(
        default=30.0, description="On SIGTERM/SIGINT: time to finish in-flight jobs."
    )
    concurrency: int = Field(default=2, description="Jobs in flight per worker process.")
    metrics_port: int = Field(
        default=9102, description="/healthz and /metrics port (0: pick a free port)."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address for /healthz, /metrics.")
    relay_interval_s: float = Field(
        default=0.5, description="Seconds between outbox sweeps (events to JetStream)."
    )
    workdir: str | None = Field(
        default=None, description="Scratch directory for report files (system temp if unset)."
    )
    update_stream: bool = Field(
        default=False, description="Update the stream when its config differs (else report)."
    )


class PatchSection(Section):
    bundle: str | None = Field(
        default=None,
        description="The operators' patch bundle (zip or folder), relative to the config file.",
    )
    max_entry_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="Largest file a bundle may hold."
    )
    max_total_bytes: int = Field(
        default=256 * 1024 * 1024, gt=0, description="Largest total size of a bundle."
    )
    max_entries: int = Field(default=20_000, gt=0, description="Most files a bundle may hold.")
    max_ratio: float = Field(
        default=100.0, gt=1, description="Largest zip compression ratio (zip bomb guard)."
    )


class ServiceEntry(Section):
    name: str = Field(description="Compose service name.")
    routes: list[str] = Field(default_factory=list, description="Path prefixes routed by Traefik.")
    health: str | None = Field(default=None, description="Health endpoint path, e.g. /readyz.")


class ApiSection(Section):
    secret_keys = ("dev_hs256_secret",)
    host: str = Field(default="127.0.0.1", description="Address `afasa-ops serve` listens on.")
    port: int = Field(default=8000, description="Port `afasa-ops serve` listens on.")
    oidc_issuer_url: str | None = Field(
        default=None, description="OIDC issuer (Keycloak realm URL); tokens' iss must equal it."
    )
    audience: str = Field(default="afasa-api", description="Required aud claim of tokens.")
    jwks_url: str | None = Field(
        default=None,
        description="JWKS URL; {oidc_issuer_url}/protocol/openid-connect/certs when unset.",
    )
    jwks_cache_s: float = Field(default=300.0, description="How long fetched JWKS keys are kept.")
    dev_hs256_secret: SecretRef | None = Field(
        default=None,
        description="Development only: HS256 signing secret (a reference). Refused in production.",
    )
    environment: Literal["production", "development"] = Field(
        default="production", description="production or development; HS256 needs development."
    )
    presign_expiry_s: int = Field(
        default=900, description="Lifetime of presigned report download URLs (S3 storage)."
    )


class Phase3Section(Section):
    timeout_s: float = Field(
        default=300.0, description="How long to wait for all services to become healthy."
    )
    poll_initial_s: float = Field(default=1.0, description="First wait between health polls.")
    poll_max_s: float = Field(default=10.0, description="Longest wait between health polls.")
    backoff: float = Field(default=1.5, description="Factor the poll wait grows by each round.")
    http_timeout_s: float = Field(default=5.0, description="Timeout of one /readyz request.")
    readyz_port: int = Field(
        default=8000, description="Container port of /readyz for services without a healthcheck."
    )
    pull_timeout_s: float = Field(default=900.0, description="Timeout of `compose pull`.")
    up_timeout_s: float = Field(default=1800.0, description="Timeout of `compose up -d --build`.")


class ChecksSection(Section):
    secret_keys = ("token", "token_signing_key")
    base_url: str = Field(
        default="http://127.0.0.1", description="Base URL of the deployment (Traefik's :80)."
    )
    tenant_id: str = Field(
        default="00000000-0000-0000-0000-000000000001", description="Tenant the checks act as."
    )
    token: SecretRef | None = Field(
        default=None, description="A ready bearer token for the checks (a reference)."
    )
    token_signing_key: SecretRef | None = Field(
        default=None,
        description="Key to mint a token: an HS256 secret or an RS256 PEM private key (a ref).",
    )
    token_kid: str | None = Field(default=None, description="kid header of minted RS256 tokens.")
    token_issuer: str | None = Field(
        default=None, description="iss of minted tokens; [api] oidc_issuer_url when unset."
    )
    token_audience: str | None = Field(
        default=None, description="aud of minted tokens; [api] audience when unset."
    )
    token_subject: str = Field(default="afasa-ops-checks", description="sub of minted tokens.")
    token_roles: list[str] = Field(
        default_factory=lambda: ["tenant_admin"], description="realm roles of minted tokens."
    )
    sync_route: str = Field(
        default="/api/tb/integrations/ubibot/sync", description="Route of the UbiBot sync."
    )
    devices_route: str = Field(default="/api/devices", description="Route listing devices.")
    disable_route: str = Field(
        default="/api/tb/devices/{device_id}/disable", description="Route disabling a device."
    )
    enable_route: str = Field(
        default="/api/tb/devices/{device_id}/enable",
        description="Route enabling a device (restores what a check disabled).",
    )
    generate_route: str = Field(
        default="/api/report/generate", description="Route requesting a report."
    )
    report_route: str = Field(
        default="/api/report/reports/{report_id}", description="Route of one report's status."
    )
    timeout_s: float = Field(default=120.0, description="Deadline of a polling check.")
    poll_initial_s: float = Field(
        default=0.05, gt=0, description="First wait between polls of a check; each next is 1.5x."
    )
    poll_max_s: float = Field(
        default=2.0, gt=0, description="Longest wait between polls of a check."
    )
    http_timeout_s: float = Field(default=15.0, description="Timeout of one check request.")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: RepoSection
    runbook: RunbookSection = Field(default_factory=RunbookSection)
    compose: ComposeSection = Field(default_factory=ComposeSection)
    docker: DockerSection = Field(default_factory=DockerSection)
    traefik: TraefikSection = Field(default_factory=TraefikSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    nats: NatsSection = Field(default_factory=NatsSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    ubibot: UbibotSection = Field(default_factory=UbibotSection)
    thingsboard: ThingsboardSection = Field(default_factory=ThingsboardSection)
    workers: WorkersSection = Field(default_factory=WorkersSection)
    services: list[ServiceEntry] = Field(default_factory=list)
    api: ApiSection = Field(default_factory=ApiSection)
    phase3: Phase3Section = Field(default_factory=Phase3Section)
    checks: ChecksSection = Field(default_factory=ChecksSection)
    patch: PatchSection = Field(default_factory=PatchSection)

    # Where the settings came from; not a key.
    source: Path | None = Field(default=None, exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    @property
    def repo_path(self) -> Path:
        return (self.base_dir / self.repo.path).resolve()

    def runbook_path(self) -> Path:
        candidate = Path(self.runbook.path)
        if candidate.is_absolute():
            return candidate
        for root in (self.base_dir, Path(__file__).resolve().parents[1]):
            if (root / candidate).exists():
                return root / candidate
        return self.base_dir / candidate


def secret_value(value: SecretRef | str | None) -> str | None:
    """The plain value of a secret-or-plain key (a DSN without a password may be inline)."""
    if isinstance(value, SecretRef):
        return value.get()
    return value


def section_classes() -> dict[str, type[Section]]:
    out: dict[str, type[Section]] = {}
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            out[name] = ann
    return out


def load_settings(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_file: bool = True,
) -> Settings:
    env = os.environ if environ is None else environ
    chosen = Path(path or env.get(CONFIG_ENV) or DEFAULT_CONFIG)
    label = str(chosen)
    raw: dict[str, Any] = {}
    if chosen.exists():
        try:
            raw = tomllib.loads(chosen.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{label}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{label}: cannot read: {exc.strerror}") from exc
    elif require_file:
        raise ConfigError(
            f"{label}: no such config file",
            hint="run `afasa-ops init REPO` to write one, or pass --config PATH",
        )
    _refuse_inline_secrets(raw, label)
    _apply_env_overrides(raw, env)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, label)) from None
    settings.source = chosen.resolve() if chosen.exists() else None
    return settings


def _refuse_inline_secrets(raw: dict[str, Any], label: str) -> None:
    for section_name, cls in section_classes().items():
        section = raw.get(section_name)
        if not isinstance(section, dict):
            continue
        for key in cls.secret_keys:
            if isinstance(section.get(key), str):
                raise ConfigError(
                    f"{label}: [{section_name}] {key} is a secret and may not be written inline",
                    hint=f'use {key} = {{ env = "NAME" }} or {{ file = "/run/secrets/NAME" }}, '
                    f"or set {ENV_PREFIX}{section_name.upper()}_{key.upper()}",
                )
        for key in cls.dsn_keys:
            value = section.get(key)
            if isinstance(value, str) and _has_password(value):
                raise ConfigError(
                    f"{label}: [{section_name}] {key} holds a password; "
                    "a DSN with a password is a secret",
                    hint=f'use {key} = {{ env = "NAME" }}, or set '
                    f"{ENV_PREFIX}{section_name.upper()}_{key.upper()}",
                )


def _has_password(dsn: str) -> bool:
    if "://" in dsn:
        try:
            return urlsplit(dsn).password is not None
        except ValueError:
            return True
    return "password=" in dsn.lower()


def _apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    sections = section_classes()
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section_name = next((s for s in sections if rest.startswith(s + "_")), None)
        if section_name is None:
            raise ConfigError(
                f"environment variable {name}: no such section; "
                f"expected {ENV_PREFIX}<SECTION>_<KEY> with SECTION one of "
                + ", ".join(s.upper() for s in sections)
            )
        key = rest[len(section_name) + 1 :]
        cls = sections[section_name]
        field = cls.model_fields.get(key)
        if field is None:
            raise ConfigError(
                f"environment variable {name}: [{section_name}] has no key {key!r}; "
                f"keys: {', '.join(cls.model_fields)}"
            )
        section = raw.setdefault(section_name, {})
        if key in cls.secret_keys or key in cls.dsn_keys:
            redactor.add(value)
            redactor.add_many(_passwords_in(value))
            section[key] = {"value": value}
        elif _is_list_field(cls, key):
            section[key] = _parse_list(value)
        else:
            section[key] = value


def _passwords_in(value: str) -> list[str]:
    try:
        pw = urlsplit(value).password if "://" in value else None
    except ValueError:
        pw = None
    return [pw] if pw else []


def _is_list_field(cls: type[Section], key: str) -> bool:
    return str(cls.model_fields[key].annotation).startswith("list")


def _parse_list(value: str) -> list[str]:
    text = value.strip()
    if text.startswith("["):
        parsed = json.loads(text)
        return [str(v) for v in parsed]
    return [part.strip() for part in text.split(",") if part.strip()]


def _first_error(exc: ValidationError, label: str) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-after")]
    # Pydantic names the union arm it tried (SecretRef, str); the user wants the key.
    loc = [p for p in loc if p not in {"SecretRef", "str", "list[str]", "float", "int", "bool"}]
    if not loc:
        key = "(top level)"
    elif len(loc) == 1:
        key = f"[{loc[0]}]"
    else:
        key = f"[{loc[0]}] " + ".".join(loc[1:])
    kind = err["type"]
    if kind == "extra_forbidden":
        where = loc[0] if loc else ""
        allowed = _allowed_keys(loc)
        return f"{label}: unknown key {key}" + (
            f"; valid keys in [{where}]: {allowed}" if allowed else ""
        )
    if kind == "missing":
        return f"{label}: missing required key {key}"
    value = err.get("input")
    shown = "" if isinstance(value, dict) else f" (got {redactor.redact(repr(value))})"
    return f"{label}: {key}: {err['msg'].lower()}{shown}"


def _allowed_keys(loc: list[str]) -> str:
    if len(loc) < 2:
        return ", ".join(Settings.model_fields)
    cls = section_classes().get(loc[0])
    return ", ".join(cls.model_fields) if cls else ""
