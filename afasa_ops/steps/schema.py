"""Phase 2 step kinds: preflight, baseline, migrate, app role, RLS audit, init SQL for fresh volumes.

Migrations run over the admin DSN: init SQL only runs on an empty data volume, so on a running
system the tool applies changes over a connection (and writes the same DDL into the AFASA
repo's infra/postgres/init/ so an empty volume ends up with the same schema).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from afasa_ops.files import atomic_write, unified_diff
from afasa_ops.findings import Finding
from afasa_ops.runbook.commits import commit_change, required_message
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.files import replace_file
from afasa_ops.runbook.model import Assessment, Outcome, State
from afasa_ops.runbook.step import Params, ReadOnlyStep, Step, register
from afasa_ops.schema.settings import SchemaSettings, migrations_dir

INIT_MARKER = "-- afasa-ops: schema for fresh volumes"


def schema_settings(ctx: Context) -> SchemaSettings:
    return SchemaSettings.from_settings(ctx.settings)


def unconfigured(ctx: Context) -> Assessment | None:
    """Schema steps read [database] once per call; driver errors surface as blocked/failed.
    Without an admin DSN (a checkout not yet wired to its database) they are skipped, with
    the reason shown, like a patch step without a bundle."""
    from afasa_ops.schema.settings import admin_dsn_missing

    reason = admin_dsn_missing(ctx.settings)
    return Assessment.skipped(reason) if reason else None


@register
class Preflight(ReadOnlyStep[Params]):
    """Required extensions are available, no applied file changed, the database is AFASA's."""

    kind = "schema.preflight"

    def check(self, ctx: Context) -> Assessment:
        if skipped := unconfigured(ctx):
            return skipped
        from afasa_ops.schema.migrator import make_plan

        plan = make_plan(ctx.postgres, schema_settings(ctx))
        reason = plan.blocked_reason
        if reason and plan.inspection.state != "unbaselined":
            return Assessment.blocked(reason, plan.findings())
        insp = plan.inspection
        return Assessment.ok(
            f"database {insp.database} ({insp.state}, PostgreSQL {insp.server_major}): "
            f"extensions available, {len(insp.applied)} migration(s) recorded",
            [
                f
                for f in plan.findings()
                if f.code not in ("db.migration_pending", "db.not_baselined")
            ],
        )


@register
class Baseline(Step[Params]):
    """A database made by the AFASA init SQL (no ledger) is checked and recorded as baseline."""

    kind = "schema.baseline"
    needs_confirmation = True

    def check(self, ctx: Context) -> Assessment:
        if skipped := unconfigured(ctx):
            return skipped
        from afasa_ops.schema import baseline
        from afasa_ops.schema.inspect import inspect

        pg = ctx.postgres
        state = inspect(pg).state
        if state == "managed":
            return Assessment.ok("the ledger exists: baseline recorded earlier")
        if state == "fresh":
            return Assessment.skipped("empty database: migrate creates the schema")
        report = baseline.check(pg, schema_settings(ctx))
        reason = report.blocked_reason()
        if reason:
            return Assessment.blocked(reason, report.findings)
        adopted = f", adopting {len(report.drift)} difference(s)" if report.drift else ""
        return Assessment.pending(
            f"AFASA init-SQL database without a ledger: record {report.migration.path.name} "
            f"as the baseline{adopted}",
            report.findings,
        )

    def apply(self, ctx: Context) -> Outcome:
        from afasa_ops.schema import baseline

        report = baseline.record(ctx.postgres, schema_settings(ctx))
        return Outcome(report.recorded, f"recorded {report.migration.path.name} as the baseline")


@register
class Migrate(Step[Params]):
    """Pending migrations applied, each with its ledger row in one transaction."""

    kind = "schema.migrate"

    def check(self, ctx: Context) -> Assessment:
        if skipped := unconfigured(ctx):
            return skipped
        from afasa_ops.schema.migrator import make_plan, render

        plan = make_plan(ctx.postgres, schema_settings(ctx))
        state = plan.inspection.state
        reason = plan.blocked_reason
        if reason and state != "unbaselined":
            return Assessment.blocked(reason, plan.findings())
        if not plan.pending:
            return Assessment.ok(f"all {len(plan.migrations)} migrations applied")
        names = ", ".join(m.path.name for m in plan.pending)
        if state == "unbaselined":
            return Assessment.pending(f"after the baseline: {names}", plan.findings())
        return Assessment.pending(f"to apply: {names}", plan.findings(), diff=render(plan))

    def apply(self, ctx: Context) -> Outcome:
        from afasa_ops.schema.migrator import migrate

        result = migrate(ctx.postgres, schema_settings(ctx))
        return Outcome(
            bool(result.applied),
            f"applied {', '.join(result.applied) or 'nothing'}; app role grants re-applied",
            artifacts={
                "applied": result.applied,
                "migrations": [{"file": f, "sha256": c} for f, c in result.checksums.items()],
                "extensions": result.extensions,
            },
        )

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        from afasa_ops.schema.migrator import verify

        findings = verify(ctx.postgres, schema_settings(ctx))
        errors = [f for f in findings if f.severity == "error" or f.code == "db.migration_pending"]
        if errors:
            return Assessment.blocked(errors[0].message, findings)
        return Assessment.ok("every migration applied, unchanged and verified", findings)


