"""The step contract and the registry of step kinds.

A step converges: check() reads, apply() changes only what check() found pending, verify()
proves the change took. Kinds are registered by name; the modules that hold them are imported
only when a runbook names them, so the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from afasa_ops.runbook.model import Assessment, Outcome

if TYPE_CHECKING:
    from afasa_ops.runbook.context import Context


class Params(BaseModel):
    """Base of every kind's parameters: unknown parameters are mistakes."""

    model_config = ConfigDict(extra="forbid")


_BaseParams = Params


class Step:
    kind: ClassVar[str] = ""
    Params: ClassVar[type[_BaseParams]] = _BaseParams
    # Host-level or destructive work: needs --yes or an interactive confirmation.
    needs_confirmation: ClassVar[bool] = False
    # Verification steps are listed in the JUnit report.
    verification: ClassVar[bool] = False

    def __init__(self, step_id: str, phase: str, title: str, params: _BaseParams) -> None:
        self.id = step_id
        self.phase = phase
        self.title = title
        self.params = params

    def check(self, ctx: Context) -> Assessment:
        raise NotImplementedError

    def apply(self, ctx: Context) -> Outcome:
        raise NotImplementedError

    def verify(self, ctx: Context) -> Assessment:
        return self.check(ctx)

    def rollback(self, ctx: Context) -> None:
        """Undo apply() when a later step of the same phase fails. Default: nothing to undo."""

    @property
    def has_rollback(self) -> bool:
        return type(self).rollback is not Step.rollback

    def services(self, ctx: Context) -> list[str]:
        """Compose services this step touches; their logs go into an incident bundle."""
        value: Any = getattr(self.params, "services", None)
        return list(value) if value else []


# kind -> module that registers it. Built-in kinds are listed here so loading a runbook
# imports only the domains it uses.
BUILTIN_KIND_MODULES: dict[str, str] = {
    "shell.check": "afasa_ops.steps.generic",
    "file.content": "afasa_ops.steps.generic",
    "doctor.config": "afasa_ops.steps.doctor",
    "doctor.repo": "afasa_ops.steps.doctor",
    "check.functional": "afasa_ops.steps.checks",
    "api.config": "afasa_ops.steps.api_config",
    "compose.pull": "afasa_ops.steps.services",
    "compose.up": "afasa_ops.steps.services",
    "compose.wait": "afasa_ops.steps.services",
    "schema.preflight": "afasa_ops.steps.schema",
    "schema.baseline": "afasa_ops.steps.schema",
    "schema.migrate": "afasa_ops.steps.schema",
    "schema.app_role": "afasa_ops.steps.schema",
    "schema.rls_audit": "afasa_ops.steps.schema",
    "schema.init_sql": "afasa_ops.steps.schema",
    "patch.apply": "afasa_ops.steps.patch",
    "git.clean": "afasa_ops.steps.git",
    "git.tag": "afasa_ops.steps.git",
    "git.branch": "afasa_ops.steps.git",
    "git.push_tag": "afasa_ops.steps.git",
    "docker.engine": "afasa_ops.steps.traefik",
    "traefik.compose": "afasa_ops.steps.traefik",
    "traefik.recreate": "afasa_ops.steps.traefik",
    "traefik.provider": "afasa_ops.steps.traefik",
    "traefik.routing": "afasa_ops.steps.traefik",
}

_REGISTRY: dict[str, type[Step]] = {}


def register(cls: type[Step]) -> type[Step]:
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no kind")
    _REGISTRY[cls.kind] = cls
    return cls


def resolve_kind(kind: str) -> type[Step] | None:
    if kind not in _REGISTRY and kind in BUILTIN_KIND_MODULES:
        importlib.import_module(BUILTIN_KIND_MODULES[kind])
    return _REGISTRY.get(kind)


def known_kinds() -> list[str]:
    return sorted(set(_REGISTRY) | set(BUILTIN_KIND_MODULES))


def load_plugins(modules: list[str]) -> None:
    for name in modules:
        importlib.import_module(name)
