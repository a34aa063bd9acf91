"""Phase 4: functional checks written as data in the runbook.

A check is a list of actions run in order. Each action is an HTTP request (through the
deployment's base URL, usually Traefik), an SQL assertion (as the admin or the app role with
the tenant set), or a storage assertion (an object exists). An action may capture values from
a JSON response or a row, which later actions use as `{name}` in paths, bodies and queries;
routes and the tenant come from [checks] as `{sync_route}`, `{tenant_id}`... An action with
`poll: true` is retried until it passes or its deadline passes.

Checks change the deployment (a sync inserts devices), so check() only says what would run:
`plan` stays read-only. The evidence (each request, a response excerpt, each SQL and its
result) is in the step's findings, and so in the report and the JUnit output.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from afasa_ops.config import Settings, require, secret_value
from afasa_ops.errors import ConfigError
from afasa_ops.findings import Finding
from afasa_ops.redact import redactor
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.step import Params, Step, register

if TYPE_CHECKING:
    from afasa_ops.platform.storage import Storage

EXCERPT_CHARS = 400
# How long a polled action keeps [checks] poll_initial_s before backing off 1.5x per poll.
_FAST_POLL_S = 1.0


class RequestSpec(Params):
    method: str = "GET"
    path: str = Field(description="Path relative to [checks] base_url; templated.")
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Literal["token", "none"] = "token"
    body: Any = Field(default=None, description="JSON body; strings inside are templated.")
    expect_status: list[int] = Field(default_factory=lambda: [200])
    expect_json: dict[str, Any] = Field(
        default_factory=dict, description="JSON path -> expected value."
    )
    capture: dict[str, str] = Field(default_factory=dict, description="name -> JSON path.")
    fail_json: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON path -> value that fails at once, without polling (status: failed).",
    )

    @model_validator(mode="before")
    @classmethod
    def _status_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("expect_status"), int):
            data = {**data, "expect_status": [data["expect_status"]]}
        return data


class SqlSpec(Params):
    query: str = Field(description="SQL with :name bind parameters taken from captures.")
    role: Literal["admin", "app"] = "app"
    expect: Literal["rows", "no_rows", "value"] = "rows"
    value: Any = Field(default=None, description="Expected first column of the first row.")
    capture: dict[str, str] = Field(
        default_factory=dict, description="name -> column of the first row."
    )
    write: bool = Field(
        default=False, description="Commit (a cleanup's DELETE); assertions are rolled back."
    )


class StorageSpec(Params):
    key: str = Field(description="Object key in [storage]; templated.")
    delete: bool = Field(default=False, description="Delete the object (a cleanup action).")


class Action(Params):
    name: str
    request: RequestSpec | None = None
    sql: SqlSpec | None = None
    storage: StorageSpec | None = None
    poll: bool = False
    timeout_s: float | None = None
    when: str | None = Field(
        default=None,
        description="Run only when this templated value is true (`{was_enabled}`); an "
        "action whose variables were never captured does not run either.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        kinds = [k for k in ("request", "sql", "storage") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"action {self.name!r}: give exactly one of request, sql, storage")
        return self


class CheckParams(Params):
    actions: list[Action] = Field(min_length=1)
    cleanup: list[Action] = Field(
        default_factory=list,
        description="Run after the actions, whether they passed or failed midway: delete what "
        "the check created, restore what it changed. Those using a value never captured "
        "(nothing was created) are left out.",
    )
    timeout_s: float | None = Field(default=None, description="Default deadline of polling.")


class CheckFailed(Exception):
    def __init__(self, message: str, evidence: str = "", *, final: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence
        # A final failure is not polled again (the report already failed).
        self.final = final


@dataclass
class Evidence:
    findings: list[Finding] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, code: str, message: str, **data: Any) -> None:
        self.findings.append(Finding.info(code, redactor.redact(message), **data))
        self.records.append(redactor.redact_obj({"code": code, "message": message, **data}))


@register
class FunctionalCheck(Step[CheckParams]):
    """HTTP requests, SQL and storage assertions with polling: one functional check."""

    kind = "check.functional"
    # It only judges (apply waits or probes): a plan lists it as "will run".
    verification_only = True
    Params = CheckParams
    verification = True

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        writes = changing_actions(p)
        if writes and ctx.settings.checks.mode == "read-only":
            return Assessment.skipped(
                f"[checks] mode = read-only: skipped, it changes the deployment ({writes[0]})"
            )
        steps = ", ".join(_describe(a) for a in p.actions)
        return Assessment.pending(f"will run: {steps}")

    def apply(self, ctx: Context) -> Outcome:
        runner = CheckRunner(ctx.settings, ctx.say)
        error: str | None = None
        try:
            runner.run(self.params)
        except CheckFailed as exc:
            error = exc.message
            runner.evidence.findings.append(
                Finding.error("check.failed", redactor.redact(exc.message))
            )
        finally:
            # Also after a failure midway: what the check created goes, what it changed is
            # restored, before the connections close.
            runner.clean_up(self.params)
            runner.close()
        summary = error or f"passed: {tally(runner.evidence.records)}"
        return Outcome(
            changed=False,
            summary=redactor.redact(summary),
            findings=runner.evidence.findings,
            artifacts={
                "evidence": runner.evidence.records,
                "captures": runner.safe_vars(),
                # What the check touched in the deployment and how it was put back.
                "touched": runner.touched,
            },
        )

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        failed = [f.message for f in outcome.findings if f.code == "check.failed"]
        if failed:
            return Assessment.blocked(failed[0])
        return Assessment.ok("passed")


def tally(records: list[dict[str, Any]]) -> str:
    """`3 requests, 2 SQL probes, 1 stored object`: what a passed check did, counted."""
    names = {"http": "request", "sql": "SQL probe", "storage": "storage check"}
    counts = {k: sum(1 for r in records if r.get("kind") == k) for k in names}
    parts = [f"{n} {names[k]}{'s' if n != 1 else ''}" for k, n in counts.items() if n]
    return ", ".join(parts) or f"{len(records)} assertions"


def changing_actions(params: CheckParams) -> list[str]:
    """The actions that change the deployment: requests other than GET/HEAD, committed SQL,
    deletes. A check without any runs in [checks] mode = read-only."""
    out = []
    for action in [*params.actions, *params.cleanup]:
        req = action.request
        if req is not None and req.method.upper() not in ("GET", "HEAD"):
            out.append(f"{action.name}: {req.method.upper()} {req.path}")
        elif (action.sql is not None and action.sql.write) or (
            action.storage is not None and action.storage.delete
        ):
            out.append(f"{action.name}: {_describe(action)}")
    return out


def _describe(action: Action) -> str:
    if action.request is not None:
        return f"{action.request.method} {action.request.path}"
    if action.sql is not None:
        return f"SQL as {action.sql.role}" + (" (committed)" if action.sql.write else "")
    assert action.storage is not None
    return "delete storage object" if action.storage.delete else "storage object"


class CheckRunner:
    """Runs one check's actions with a shared variable scope."""

    def __init__(self, settings: Settings, say: Any = None) -> None:
        from afasa_ops.infra import http

        self.settings = settings
        self.say = say or (lambda message: None)
        self.evidence = Evidence()
        cfg = settings.checks
        self.vars: dict[str, Any] = {
            k: v for k, v in cfg.model_dump().items() if isinstance(v, (str, int, float))
        }
        self.http = http.client(cfg.http_timeout_s, base_url=cfg.base_url.rstrip("/"))
        self._token: str | None = None
        self._connections: dict[str, Any] = {}  # role -> psycopg connection
        self._store: Storage | None = None  # [storage], opened at the first storage action
        self.touched: list[str] = []
        self._last = ""
        self._facts: dict[str, Any] = {}

    def close(self) -> None:
        self.http.close()
        for conn in self._connections.values():
            conn.close()
        if self._store is not None:
            self._store.close()

    def safe_vars(self) -> dict[str, Any]:
        safe: dict[str, Any] = redactor.redact_obj(dict(self.vars))
        return safe

    def run(self, params: CheckParams) -> None:
        for action in params.actions:
            if not self._wanted(action):
                continue
            deadline_s = action.timeout_s or params.timeout_s or self.settings.checks.timeout_s
            self._run_action(action, deadline_s)
            if action.name in _changing_names(params):
                self.touched.append(f"{action.name}: {self._last}")

    def clean_up(self, params: CheckParams) -> None:
        """Each cleanup action on its own: one failing does not keep the others from running;
        a failure is a warning in the evidence, and the record says what is left behind. A
        polled cleanup action waits (for a worker to apply a restore) like an action does."""
        changing = _changing_names(params)
        for action in params.cleanup:
            try:
                if not self._wanted(action):
                    continue
                if action.poll:
                    deadline_s = (
                        action.timeout_s or params.timeout_s or self.settings.checks.timeout_s
                    )
                    message = self._run_action(action, deadline_s, code="check.cleanup")
                    self.touched.append(redactor.redact(f"{action.name} (cleanup): {message}"))
                    continue
                message = self._once(action)
            except CheckFailed as exc:
                # A wait that ran out leaves nothing behind itself: it only did not see it.
                what = "left behind" if action.name in changing else "not confirmed"
                said = exc.message.removeprefix(f"{action.name}: ")  # a polled one names itself
                self.evidence.findings.append(
                    Finding.warning(
                        "check.cleanup_failed",
                        redactor.redact(f"{action.name}: {said}: {what}"),
                    )
                )
                self.touched.append(redactor.redact(f"{action.name}: FAILED, {exc.message}"))
                continue
            except Exception as exc:  # a driver error must not hide the others' cleanup
                self.touched.append(redactor.redact(f"{action.name}: FAILED, {exc}"))
                continue
            self.evidence.add(f"check.cleanup.{action.name}", message)
            self.touched.append(redactor.redact(f"{action.name} (cleanup): {message}"))

    def _wanted(self, action: Action) -> bool:
        """False when the action is conditional on a false value, or uses a value never
        captured (a cleanup of something the check did not get to create)."""
        try:
            for text in _templates(action):
                self.fill(text)
            if action.sql is not None and set(_BIND.findall(action.sql.query)) - set(self.vars):
                return False
            if action.when is not None:
                return self.fill(action.when).strip().lower() in ("true", "1", "yes")
        except CheckFailed:
            return False
        return True

    def _run_action(self, action: Action, deadline_s: float, code: str = "check") -> str:
        started = time.monotonic()
        deadline = started + deadline_s
        # Work a check waits for (a command, a report) is often done within a few hundred ms:
        # poll at the first interval for a second, then back off.
        wait = self.settings.checks.poll_initial_s
        attempt = 0
        said = ""
        while True:
            attempt += 1
            try:
                message = self._once(action)
            except CheckFailed as exc:
                if not action.poll or exc.final or time.monotonic() >= deadline:
                    suffix = (
                        f" (after {attempt} attempts, {deadline_s:.0f}s)" if action.poll else ""
                    )
                    if exc.evidence:
                        self.evidence.add(f"{code}.{action.name}", exc.evidence)
                    raise CheckFailed(f"{action.name}: {exc.message}{suffix}") from None
                if exc.message != said:  # the console hears each new state once
                    self.say(f"  {action.name}: not yet ({exc.message}); polling")
                    said = exc.message
                time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                if time.monotonic() - started >= _FAST_POLL_S:
                    wait = min(wait * 1.5, self.settings.checks.poll_max_s)
                continue
            self.evidence.add(f"{code}.{action.name}", message, attempts=attempt, **self._facts)
            self._last = message
            return message

    def _once(self, action: Action) -> str:
        # What the report shows of this action: method/route/status, row count, object key.
        self._facts = {}
        if action.request is not None:
            return self._request(action.request)
        if action.sql is not None:
            return self._sql(action.sql)
        assert action.storage is not None
        return self._storage(action.storage)

    # -- HTTP -------------------------------------------------------------------------------
    def _request(self, spec: RequestSpec) -> str:
        from afasa_ops.infra import http

        path = self.fill(spec.path)
        headers = {k: self.fill(v) for k, v in spec.headers.items()}
        if spec.auth == "token":
            headers["Authorization"] = f"Bearer {self.token()}"
        body = self.fill_obj(spec.body) if spec.body is not None else None
        shown = f"{spec.method} {path}" + (f" {json.dumps(body)}" if body is not None else "")
        try:
            response = http.request(
                spec.method,
                path,
                timeout_s=self.settings.checks.http_timeout_s,
                what=shown,
                using=self.http,
                headers=headers,
                json=body,
            )
        except http.HttpFailure as exc:
            raise CheckFailed(exc.message, shown) from exc
        excerpt = _excerpt(response.text)
        self._facts = {
            "kind": "http",
            "method": spec.method.upper(),
            "route": spec.path,
            "status": response.status_code,
        }
        seen = f"{shown} -> {response.status_code} {excerpt}"
        if response.status_code not in spec.expect_status:
            raise CheckFailed(
                f"{shown} answered {response.status_code}, expected "
                f"{' or '.join(map(str, spec.expect_status))}: {excerpt}",
                seen,
            )
        data: Any = None
        if spec.expect_json or spec.capture or spec.fail_json:
            try:
                data = response.json()
            except ValueError as exc:
                raise CheckFailed(f"{shown}: response is not JSON: {excerpt}", seen) from exc
        for path_expr, bad in spec.fail_json.items():
            got = json_path(data, path_expr)
            if _same(got, self.fill_obj(bad)):
                raise CheckFailed(f"{shown}: {path_expr} is {got!r}: {excerpt}", seen, final=True)
        for path_expr, wanted in spec.expect_json.items():
            got = json_path(data, path_expr)
            if not _same(got, self.fill_obj(wanted)):
                raise CheckFailed(f"{shown}: {path_expr} is {got!r}, expected {wanted!r}", seen)
        for name, path_expr in spec.capture.items():
            value = json_path(data, path_expr)
            if value is None:
                raise CheckFailed(f"{shown}: nothing at {path_expr} to capture as {name}", seen)
            self.vars[name] = value
        return seen

    def token(self) -> str:
        if self._token is None:
            self._token = resolve_token(self.settings)
        return self._token

    # -- SQL --------------------------------------------------------------------------------
    def _sql(self, spec: SqlSpec) -> str:
        from afasa_ops.infra.postgres import translated

        dsn, conn = self._connection(spec.role)
        tenant = str(self.vars["tenant_id"])
        names = set(_BIND.findall(spec.query))
        binds = {n: self.vars[n] for n in names if n in self.vars}
        missing = sorted(names - set(binds))
        if missing:
            raise CheckFailed(f"SQL needs {', '.join(missing)}, not captured before")
        where = f"as {spec.role}" + (f", tenant {tenant}" if spec.role == "app" else "")
        shown = f"SQL ({where}): {' '.join(spec.query.split())} {binds or ''}".strip()
        # An assertion never writes: its transaction is rolled back unless it is a cleanup's.
        with translated(dsn, f"running {shown}"), conn.transaction(force_rollback=not spec.write):
            if spec.role == "app":
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
            cur = conn.execute(_pyformat(spec.query), binds)
            columns = [c.name for c in cur.description or []]
            # A cleanup's DELETE returns no result set.
            fetched = cur.fetchmany(20) if cur.description is not None else []
            rows = [dict(zip(columns, row, strict=True)) for row in fetched]
        self._facts = {"kind": "sql", "role": spec.role, "rows": len(rows)}
        seen = f"{shown} -> {_excerpt(json.dumps(rows, default=str))}"
        if spec.expect == "rows" and not rows:
            raise CheckFailed(f"{shown} returned no rows", seen)
        if spec.expect == "no_rows" and rows:
            raise CheckFailed(f"{shown} returned rows: {_excerpt(str(rows))}", seen)
        if spec.expect == "value":
            got = next(iter(rows[0].values())) if rows else None
            if not _same(got, self.fill_obj(spec.value)):
                raise CheckFailed(f"{shown} gave {got!r}, expected {spec.value!r}", seen)
        for name, column in spec.capture.items():
            if not rows or column not in rows[0]:
                raise CheckFailed(f"{shown}: no column {column!r} to capture as {name}", seen)
            self.vars[name] = _plain(rows[0][column])
        return seen

    def _connection(self, role: str) -> tuple[str, Any]:
        """One connection per role for the check's actions, through the PostgreSQL driver."""
        from afasa_ops.infra.postgres import Timeouts, connect

        key = "admin_dsn" if role == "admin" else "app_dsn"
        dsn = require(self.settings, "database", key, f"a check runs SQL as {role}")
        if role not in self._connections:
            self._connections[role] = connect(dsn, timeouts=Timeouts.of(self.settings.database))
        return dsn, self._connections[role]

    # -- storage ----------------------------------------------------------------------------
    def _storage(self, spec: StorageSpec) -> str:
        from afasa_ops.errors import DriverError
        from afasa_ops.platform.storage import open_storage

        key = self.fill(spec.key)
        if self._store is None:
            self._store = open_storage(self.settings.storage, self.settings.base_dir)
        storage = self._store
        if spec.delete:
            try:
                storage.delete(key)
            except DriverError as exc:
                raise CheckFailed(f"deleting object {key} in {storage.url}: {exc}") from exc
            self._facts = {"kind": "storage", "key": key, "deleted": True}
            return f"object {key} deleted from {storage.url}"
        try:
            size = storage.size(key)
        except DriverError as exc:
            raise CheckFailed(f"object {key} in {storage.url}: {exc}") from exc
        if size is None:
            raise CheckFailed(f"object {key} not found in {storage.url}")
        self._facts = {"kind": "storage", "key": key, "size": size}
        return f"object {key} exists in {storage.url} ({size} bytes)"

    # -- templating -------------------------------------------------------------------------
    def fill(self, text: str) -> str:
        # Routes from config hold placeholders themselves ({device_id}): a few passes.
        for _ in range(3):
            new = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", self._var, text)
            if new == text:
                break
            text = new
        return text

    def _var(self, match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in self.vars:
            raise CheckFailed(f"{{{name}}} is neither a [checks] key nor captured before")
        return str(self.vars[name])

    def fill_obj(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.fill(value)
        if isinstance(value, list):
            return [self.fill_obj(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill_obj(v) for k, v in value.items()}
        return value


def resolve_token(settings: Settings) -> str:
    """The [checks] token as given, else one minted from [checks] token_signing_key, else
    from [api] dev_hs256_secret (development deployments)."""
    from afasa_ops.tokens import DEV_ISSUER, mint_token

    cfg = settings.checks
    given = secret_value(cfg.token)
    if given:
        return given
    key = secret_value(cfg.token_signing_key) or secret_value(settings.api.dev_hs256_secret)
    if not key:
        raise ConfigError(
            "[checks] has no token and no token_signing_key: the checks cannot authenticate",
            hint='set [checks] token = { env = "NAME" } or token_signing_key',
        )
    rs256 = key.lstrip().startswith("-----BEGIN")
    issuer = cfg.token_issuer or settings.api.oidc_issuer_url or (None if rs256 else DEV_ISSUER)
    if issuer is None:
        raise ConfigError("[checks] token_issuer (or [api] oidc_issuer_url) is needed to mint")
    return mint_token(
        key,
        issuer=issuer.rstrip("/"),
        audience=cfg.token_audience or settings.api.audience,
        subject=cfg.token_subject,
        tenant_id=cfg.tenant_id,
        roles=list(cfg.token_roles),
        kid=cfg.token_kid,
    )


def _changing_names(params: CheckParams) -> set[str]:
    return {line.split(":", 1)[0] for line in changing_actions(params)}


def _templates(action: Action) -> list[str]:
    """The templated texts of an action, to see whether every value it uses was captured."""
    out = [action.when] if action.when else []
    if action.request is not None:
        out += [action.request.path, json.dumps(action.request.body)]
    if action.storage is not None:
        out.append(action.storage.key)
    return out


# `:name` binds in a check's SQL (not `::type` casts), and psycopg's spelling of them.
_BIND = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


def _pyformat(query: str) -> str:
    return _BIND.sub(r"%(\1)s", query.replace("%", "%%"))


_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


def json_path(data: Any, expr: str) -> Any:
    """A small JSONPath subset: $.a.b[0].c; None when any part is missing."""
    if not expr.startswith("$"):
        raise ConfigError(f"JSON path {expr!r} must start with $")
    rest = expr[1:]
    current = data
    pos = 0
    while pos < len(rest):
        match = _PATH_PART.match(rest, pos)
        if match is None:
            raise ConfigError(f"JSON path {expr!r}: cannot read {rest[pos:]!r}")
        key, index = match.groups()
        if key is not None:
            current = current.get(key) if isinstance(current, dict) else None
        else:
            i = int(index)
            current = current[i] if isinstance(current, list) and i < len(current) else None
        if current is None:
            return None
        pos = match.end()
    return current


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _same(got: Any, wanted: Any) -> bool:
    got = _plain(got)
    if isinstance(wanted, bool) or isinstance(got, bool):
        return got is wanted or str(got).lower() == str(wanted).lower()
    return got == wanted or str(got) == str(wanted)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
