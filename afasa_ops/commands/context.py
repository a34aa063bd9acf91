"""What every command does before it prints anything: teach the redactor the target's secrets."""

from __future__ import annotations

from afasa_ops.config import SecretRef, Settings, section_classes
from afasa_ops.errors import AfasaOpsError
from afasa_ops.redact import redactor


def learn_secrets(settings: Settings) -> None:
    """Teach the redactor every secret the target holds before anything is printed or journaled:
    the config's references, and the compose project's secret-named variables."""
    for section_name in section_classes():
        section = getattr(settings, section_name)
        for key in type(section).model_fields:
            value = getattr(section, key)
            if isinstance(value, SecretRef):
                value.get()
    try:
        from afasa_ops.compose.project import load_project, secret_values

        project = load_project(settings.repo_path, settings.compose.files)
        redactor.add_many(secret_values(project))
    except (AfasaOpsError, OSError):
        pass  # no compose project yet: nothing to learn from it
