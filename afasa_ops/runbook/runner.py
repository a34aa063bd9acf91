"""The runner: phases in order, each step checked, applied only where pending, verified.

plan runs check only and writes nothing. run takes the target's lock, journals every step,
stops at the first failure, rolls back that phase's applied steps, and writes an incident.
"""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from afasa_ops.errors import AfasaOpsError, ExitCode, UsageError
from afasa_ops.redact import redactor
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.incident import IncidentWriter
from afasa_ops.runbook.journal import Journal, JournalReader, new_run_id, now_iso
from afasa_ops.runbook.loader import Phase, Runbook
from afasa_ops.runbook.lock import RunLock
from afasa_ops.runbook.model import Assessment, Outcome, RunResult, State, Status, StepResult
from afasa_ops.runbook.step import AnyStep, Step


class Reporter(Protocol):
    def step_started(self, step: AnyStep) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...


class SilentReporter:
    def step_started(self, step: AnyStep) -> None:
        return None

    def step_finished(self, result: StepResult) -> None:
        return None


@dataclass
class Selection:
    phases: list[str] = field(default_factory=list)  # empty or ["all"]: every phase
    from_step: str | None = None
    only_step: str | None = None

    def resolve(self, runbook: Runbook) -> list[tuple[Phase, list[AnyStep]]]:
        wanted = [p for p in self.phases if p != "all"]
        phases = [runbook.phase(p) for p in wanted] if wanted else list(runbook.phases)
        # Phases always run in the runbook's order, whatever order they were named in.
        order = {p.id: i for i, p in enumerate(runbook.phases)}
        phases.sort(key=lambda p: order[p.id])
        selected = [(p, list(p.steps)) for p in phases]
        if self.only_step:
            step = runbook.find_step(self.only_step)
            return [(runbook.phase(step.phase), [step])]
        if self.from_step:
            start = runbook.find_step(self.from_step)
            if start.phase not in {p.id for p in phases}:
                raise UsageError(f"--from {self.from_step}: that step is not in the chosen phases")
            out: list[tuple[Phase, list[AnyStep]]] = []
            reached = False
            for phase, steps in selected:
                kept = []
                for step in steps:
                    reached = reached or step.id == start.id
                    if reached:
                        kept.append(step)
                if kept:
                    out.append((phase, kept))
            return out
        return selected


EXIT_FOR_STATUS = {
    "ok": ExitCode.OK,
    "pending": ExitCode.PENDING,
    "failed": ExitCode.FAILED,
    "blocked": ExitCode.BLOCKED,
    "interrupted": ExitCode.FAILED,
}


class _Stop(Exception):
    pass


