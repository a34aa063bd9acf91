"""The step contract and the registry of step kinds.

A step converges: check() reads, apply() changes only what check() found pending, verify()
proves the change took, judging apply's Outcome. A read-only step (ReadOnlyStep) has no
apply: when its check is pending, the runner lets verify judge again.

A kind's module follows from its name: `compose.up` is registered by
`afasa_ops.steps.compose`, imported the first time a runbook names the kind, so the CLI starts
fast and there is no table to keep. Plugins (`[runbook] plugins`) register their own kinds
on import.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from afasa_ops.runbook.model import Assessment, Outcome

if TYPE_CHECKING:
    from afasa_ops.runbook.context import Context

BUILTIN_PACKAGE = "afasa_ops.steps"


class Params(BaseModel):
    """Base of every kind's parameters: unknown parameters are mistakes."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=Params)


class ReadOnlyStep(Generic[P]):
    """A step that only judges: check, and verify (by default the same check)."""

    kind: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    # Host-level or destructive work: needs --yes or an interactive confirmation.
    needs_confirmation: ClassVar[bool] = False
    # Verification steps are listed in the JUnit report.
    verification: ClassVar[bool] = False
    # Only judges (waits, probes, functional checks that restore what they touch): a plan
    # lists it as "will run" when its check is pending, never as a pending change.
    verification_only: ClassVar[bool] = True

    def __init__(
        self, step_id: str, phase: str, title: str, params: P, after: tuple[str, ...] = ()
    ) -> None:
        self.id = step_id
        self.phase = phase
        self.title = title
        self.params = params
        # In a concurrent phase: the steps of the phase this one starts after (full ids).
        self.after = after

    def check(self, ctx: Context) -> Assessment:
        raise NotImplementedError

    def confirms(self, ctx: Context) -> bool:
        """Whether applying this step needs --yes or the operator's confirmation (a step
        whose risk depends on the operator's flags answers from them)."""
        return self.needs_confirmation

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        """Judge the target after apply (or, for a read-only step, after a pending check)."""
        return self.check(ctx)

    def services(self, ctx: Context, outcome: Outcome | None = None) -> list[str]:
        """Compose services this step touches; their logs go into an incident bundle."""
        value: Any = getattr(self.params, "services", None)
        return list(value) if value else []


class Step(ReadOnlyStep[P]):
    """A step that changes the target when its check finds it pending."""

    verification_only: ClassVar[bool] = False

    def apply(self, ctx: Context) -> Outcome:
        raise NotImplementedError

    def rollback(self, ctx: Context, outcome: Outcome) -> None:
        """Undo apply() when a later step of the same phase fails. Default: nothing to undo."""

    @property
    def has_rollback(self) -> bool:
        return type(self).rollback is not Step.rollback


AnyStep = ReadOnlyStep[Any]

_REGISTRY: dict[str, type[AnyStep]] = {}


def register(cls: type[ReadOnlyStep[P]]) -> type[ReadOnlyStep[P]]:
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no kind")
    _REGISTRY[cls.kind] = cls
    return cls


def module_of(kind: str) -> str:
    """The built-in module that registers a kind: its name before the first dot."""
    return f"{BUILTIN_PACKAGE}.{kind.split('.', 1)[0]}"


def resolve_kind(kind: str) -> type[AnyStep] | None:
    if kind not in _REGISTRY:
        name = module_of(kind)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but one of its imports does not
                raise
    return _REGISTRY.get(kind)


def builtin_kinds() -> list[str]:
    """Every built-in kind: each module of afasa_ops.steps imported (slow; for docs and tests)."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")
    return sorted(k for k, cls in _REGISTRY.items() if cls.__module__.startswith(BUILTIN_PACKAGE))


def known_kinds() -> list[str]:
    return sorted(set(_REGISTRY) | set(builtin_kinds()))


def load_plugins(modules: list[str]) -> None:
    for name in modules:
        importlib.import_module(name)
