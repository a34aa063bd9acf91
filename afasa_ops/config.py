"""One Settings object: afasa-ops.toml, then AFASA_OPS_* environment variables, validated.

Secrets are never written inline in the file. A secret key takes a reference,
`{ env = "NAME" }` or `{ file = "/run/secrets/name" }`, or comes whole from the environment
(`AFASA_OPS_<SECTION>_<KEY>`). A DSN may sit in the file only while it carries no password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from afasa_ops.errors import ConfigError
from afasa_ops.redact import redactor

ENV_PREFIX = "AFASA_OPS_"
CONFIG_ENV = "AFASA_OPS_CONFIG"
DEFAULT_CONFIG = "afasa-ops.toml"
# Variables that steer the tool itself rather than override a key.
# AFASA_OPS_DAEMON=off: no command server (afasa_ops/daemon/client.py, which imports no config).
RESERVED_ENV = {CONFIG_ENV, "AFASA_OPS_DAEMON"}


# Bounds by kind of value, so every key of a kind is bounded the same way (a unit test walks
# every key and fails on a number without both bounds). A week is longer than any wait,
# timeout or interval afasa-ops has a use for; inf and nan are never a duration.
MAX_SECONDS = 7 * 24 * 3600
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
SecondsOrZero = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=1, le=65535)]
PortOrZero = Annotated[int, Field(ge=0, le=65535)]  # 0: the OS picks a free port
Count = Annotated[int, Field(ge=1, le=1_000_000)]
Bytes = Annotated[int, Field(ge=1, le=2**40)]
Factor = Annotated[float, Field(ge=1, le=100, allow_inf_nan=False)]
# An HS256 key shorter than the hash output is refused (RFC 7518, section 3.2).
MIN_HMAC_SECRET_BYTES = 32


def url_problem(value: str) -> str | None:
    """Why a URL or URL-form DSN is unusable (no scheme, a port that is not 0..65535)."""
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        return "contains whitespace or control characters"
    if "://" not in value:
        return "is not a URL (scheme://host...)"
    try:
        urlsplit(value).port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        port = value.split("://", 1)[1].split("/", 1)[0].rpartition(":")[2]
        if "out of range" in str(exc):
            return f"port {port} is out of range 0..65535"
        return f"port {port!r} is not a number"
    return None


def dsn_problem(value: str) -> str | None:
    """Why a DSN is unusable: URL form as url_problem, key=value form by its port."""
    if "://" in value:
        return url_problem(value)
    for part in value.split():
        key, _, val = part.partition("=")
        if key == "port" and not (val.isdigit() and 0 < int(val) <= 65535):
            return f"port {val!r} is not a number in 1..65535"
    return None


def _url(value: str) -> str:
    problem = url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Url = Annotated[str, AfterValidator(_url)]


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
            try:
                secret = Path(self.file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                secret = None  # problem() says why
        redactor.add(secret)
        return secret or None

    def problem(self) -> str | None:
        """Why get() has no value, naming the variable or file to fix; None when it has one."""
        if self.get():
            return None
        if self.env is not None:
            state = "is empty" if self.env in os.environ else "is not set"
            return f"environment variable {self.env} {state}"
        if self.file is not None:
            path = Path(self.file)
            if not path.exists():
                return f"secret file {self.file} does not exist"
            try:
                path.read_text(encoding="utf-8")
            except OSError as exc:
                return f"cannot read secret file {self.file}: {exc.strerror}"
            except UnicodeDecodeError:
                return f"secret file {self.file} is not UTF-8 text"
            return f"secret file {self.file} is empty"
        return "the value is empty"

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
    # Secret keys that are signing keys: shorter values are refused at load.
    hmac_keys: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _usable_dsns(self) -> Section:
        for key in self.dsn_keys:
            value = getattr(self, key)
            text = value.value if isinstance(value, SecretRef) else value
            problem = dsn_problem(text) if isinstance(text, str) else None
            if problem:
                raise ValueError(f"{key}: {problem}")
        return self


class RepoSection(Section):
    path: str | None = Field(
        default=None,
        description="Path of the AFASA checkout, relative to the config file (needed by the"
        " commands that work on a checkout).",
    )


class RunbookSection(Section):
    path: str = Field(
        default="afasa-repair",
        description="Runbook file (relative to the config file), or the name of a runbook"
        " afasa-ops ships (afasa-repair).",
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
    host: Url | None = Field(
        default=None,
        description="Engine address (unix:///var/run/docker.sock); DOCKER_HOST when unset.",
    )


class TraefikSection(Section):
    api_url: Url | None = Field(
        default=None,
        description="Traefik API base URL (--api.insecure=true); derived from the Traefik "
        "service's published ports when unset.",
    )
    entrypoint_url: Url | None = Field(
        default=None,
        description="Traefik's web entrypoint, for route checks; derived from the Traefik "
        "service's published ports when unset.",
    )
    target_image: str = Field(
        default="traefik:v3.6.7",
        description="Pin target when unpinned or incompatible, within its own major line.",
    )
    wait_s: Seconds = Field(
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
    lock_timeout_s: Seconds = Field(
        default=10.0, description="lock_timeout of every session (the tool, serve, workers)."
    )
    statement_timeout_s: Seconds = Field(
        default=300.0,
        description="statement_timeout of the tool's sessions (serve and the workers have "
        "their own, below).",
    )
    idle_in_transaction_timeout_s: SecondsOrZero = Field(
        default=60.0,
        description="idle_in_transaction_session_timeout of every session: a dead client's "
        "locks go after this (0: none).",
    )
    migrations_dir: str | None = Field(
        default=None,
        description="Directory of NNNN_name.sql migrations (default: the ones afasa-ops ships).",
    )
    connect_timeout_s: SecondsOrZero = Field(
        default=5.0, description="Connect timeout of every session (0: none)."
    )
    pool_timeout_s: SecondsOrZero = Field(
        default=5.0, description="Longest wait of a request or job for a pooled connection."
    )
    api_statement_timeout_s: SecondsOrZero = Field(
        default=10.0, description="statement_timeout of the API's sessions (0: none)."
    )
    worker_statement_timeout_s: SecondsOrZero = Field(
        default=600.0, description="statement_timeout of the workers' sessions (0: none)."
    )
    keepalive_s: SecondsOrZero = Field(
        default=10.0,
        description="TCP keepalive idle of every session; a silent peer is dropped after ~3x.",
    )
    vector: str = Field(
        default="auto",
        pattern="^(auto|require|off)$",
        description="pgvector for detections.embedding: auto (use it where the server has it),"
        " require (preflight blocks without it) or off.",
    )


class NatsSection(Section):
    url: Url = Field(default="nats://127.0.0.1:4222", description="NATS server URL.")
    stream: str = Field(default="AFASA", description="The JetStream stream on afasa.>.")


class StorageSection(Section):
    secret_keys = ("access_key", "secret_key")
    url: Url = Field(
        default="file://.afasa-ops/storage", description="file://DIR or s3://BUCKET for reports."
    )
    endpoint: Url | None = Field(default=None, description="S3 endpoint URL for s3:// storage.")
    access_key: SecretRef | None = Field(default=None, description="S3 access key (a reference).")
    secret_key: SecretRef | None = Field(default=None, description="S3 secret key (a reference).")
    region: str = Field(default="us-east-1", description="S3 region.")


class UbibotSection(Section):
    secret_keys = ("account_key",)
    base_url: Url = Field(default="https://webapi.ubibot.com", description="UbiBot API base URL.")
    account_key: SecretRef | None = Field(
        default=None, description="Single-tenant UbiBot account key (a reference)."
    )
    tenant_id: str | None = Field(
        default=None, description="Tenant the single-tenant account_key belongs to."
    )
    interval_s: Seconds = Field(
        default=300.0, description="worker sync: seconds between passes (UbiBot: >= 60)."
    )
    jitter_s: SecondsOrZero = Field(
        default=30.0, description="worker sync: random extra delay per pass, 0..jitter_s."
    )
    timeout_s: Seconds = Field(default=10.0, description="UbiBot HTTP timeout in seconds.")


class ThingsboardSection(Section):
    secret_keys = ("password",)
    base_url: Url | None = Field(default=None, description="ThingsBoard REST base URL.")
    username: str | None = Field(default=None, description="ThingsBoard tenant user.")
    password: SecretRef | None = Field(
        default=None, description="ThingsBoard password (a reference)."
    )


class WorkersSection(Section):
    ack_wait_s: Seconds = Field(
        default=30.0, description="JetStream ack_wait: redelivery after this long without ack."
    )
    max_deliver: Count = Field(
        default=5, description="Deliveries before a message is failed and dead-lettered."
    )
    backoff_s: list[Seconds] = Field(
        default_factory=lambda: [1.0, 5.0, 30.0, 120.0],
        min_length=1,
        max_length=100,
        description="nak(delay=) per retry; the last value repeats.",
    )
    grace_s: SecondsOrZero = Field(
        default=30.0, description="On SIGTERM/SIGINT: time to finish in-flight jobs."
    )
    concurrency: Count = Field(default=2, le=1024, description="Jobs in flight per worker process.")
    metrics_port: PortOrZero = Field(
        default=9102, description="/healthz and /metrics port (0: pick a free port)."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address for /healthz, /metrics.")
    relay_interval_s: Seconds = Field(
        default=0.5,
        description="Seconds between timed outbox sweeps; a commit wakes the relay at once.",
    )
    workdir: str | None = Field(
        default=None,
        description="Private scratch directory for report files (0700; <tmp>/afasa-ops-report-<uid> if unset).",
    )
    update_stream: bool = Field(
        default=False, description="Update the stream when its config differs (else report)."
    )
    reconcile_interval_s: SecondsOrZero = Field(
        default=60.0, description="Seconds between reconciliation sweeps (0: none)."
    )
    reconcile_after_s: Seconds = Field(
        default=300.0,
        description="A job row untouched this long with no live message is re-announced or failed.",
    )


class AdoptSection(Section):
    mode: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="phase2.services.adopt: auto adopts unless [patch] bundle is set; always; never.",
    )
    wheelhouse: str | None = Field(
        default=None,
        description="Wheels of afasa-ops[service]'s dependencies (relative to the config file),"
        " copied into the override's build context; unset: the host's pip downloads them.",
    )


class PatchSection(Section):
    bundle: str | None = Field(
        default=None,
        description="The operators' patch bundle (zip or folder), relative to the config file.",
    )
    max_entry_bytes: Bytes = Field(
        default=16 * 1024 * 1024, description="Largest file a bundle may hold."
    )
    max_total_bytes: Bytes = Field(
        default=256 * 1024 * 1024, description="Largest total size of a bundle."
    )
    max_entries: Count = Field(default=20_000, description="Most files a bundle may hold.")
    max_ratio: float = Field(
        default=100.0,
        gt=1,
        le=1_000_000,
        allow_inf_nan=False,
        description="Largest zip compression ratio (zip bomb guard).",
    )


class ServiceEntry(Section):
    name: str = Field(description="Compose service name.")
    routes: list[str] = Field(default_factory=list, description="Path prefixes routed by Traefik.")
    health: str | None = Field(default=None, description="Health endpoint path, e.g. /readyz.")


class ApiSection(Section):
    secret_keys = ("dev_hs256_secret",)
    hmac_keys = ("dev_hs256_secret",)
    host: str = Field(default="127.0.0.1", description="Address `afasa-ops serve` listens on.")
    port: Port = Field(default=8000, description="Port `afasa-ops serve` listens on.")
    oidc_issuer_url: Url | None = Field(
        default=None, description="OIDC issuer (Keycloak realm URL); tokens' iss must equal it."
    )
    audience: str = Field(default="afasa-api", description="Required aud claim of tokens.")
    jwks_url: Url | None = Field(
        default=None,
        description="JWKS URL; {oidc_issuer_url}/protocol/openid-connect/certs when unset.",
    )
    jwks_cache_s: Seconds = Field(default=300.0, description="How long fetched JWKS keys are kept.")
    jwks_timeout_s: Seconds = Field(
        default=3.0, description="Timeout of one JWKS fetch (it runs in the background)."
    )
    request_timeout_s: SecondsOrZero = Field(
        default=15.0,
        description="An /api request unanswered this long gets 503 (a hung database); 0: none.",
    )
    dev_hs256_secret: SecretRef | None = Field(
        default=None,
        description="Development only: HS256 signing secret (a reference). Refused in production.",
    )
    environment: Literal["production", "development"] = Field(
        default="production", description="production or development; HS256 needs development."
    )
    presign_expiry_s: int = Field(
        default=900,
        ge=1,
        le=604_800,  # S3 presigned URLs live at most 7 days
        description="Lifetime of presigned report download URLs (S3 storage).",
    )
    report_max_span_days: Count = Field(
        default=366,
        le=3_652_059,
        description="Longest report range accepted, in days (422 beyond).",
    )
    max_body_bytes: Bytes = Field(
        default=1024 * 1024, description="Largest request body; 413 before it is read."
    )
    body_timeout_s: Seconds = Field(
        default=30.0, description="Time for a request body to arrive whole (else 408)."
    )
    max_header_bytes: Bytes = Field(
        default=64 * 1024, description="Largest request head (request line and headers); 431."
    )
    header_timeout_s: Seconds = Field(
        default=10.0, description="Time for a request's headers to arrive (else closed)."
    )
    keep_alive_s: Seconds = Field(
        default=5.0, description="Idle keep-alive connections are closed after this long."
    )


class Phase3Section(Section):
    timeout_s: Seconds = Field(
        default=300.0, description="How long to wait for all services to become healthy."
    )
    poll_initial_s: Seconds = Field(default=1.0, description="First wait between health polls.")
    poll_max_s: Seconds = Field(default=10.0, description="Longest wait between health polls.")
    backoff: Factor = Field(default=1.5, description="Factor the poll wait grows by each round.")
    http_timeout_s: Seconds = Field(default=5.0, description="Timeout of one /readyz request.")
    readyz_port: Port = Field(
        default=8000, description="Container port of /readyz for services without a healthcheck."
    )
    pull_timeout_s: Seconds = Field(default=900.0, description="Timeout of `compose pull`.")
    up_timeout_s: Seconds = Field(default=1800.0, description="Timeout of `compose up -d --build`.")


class ChecksSection(Section):
    secret_keys = ("token", "token_signing_key")
    hmac_keys = ("token_signing_key",)
    base_url: Url = Field(
        default="http://127.0.0.1", description="Base URL of the deployment (Traefik's :80)."
    )
    mode: Literal["full", "read-only"] = Field(
        default="full",
        description="full: every functional check (each cleans up what it creates and "
        "restores what it changes); read-only: only checks that change nothing (GET requests, "
        "SQL and storage reads), the others are skipped and listed.",
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
    timeout_s: Seconds = Field(default=120.0, description="Deadline of a polling check.")
    poll_initial_s: Seconds = Field(
        default=0.05,
        description="Wait between polls of a check for its first second; then 1.5x per poll.",
    )
    poll_max_s: Seconds = Field(default=2.0, description="Longest wait between polls of a check.")
    http_timeout_s: Seconds = Field(default=15.0, description="Timeout of one check request.")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: RepoSection = Field(default_factory=RepoSection)
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
    adopt: AdoptSection = Field(default_factory=AdoptSection)

    # Where the settings came from; not a key.
    source: Path | None = Field(default=None, exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    @property
    def repo_path(self) -> Path:
        if not self.repo.path:
            raise ConfigError(
                missing_key(self, "repo", "path", "the AFASA checkout this command works on")
            )
        return (self.base_dir / self.repo.path).resolve()

    def runbook_path(self) -> Traversable:
        """The runbook file: a path (absolute, or relative to the config file) when such a file
        exists, else the shipped runbook of that name; a path that is neither is returned as
        the file tried, for the loader to report."""
        from afasa_ops.resources import builtin_runbook

        candidate = Path(self.runbook.path)
        if candidate.is_absolute():
            return candidate
        beside = self.base_dir / candidate
        if beside.exists():
            return beside
        return builtin_runbook(self.runbook.path) or beside


def secret_value(value: SecretRef | str | None) -> str | None:
    """The plain value of a secret-or-plain key (a DSN without a password may be inline)."""
    if isinstance(value, SecretRef):
        return value.get()
    return value


def says(name: str, text: str) -> str:
    """`[section] key: text`, unless the key's name looks secret: the redactor then masks what
    follows `NAME:` (a net for secrets it was never told about), so the text gets a dash."""
    from afasa_ops.redact import is_secret_name

    return f"{name} - {text}" if is_secret_name(name) else f"{name}: {text}"


def env_var(section: str, key: str) -> str:
    """The AFASA_OPS_* variable that sets [section] key."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def missing_key(settings: Settings, section: str, key: str, purpose: str) -> str:
    """One line for a key a command needs and does not have, naming what to set: the
    variable or file a reference points at, else the AFASA_OPS_* variable or the file key."""
    value = getattr(getattr(settings, section), key)
    if isinstance(value, SecretRef):
        return says(f"[{section}] {key}", f"{value.problem()} ({purpose})")
    where = settings.source or DEFAULT_CONFIG
    return (
        f"[{section}] {key} is not set ({purpose}): set {env_var(section, key)}, "
        f"or {key} under [{section}] in {where}"
    )


def require(settings: Settings, section: str, key: str, purpose: str) -> str:
    """The value of a key a command cannot do without; a one-line ConfigError (exit 2) naming
    what to set when it is missing or its reference resolves to nothing."""
    value = secret_value(getattr(getattr(settings, section), key))
    if not value:
        raise ConfigError(missing_key(settings, section, key, purpose))
    cls = type(getattr(settings, section))
    problem = dsn_problem(value) if key in cls.dsn_keys else None
    if problem:
        raise ConfigError(says(f"[{section}] {key}", problem))
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
    require_file: bool = False,
) -> Settings:
    """Settings from the config file (when there is one) and AFASA_OPS_* variables.

    A file named by `path` or AFASA_OPS_CONFIG must exist; ./afasa-ops.toml may be absent, and
    then the variables alone configure the tool (containers, CI). Every problem is reported
    at once, one line each, as one ConfigError (exit 2)."""
    from afasa_ops.config_load import load

    return load(path, environ=os.environ if environ is None else environ, require_file=require_file)