@register
class AppRole(Step[Params]):
    """The services' role: LOGIN NOSUPERUSER NOBYPASSRLS, owning nothing, with its grants."""

    kind = "schema.app_role"

    def check(self, ctx: Context) -> Assessment:
        if skipped := unconfigured(ctx):
            return skipped
        from afasa_ops.schema.rls import role_findings
        from afasa_ops.schema.roles import excess_grants, missing_grants, role_state

        cfg = schema_settings(ctx)
        pg = ctx.postgres
        state = role_state(pg, cfg.app_role)
        findings = role_findings(cfg.app_role, state, f"[database] app_role {cfg.app_role}")
        if state.exists and not state.login:
            findings.append(Finding.error("db.app_role_nologin", f"{cfg.app_role} cannot log in"))
        missing = missing_grants(pg, cfg.app_role) if state.exists else []
        if missing:
            findings.append(
                Finding.warning(
                    "db.app_role_grants", f"{cfg.app_role} lacks grants on {', '.join(missing)}"
                )
            )
        excess = excess_grants(pg, cfg.app_role) if state.exists else []
        if excess:
            findings.append(
                Finding.error(
                    "db.app_role_excess",
                    f"{cfg.app_role} holds more than the services need: {', '.join(excess)}",
                )
            )
        if findings:
            return Assessment.pending(f"role {cfg.app_role} needs converging", findings)
        return Assessment.ok(f"role {cfg.app_role} is LOGIN NOSUPERUSER NOBYPASSRLS with grants")

    def apply(self, ctx: Context) -> Outcome:
        from afasa_ops.schema.roles import ensure_app_role

        cfg = schema_settings(ctx)
        ensure_app_role(ctx.postgres, cfg.app_role, cfg.app_password)
        return Outcome(True, f"role {cfg.app_role} ensured")


@register
class RlsAudit(ReadOnlyStep[Params]):
    """Every tenant table: RLS enabled and forced, a policy with USING and WITH CHECK, the
    services' role not bypassing it; then a live isolation probe as that role."""

    kind = "schema.rls_audit"
    verification = True

    def check(self, ctx: Context) -> Assessment:
        if skipped := unconfigured(ctx):
            return skipped
        from afasa_ops.schema.migrator import make_plan

        findings, role = self._audit(ctx)
        if not findings:
            return Assessment.ok(f"RLS enforced on every tenant table; the probe as {role} passed")
        plan = make_plan(ctx.postgres, schema_settings(ctx))
        if (plan.pending and not plan.blocked_reason) or plan.inspection.state == "unbaselined":
            # The migrate step of this phase fixes RLS; the audit runs again as verify.
            return Assessment.pending(
                f"{len(findings)} isolation finding(s); re-audited after the pending migrations",
                findings,
            )
        return Assessment.blocked(
            f"tenant isolation does not hold: {findings[0].message}", findings
        )

    def _audit(self, ctx: Context) -> tuple[list[Finding], str]:
        from afasa_ops.schema.rls import audit, leak_probe, probe, services_role

        cfg = schema_settings(ctx)
        pg = ctx.postgres
        findings = audit(pg, cfg.app_dsn, cfg.app_role)
        role, _ = services_role(pg, cfg.app_dsn, cfg.app_role)
        if not any(f.code == "db.app_role_missing" for f in findings):
            findings += probe(pg, role)
        if cfg.app_dsn:
            findings += leak_probe(cfg.app_dsn, cfg.timeouts)
        return findings, role

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        # Read-only: after the phase's migrations, the audit runs again.
        findings, role = self._audit(ctx)
        if findings:
            return Assessment.blocked(
                f"tenant isolation does not hold: {findings[0].message}", findings
            )
        return Assessment.ok(f"RLS enforced on every tenant table; the probe as {role} passed")


class InitReplayParams(Params):
    directory: str = "infra/postgres/init"


class InitSqlParams(InitReplayParams):
    message: str | None = Field(
        default=None, description="The commit message of the file (the runbook gives it)."
    )


def init_sql_text(mig_dir: Path | None) -> str:
    """The DDL after the AFASA baseline, plus the ledger rows, for an empty data volume."""
    from afasa_ops.schema import migrations as mig_files
    from afasa_ops.schema.migrator import LEDGER_DDL, ledger_insert

    migs = mig_files.load(mig_dir)
    parts = [
        INIT_MARKER,
        "-- Written by afasa-ops from its schema/ migrations: the same DDL `afasa-ops schema",
        "-- migrate` applies over a connection, recorded in the same ledger.",
        "",
    ]
    for m in migs[1:]:
        # Without the `-- depends:` lines, which only `schema baseline` reads (and which the
        # checksum leaves out): the file stays as earlier versions wrote it.
        parts += [f"-- {m.path.name}", mig_files.DEPENDS_LINE.sub("", m.body).strip(), ""]
    parts.append(LEDGER_DDL + ";")
    parts += [ledger_insert(m) for m in migs]
    return "\n".join(parts) + "\n"


