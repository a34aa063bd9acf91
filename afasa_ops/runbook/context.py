"""What a step sees of the world: settings, the operator's options, drivers and shared facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afasa_ops.config import Settings
from afasa_ops.infra.shell import Shell
from afasa_ops.runbook.journal import Journal


@dataclass
class Options:
    """The operator's choices for one invocation."""

    yes: bool = False
    step_by_step: bool = False
    allow_dirty: bool = False
    no_commit: bool = False
    allow_engine_downgrade: bool = False
    allow_daemon_config: bool = False
    interactive: bool = False


def _never(question: str) -> bool:
    return False


def _quiet(message: str) -> None:
    return None


@dataclass
class Context:
    settings: Settings
    options: Options = field(default_factory=Options)
    shell: Shell = field(default_factory=Shell)
    run_id: str = ""
    # Runbook-level parameters (the repair date, branch names...), merged over defaults.
    params: dict[str, Any] = field(default_factory=dict)
    # Facts one step learns and later steps reuse within a run (engine version, ...).
    facts: dict[str, Any] = field(default_factory=dict)
    # Drivers built once per run, by name.
    drivers: dict[str, Any] = field(default_factory=dict)
    # The run's journal; None under plan and doctor, which record nothing.
    journal: Journal | None = None
    confirm: Callable[[str], bool] = _never
    say: Callable[[str], None] = _quiet

    @property
    def repo(self) -> Path:
        return self.settings.repo_path

    @property
    def state_dir(self) -> Path:
        return self.repo / ".afasa-ops"

    def state_file(self, name: str) -> Path:
        """A file of the tool's own state in the repo: .afasa-ops/ is created and kept out of
        git first, so even `plan` leaves `git status` clean."""
        from afasa_ops.runbook.journal import ensure_state_dir

        return ensure_state_dir(self.repo) / name

    def driver(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self.drivers:
            self.drivers[name] = factory()
        return self.drivers[name]

    def close(self) -> None:
        for drv in self.drivers.values():
            closer = getattr(drv, "close", None)
            if callable(closer):
                closer()
        self.drivers.clear()
