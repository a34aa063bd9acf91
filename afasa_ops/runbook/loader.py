"""Runbooks are YAML: phases, then steps, each a step kind with parameters.

Loading validates everything before anything runs: a mistake names the file, the phase,
the step, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from afasa_ops.errors import RunbookError
from afasa_ops.runbook.step import AnyStep, known_kinds, resolve_kind


@dataclass
class Phase:
    id: str
    title: str
    steps: list[AnyStep] = field(default_factory=list)
    # Its steps only judge (checks, probes) and run side by side, each once the steps it
    # names in `after` have passed (runner.Runner._run_side_by_side).
    concurrent: bool = False


@dataclass
class Runbook:
    name: str
    path: Traversable  # a file, or a runbook shipped in the package
    phases: list[Phase]
    parameters: dict[str, Any] = field(default_factory=dict)

    def phase(self, phase_id: str) -> Phase:
        for phase in self.phases:
            if phase.id == phase_id:
                return phase
        raise RunbookError(
            f"{self.path}: no phase {phase_id!r}; phases: {', '.join(p.id for p in self.phases)}"
        )

    def steps(self) -> list[AnyStep]:
        return [s for p in self.phases for s in p.steps]

    def find_step(self, step_id: str) -> AnyStep:
        exact = [s for s in self.steps() if s.id == step_id]
        if exact:
            return exact[0]
        short = [s for s in self.steps() if s.id.split(".", 1)[-1] == step_id]
        if len(short) > 1:
            raise RunbookError(
                f"step id {step_id!r} is ambiguous: it names "
                + ", ".join(s.id for s in short)
                + "; give the full id"
            )
        if short:
            return short[0]
        raise RunbookError(f"{self.path}: no step {step_id!r}; see `afasa-ops plan` for step ids")


class _LineDict(dict[str, Any]):
    line: int = 0


# libyaml's parser when PyYAML has it: the same documents, parsed several times faster.
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BASE_LOADER):  # type: ignore[misc]
    """Keeps the line of every mapping so errors can point at it."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_runbook(path: Traversable) -> Runbook:
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        from afasa_ops.resources import builtin_runbooks

        raise RunbookError(
            f"{label}: no such runbook file",
            hint="set [runbook] path to a runbook file, or to a shipped one: "
            + ", ".join(builtin_runbooks()),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(f"{label}: cannot read: {exc}") from None
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise RunbookError(f"{label}: invalid YAML at {where}: {exc.problem}") from None
    if not isinstance(doc, dict):
        raise RunbookError(f"{label}: a runbook is a mapping with `name` and `phases`")
    _only_keys(doc, {"name", "description", "parameters", "phases"}, label, "runbook")
    phases_doc = doc.get("phases")
    if not isinstance(phases_doc, list) or not phases_doc:
        raise RunbookError(f"{label}: `phases` must be a non-empty list")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RunbookError(f"{label}: `parameters` must be a mapping")
    seen: set[str] = set()
    phases = [_load_phase(p, label, seen) for p in phases_doc]
    return Runbook(str(doc.get("name") or Path(path.name).stem), path, phases, dict(parameters))


def _load_phase(doc: Any, label: str, seen: set[str]) -> Phase:
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise RunbookError(f"{label}{_at(doc)}: each phase needs an `id`")
    where = f"phase {doc['id']!r}"
    _only_keys(doc, {"id", "title", "steps", "concurrent"}, label, where)
    steps_doc = doc.get("steps") or []
    if not isinstance(steps_doc, list):
        raise RunbookError(f"{label}{_at(doc)}: {where}: `steps` must be a list")
    concurrent = doc.get("concurrent", False)
    if not isinstance(concurrent, bool):
        raise RunbookError(f"{label}{_at(doc)}: {where}: `concurrent` must be true or false")
    phase = Phase(doc["id"], str(doc.get("title") or doc["id"]), concurrent=concurrent)
    for step_doc in steps_doc:
        step = _load_step(step_doc, phase.id, label)
        if step.id in seen:
            raise RunbookError(f"{label}{_at(step_doc)}: step id {step.id!r} is used twice")
        _check_side_by_side(phase, step, label, step_doc)
        seen.add(step.id)
        phase.steps.append(step)
    return phase


def _check_side_by_side(phase: Phase, step: AnyStep, label: str, doc: Any) -> None:
    """`after` names earlier steps of a concurrent phase, which holds only steps that judge."""
    where = f"{label}{_at(doc)}: phase {phase.id!r} step {doc['id']!r}"
    if step.after and not phase.concurrent:
        raise RunbookError(
            f"{where}: `after` orders the steps of a concurrent phase; here steps already run "
            "in order (remove it, or set `concurrent: true` on the phase)"
        )
    earlier = {s.id for s in phase.steps}
    for name in step.after:
        if name not in earlier:
            raise RunbookError(
                f"{where}: after: {name.removeprefix(phase.id + '.')!r} is not an earlier "
                f"step of phase {phase.id!r}"
            )
    if phase.concurrent and not step.verification_only:
        raise RunbookError(
            f"{where}: kind {step.kind!r} changes the target, and a concurrent phase holds "
            "only steps that judge (checks, waits, probes): move it to a phase run in order"
        )


def _load_step(doc: Any, phase_id: str, label: str) -> AnyStep:
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise RunbookError(f"{label}{_at(doc)}: phase {phase_id!r}: each step needs an `id`")
    local_id = doc["id"]
    step_id = local_id if local_id.startswith(phase_id + ".") else f"{phase_id}.{local_id}"
    where = f"phase {phase_id!r} step {local_id!r}"
    _only_keys(doc, {"id", "kind", "title", "params", "after"}, label, where, doc)
    kind = doc.get("kind")
    if not isinstance(kind, str):
        raise RunbookError(f"{label}{_at(doc)}: {where}: missing `kind`")
    cls = resolve_kind(kind)
    if cls is None:
        raise RunbookError(
            f"{label}{_at(doc)}: {where}: unknown kind {kind!r}; known kinds: "
            + ", ".join(known_kinds())
        )
    raw_params = doc.get("params") or {}
    if not isinstance(raw_params, dict):
        raise RunbookError(f"{label}{_at(doc)}: {where}: `params` must be a mapping")
    try:
        params = cls.Params.model_validate(dict(raw_params))
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = ".".join(str(p) for p in err["loc"]) or "params"
        msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"].lower()
        raise RunbookError(
            f"{label}{_at(raw_params) or _at(doc)}: {where}: params.{field_name}: {msg}"
        ) from None
    after = doc.get("after") or []
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise RunbookError(f"{label}{_at(doc)}: {where}: `after` must be a list of step ids")
    full = tuple(a if a.startswith(phase_id + ".") else f"{phase_id}.{a}" for a in after)
    return cls(step_id, phase_id, str(doc.get("title") or local_id), params, full)


def _only_keys(
    doc: dict[str, Any], allowed: set[str], label: str, where: str, node: Any = None
) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise RunbookError(
            f"{label}{_at(node or doc)}: {where}: unknown field {unknown[0]!r}; "
            f"expected {', '.join(sorted(allowed))}"
        )


def _at(node: Any) -> str:
    line = getattr(node, "line", 0)
    return f":{line}" if line else ""