class Runner:
    def __init__(
        self,
        runbook: Runbook,
        ctx: Context,
        reporter: Reporter | None = None,
    ) -> None:
        self.runbook = runbook
        self.ctx = ctx
        self.reporter = reporter or SilentReporter()
        # Steps the operator approved at the single up-front question.
        self._approved: set[str] = set()
        ctx.params = {**runbook.parameters, **ctx.params}

    # -- plan -------------------------------------------------------------------------------
    def plan(self, selection: Selection) -> RunResult:
        result = RunResult(new_run_id(), "plan", [], started_at=now_iso(), repo=str(self.ctx.repo))
        plan = selection.resolve(self.runbook)
        result.phases = [p.id for p, _ in plan]
        for _phase, steps in plan:
            for step in steps:
                self.reporter.step_started(step)
                step_result = self._assess_only(step)
                if step_result.status == Status.PENDING and step.verification_only:
                    # A wait or a probe changes nothing: the run will run it, not apply it.
                    step_result.status = Status.WILL_RUN
                result.steps.append(step_result)
                self.reporter.step_finished(step_result)
        statuses = {s.status for s in result.steps}
        result.status = (
            "blocked"
            if Status.BLOCKED in statuses or Status.FAILED in statuses
            else "pending"
            if Status.PENDING in statuses
            else "ok"
        )
        result.finished_at = now_iso()
        self.ctx.close()
        return result

    def _assess_only(self, step: AnyStep) -> StepResult:
        started = time.monotonic()
        self.ctx.shell.take()
        try:
            assessment = step.check(self.ctx)
            status = _status_of(assessment)
            error = None
        except AfasaOpsError as exc:
            assessment, status, error = Assessment.blocked(str(exc)), Status.BLOCKED, str(exc)
        except Exception as exc:
            assessment, status, error = Assessment.blocked(str(exc)), Status.FAILED, _trace(exc)
        return self._result(self.ctx, step, status, assessment, started, error=error)

    # -- run --------------------------------------------------------------------------------
    def run(self, selection: Selection) -> RunResult:
        run_id = new_run_id()
        self.ctx.run_id = run_id
        with RunLock(self.ctx.repo, run_id):
            resumed = self._interrupted_run()
            if resumed and not selection.phases and not selection.only_step:
                selection = Selection(phases=resumed.phases, from_step=selection.from_step)
            plan = selection.resolve(self.runbook)
            journal = Journal(self.ctx.repo, run_id)
            self.ctx.journal = journal
            result = RunResult(
                run_id,
                "run",
                [p.id for p, _ in plan],
                started_at=now_iso(),
                repo=str(self.ctx.repo),
                resumed_from=resumed.run_id if resumed else None,
                run_dir=str(journal.dir),
            )
            if resumed:
                self.ctx.say(
                    f"resuming run {resumed.run_id} ({resumed.message}): "
                    "steps already done are checked again, not applied blindly"
                )
            journal.write(
                "run_started",
                run_id=run_id,
                mode="run",
                phases=result.phases,
                pid=os.getpid(),
                resumed_from=result.resumed_from,
                steps=[s.id for _, steps in plan for s in steps],
            )
            try:
                refusal = self._confirm_up_front(plan, result)
                if refusal:
                    result.status = "blocked"
                    result.message = refusal
                    raise _Stop
                for phase, steps in plan:
                    self._run_phase(phase, steps, result, journal)
                result.status = "ok"
                if not any(s.status == Status.CHANGED for s in result.steps):
                    # A converged target: say so, so a rerun is visibly a no-op.
                    result.message = (
                        f"nothing changed: all {len(result.steps)} steps already as wanted"
                    )
            except _Stop:
                pass
            finally:
                result.finished_at = now_iso()
                journal.write(
                    "run_finished",
                    status=result.status,
                    incident=result.incident,
                    message=result.message,
                )
                self.ctx.close()
        return result

    def _confirm_up_front(
        self, plan: list[tuple[Phase, list[AnyStep]]], result: RunResult
    ) -> str | None:
        """Decide before the first change whether the run may make its changes: None to go
        ahead, or why not (then nothing has been changed)."""
        opts = self.ctx.options
        steps = [s for _, phase_steps in plan for s in phase_steps]
        if opts.yes and not opts.step_by_step:
            return None
        if not opts.step_by_step and not any(s.confirms(self.ctx) for s in steps):
            return None
        applying, asking = self._foresee(steps)
        if not asking:
            return None
        if opts.step_by_step and opts.interactive:
            return None  # --step asks before each step, as it goes
        listed = ", ".join(step.id for step, _ in asking)
        if not opts.interactive:
            result.steps.extend(r for _, r in applying)
            return (
                f"{len(asking)} step(s) that would apply need confirmation: {listed}; "
                "nothing was changed: re-run with --yes"
            )
        for step, res in applying:
            self.ctx.say(f"will apply {step.id}: {res.summary}")
            if res.diff:
                self.ctx.say(res.diff)
        if self.ctx.confirm(f"Apply these {len(applying)} step(s), {listed} included?"):
            self._approved = {step.id for step, _ in applying}
            return None
        result.steps.extend(r for _, r in applying)
        return "declined by the operator before the first change; nothing was changed"

    def _foresee(
        self, steps: list[AnyStep]
    ) -> tuple[list[tuple[AnyStep, StepResult]], list[tuple[AnyStep, StepResult]]]:
        """(the steps that would apply, those of them that need confirmation). A step after
        one that will change things may become pending through that change, so from the
        first pending change on every changing step that is not skipped by design counts as
        applying: the operator is asked about what may happen, not only what is certain."""
        applying: list[tuple[AnyStep, StepResult]] = []
        change_before = False
        for step in steps:
            res = self._assess_only(step)
            if step.verification_only:
                continue
            if res.status == Status.BLOCKED or res.status == Status.FAILED:
                if not change_before:
                    break  # the run stops here, before any change
                continue
            if res.status == Status.PENDING:
                change_before = True
                applying.append((step, res))
            elif res.status == Status.OK and change_before:
                res.status = Status.PENDING
                res.summary = f"may apply after the changes before it ({res.summary})"
                applying.append((step, res))
        asking = [
            (s, r) for s, r in applying if self.ctx.options.step_by_step or s.confirms(self.ctx)
        ]
        return applying, asking

    def _interrupted_run(self) -> RunResult | None:
        latest = JournalReader(self.ctx.repo).latest(mode="run")
        return latest if latest and latest.status == "interrupted" else None

    def _run_phase(
        self, phase: Phase, steps: list[AnyStep], result: RunResult, journal: Journal
    ) -> None:
        if self._side_by_side(phase, steps):
            self._run_side_by_side(steps, result, journal)
            return
        applied: list[tuple[Step[Any], Outcome]] = []
        for step in steps:
            self.reporter.step_started(step)
            journal.write("step_started", step=step.id, phase=phase.id)
            step_result = self._converge(step, applied)
            self._finish_step(step_result, result, journal)
            if step_result.status in (Status.FAILED, Status.BLOCKED):
                failed_outcome = applied[-1][1] if applied and applied[-1][0] is step else None
                self._stop_at(step, step_result, result, journal, applied, failed_outcome)

    def _side_by_side(self, phase: Phase, steps: list[AnyStep]) -> bool:
        """A concurrent phase runs side by side, unless the operator is asked about its steps
        (`--step`, or a step that needs confirmation): one question at a time, in order."""
        if not phase.concurrent or len(steps) < 2 or self.ctx.options.step_by_step:
            return False
        return not any(s.confirms(self.ctx) and not self.ctx.options.yes for s in steps)

    def _run_side_by_side(self, steps: list[AnyStep], result: RunResult, journal: Journal) -> None:
        """A concurrent phase: its steps only judge, so each starts as soon as the steps it
        comes `after` have passed, beside the others, on a branch of the context of its own
        (its connections, its shell record). Results are reported, journaled and judged in
        the runbook's order, what a step said with them; the first that failed stops the run
        once all have finished (a check always cleans up after itself)."""
        futures: dict[str, Future[tuple[StepResult, list[str]]]] = {}
        with ThreadPoolExecutor(len(steps), "afasa-step") as pool:
            for step in steps:
                first = [futures[a] for a in step.after if a in futures]
                futures[step.id] = pool.submit(self._converge_after, step, first)
            stop: tuple[AnyStep, StepResult] | None = None
            for step in steps:
                self.reporter.step_started(step)
                journal.write("step_started", step=step.id, phase=step.phase)
                step_result, said = futures[step.id].result()
                for line in said:
                    self.ctx.say(line)
                self._finish_step(step_result, result, journal)
                if stop is None and step_result.status in (Status.FAILED, Status.BLOCKED):
                    stop = (step, step_result)
        if stop is not None:
            self._stop_at(*stop, result, journal, [], None)

    def _converge_after(
        self, step: AnyStep, first: list[Future[tuple[StepResult, list[str]]]]
    ) -> tuple[StepResult, list[str]]:
        branch = self.ctx.branch()
        said: list[str] = []
        branch.say = said.append
        try:
            for future in first:
                before = future.result()[0]
                if before.status in (Status.FAILED, Status.BLOCKED):
                    why = f"not run: it comes after {before.id}, which {before.status.value}"
                    blocked = Assessment.blocked(why)
                    return self._result(branch, step, Status.BLOCKED, blocked, time.monotonic()), []
            return self._converge(step, [], branch), said
        finally:
            branch.close()

    def _finish_step(self, step_result: StepResult, result: RunResult, journal: Journal) -> None:
        result.steps.append(step_result)
        journal.write("step_finished", step=step_result.id, result=step_result.to_json())
        self.reporter.step_finished(step_result)

    def _stop_at(
        self,
        step: AnyStep,
        step_result: StepResult,
        result: RunResult,
        journal: Journal,
        applied: list[tuple[Step[Any], Outcome]],
        failed_outcome: Outcome | None,
    ) -> None:
        """The run stops at this failed or blocked step: a failure rolls back what the phase
        applied and writes an incident."""
        result.status = step_result.status.value
        result.message = f"step {step.id} {step_result.status}: {step_result.summary}"
        if step_result.status == Status.FAILED:
            self._rollback(applied, journal)
            result.incident = self._incident(step, step_result, failed_outcome)
        raise _Stop

    def _converge(
        self,
        step: AnyStep,
        applied: list[tuple[Step[Any], Outcome]],
        ctx: Context | None = None,
    ) -> StepResult:
        """Check, and where pending apply and verify, on the run's context or `ctx` (a branch)."""
        ctx = ctx or self.ctx
        started = time.monotonic()
        ctx.shell.take()
        try:
            assessment = step.check(ctx)
        except AfasaOpsError as exc:
            return self._result(ctx, step, Status.BLOCKED, Assessment.blocked(str(exc)), started)
        except Exception as exc:
            return self._result(
                ctx, step, Status.FAILED, Assessment.blocked(str(exc)), started, _trace(exc)
            )
        if assessment.state != State.PENDING:
            return self._result(ctx, step, _status_of(assessment), assessment, started)
        refusal = self._confirm(step, assessment)
        if refusal:
            assessment.summary = refusal
            return self._result(ctx, step, Status.BLOCKED, assessment, started)
        try:
            if isinstance(step, Step):
                outcome = step.apply(ctx)
                applied.append((step, outcome))
            else:  # read-only: nothing to apply, verify judges again
                outcome = Outcome(False)
            verified = step.verify(ctx, outcome)
        except AfasaOpsError as exc:
            assessment.summary = str(exc)
            status = Status.BLOCKED if exc.exit_code == ExitCode.BLOCKED else Status.FAILED
            return self._result(ctx, step, status, assessment, started, str(exc))
        except Exception as exc:
            assessment.summary = f"apply failed: {exc}"
            return self._result(ctx, step, Status.FAILED, assessment, started, _trace(exc))
        findings = assessment.findings + outcome.findings
        if verified.state != State.OK:
            assessment.findings = findings + verified.findings
            assessment.summary = f"verify after apply: {verified.summary}"
            failed = self._result(ctx, step, Status.FAILED, assessment, started, assessment.summary)
            # What apply touched still counts (a failed check's cleanup, for the report).
            failed.artifacts = outcome.artifacts
            return failed
        assessment.findings = findings
        judged = assessment.summary if isinstance(step, Step) else verified.summary
        if step.verification_only and not outcome.changed:
            # It only waited or probed, then judged: what its check saw before is stale.
            assessment.findings = outcome.findings + verified.findings
            judged = verified.summary
        # A read-only step's own word is its verify's; a change says what apply did.
        assessment.summary = outcome.summary or judged
        status = Status.CHANGED if outcome.changed else Status.OK
        res = self._result(ctx, step, status, assessment, started)
        res.packages = outcome.packages
        res.artifacts = outcome.artifacts
        return res

    def _confirm(self, step: AnyStep, assessment: Assessment) -> str | None:
        """None to go ahead, or why not."""
        opts = self.ctx.options
        asks = opts.step_by_step or (step.confirms(self.ctx) and not opts.yes)
        if not asks or (step.id in self._approved and not opts.step_by_step):
            return None
        if not opts.interactive:
            return f"{step.id} needs confirmation: re-run with --yes to apply it"
        question = f"Apply {step.id}: {assessment.summary}?"
        if self.ctx.confirm(question):
            return None
        return f"declined by the operator at {step.id}"

    def _rollback(self, applied: list[tuple[Step[Any], Outcome]], journal: Journal) -> None:
        for step, outcome in reversed(applied):
            if not step.has_rollback:
                continue
            try:
                step.rollback(self.ctx, outcome)
                journal.write("step_rolled_back", step=step.id)
                self.ctx.say(f"rolled back {step.id}")
            except Exception as exc:
                journal.write("step_rollback_failed", step=step.id, error=str(exc))
                self.ctx.say(f"rollback of {step.id} failed: {redactor.redact(str(exc))}")

    def _incident(
        self, step: AnyStep, step_result: StepResult, outcome: Outcome | None
    ) -> str | None:
        try:
            services = step.services(self.ctx, outcome)
        except Exception:
            services = []
        try:
            incident = IncidentWriter(self.ctx.settings, self.ctx.run_id).write(
                step_result, services
            )
        except Exception as exc:
            self.ctx.say(f"could not write the incident bundle: {exc}")
            return None
        return str(incident.archive)

    def _result(
        self,
        ctx: Context,
        step: AnyStep,
        status: Status,
        assessment: Assessment,
        started: float,
        error: str | None = None,
    ) -> StepResult:
        if status == Status.OK and assessment.skip_reason:
            status = Status.SKIPPED
        return StepResult(
            id=step.id,
            phase=step.phase,
            title=step.title,
            kind=step.kind,
            status=status,
            summary=redactor.redact(assessment.summary),
            findings=assessment.findings,
            diff=assessment.diff,
            commands=ctx.shell.take(),
            duration_s=round(time.monotonic() - started, 3),
            error=redactor.redact(error) if error else None,
            verification=step.verification,
        )


def _status_of(assessment: Assessment) -> Status:
    if assessment.state == State.OK:
        return Status.SKIPPED if assessment.skip_reason else Status.OK
    return Status.PENDING if assessment.state == State.PENDING else Status.BLOCKED


def _trace(exc: Exception) -> str:
    return redactor.redact("".join(traceback.format_exception_only(type(exc), exc)).strip())


def exit_code_for(result: RunResult) -> ExitCode:
    return EXIT_FOR_STATUS.get(result.status, ExitCode.FAILED)