@register
class InitSql(Step[InitSqlParams]):
    """The AFASA repo's init directory holds the new DDL as its next numbered file."""

    kind = "schema.init_sql"
    Params = InitSqlParams

    def _target(self, ctx: Context) -> tuple[Path, str | None]:
        p = self.params
        directory = ctx.repo / p.directory
        files = sorted(directory.glob("*.sql")) if directory.is_dir() else []
        for f in files:
            if f.read_text().startswith(INIT_MARKER):
                return f, f.read_text()
        prefixes = [m[1] for f in files if (m := re.match(r"(\d+)_", f.name))]
        numbers = [int(n) for n in prefixes]
        # Keep the directory's numbering width (001_init.sql -> 003_...).
        width = max((len(n) for n in prefixes), default=3)
        nxt = (max(numbers) + 1) if numbers else 1
        return directory / f"{nxt:0{width}d}_afasa_ops_schema.sql", None

    def check(self, ctx: Context) -> Assessment:
        path, current = self._target(ctx)
        wanted = init_sql_text(migrations_dir(ctx.settings))
        rel = str(path.relative_to(ctx.repo))
        if current == wanted:
            return Assessment.ok(f"{rel} holds the schema for fresh volumes")
        return Assessment.pending(
            f"write {rel} so an empty volume gets the same schema",
            diff=unified_diff(current or "", wanted, rel),
        )

    def apply(self, ctx: Context) -> Outcome:
        path, current = self._target(ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(ctx, path, init_sql_text(migrations_dir(ctx.settings)))
        rel = str(path.relative_to(ctx.repo))
        record = commit_change(ctx, [rel], required_message(self.id, self.params.message))
        return Outcome(
            True,
            f"wrote {rel}",
            artifacts={"commit": record.commit, "path": rel},
            undo={"path": path, "previous": current},
        )

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        written = self.check(ctx)
        if written.state != State.OK:
            return written
        # The file is in place; whether an empty volume ever reaches it is the replay's word.
        path, _ = self._target(ctx)
        return replay_assessment(ctx, path.parent, ours=path.name)

    def rollback(self, ctx: Context, outcome: Outcome) -> None:
        path: Path = outcome.undo["path"]
        previous: str | None = outcome.undo["previous"]
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, previous)


@register
class InitReplay(ReadOnlyStep[InitReplayParams]):
    """An empty data volume gets through every init file: they are replayed, in the
    entrypoint's order, on a scratch database of the same server (dropped afterwards)."""

    kind = "schema.init_replay"
    Params = InitReplayParams
    verification = True

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        ours = next((f.name for f in (ctx.repo / p.directory).glob("*.sql") if _is_ours(f)), None)
        return replay_assessment(ctx, ctx.repo / p.directory, ours=ours)


def _is_ours(path: Path) -> bool:
    with path.open() as f:
        return f.read(len(INIT_MARKER)) == INIT_MARKER


def replay_assessment(ctx: Context, directory: Path, ours: str | None) -> Assessment:
    """The replay's verdict. A file of ours that fails is this tool's fault (blocked); an
    AFASA file that fails, or an extension this server lacks, is reported, not fixed."""
    from afasa_ops.schema.replay import replay
    from afasa_ops.schema.settings import admin_dsn_missing

    if reason := admin_dsn_missing(ctx.settings):
        return Assessment.skipped(reason)
    rel = directory.relative_to(ctx.repo) if directory.is_relative_to(ctx.repo) else directory
    if not directory.is_dir():
        return Assessment.skipped(f"no init directory {rel}")
    cfg = schema_settings(ctx)
    result = replay(cfg.admin_dsn, directory, cfg.timeouts)
    findings = [
        Finding.info("db.init_not_replayed", f"{rel}/{name}: not SQL, not replayed")
        for name in result.skipped
    ]
    if result.complete:
        return Assessment.ok(
            f"an empty volume runs all {len(result.applied)} files of {rel}: "
            + ", ".join(result.applied),
            findings,
        )
    where = f"{rel}/{result.where()}"
    never = [f.name for f in sorted(directory.glob("*.sql")) if f.name > str(result.failed)]
    if result.missing_extension:
        findings.append(
            Finding.warning(
                "db.init_replay_incomplete",
                f"replay stopped at {where}: this server lacks extension "
                f"{result.missing_extension}, so the files after it were not checked here",
                extension=result.missing_extension,
            )
        )
        return Assessment.ok(f"replayed {len(result.applied)} file(s); {where}", findings)
    if result.failed == ours:
        return Assessment.blocked(f"fresh volumes fail in afasa-ops' own file: {where}", findings)
    findings.append(
        Finding.warning(
            "db.init_sql_broken",
            f"fresh volumes stop at {where}"
            + (f"; never run: {', '.join(never)}" if never else "")
            + f". Fix {result.failed}: the entrypoint stops at its first error",
            file=result.failed,
            never_run=never,
        )
    )
    return Assessment.ok(
        f"the running database is unaffected, but an empty volume stops at {result.failed}",
        findings,
    )
