"""Secrets never reach the terminal, the journal, the report or an incident bundle.

Two nets: known secret values (from the config's references, from environment variables whose
names say they are secret, from compose files) are replaced wherever they appear; and patterns
catch secrets the tool was never told about (passwords in DSNs and URLs, bearer tokens,
NAME=value pairs whose name says secret).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
ALWAYS_SECRET = ("AFASA_MASTER_KEY_BASE64",)
# Values shorter than this are not learned: masking "1" or "true" everywhere destroys output.
MIN_SECRET_LEN = 4

_PATTERNS: list[re.Pattern[str]] = [
    # scheme://user:password@host
    re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'\"]*:)(?P<secret>[^@\s'\"]+)(?=@)"),
    # Authorization: Bearer abc / X-Authorization: Bearer abc
    re.compile(r"(?P<pre>\b[Bb]earer\s+)(?P<secret>[A-Za-z0-9._~+/=-]{4,})"),
    # libpq key/value DSN: password=abc
    re.compile(r"(?P<pre>\bpassword\s*=\s*)(?P<secret>'[^']*'|[^\s'\"]+)", re.IGNORECASE),
    # NAME=value or NAME: value where NAME says secret (env files, compose, command lines)
    re.compile(
        r"(?P<pre>\b[A-Za-z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|_KEY|APIKEY|MASTER_KEY_BASE64)"
        r"[A-Za-z0-9_]*\"?\s*[=:]\s*\"?)(?P<secret>[^\s\"',}]{2,})",
        re.IGNORECASE,
    ),
]


# Every pattern above needs one of these in the text: most texts (paths, states, ids) have
# none, and one search spares them the four substitutions.
_PATTERN_HINT = re.compile(r"://|bearer|passw|secret|token|key", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return name in ALWAYS_SECRET or bool(SECRET_NAME.search(name))


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._compiled: re.Pattern[str] | None = None

    def add(self, value: str | None) -> None:
        if not value or len(value) < MIN_SECRET_LEN or value in self._values:
            return
        self._values.add(value)
        self._compiled = None
        for inner in _url_passwords(value):
            self.add(inner)

    def values(self) -> list[str]:
        return sorted(self._values)

    def add_many(self, values: Iterable[str | None]) -> None:
        for value in values:
            self.add(value)

    def reset(self) -> None:
        """Forget every value and learn this process's environment again (a command forked
        by the command server takes over its caller's environment)."""
        self._values.clear()
        self._compiled = None
        self.learn_environment()

    def learn_environment(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        for name, value in env.items():
            if is_secret_name(name):
                self.add(value)
            else:
                self.add_many(_url_passwords(value))

    def learn_mapping(self, pairs: Mapping[str, Any]) -> None:
        """Learn the values of NAME=value pairs whose names say secret (compose env, .env)."""
        for name, value in pairs.items():
            if value is None:
                continue
            text = str(value)
            if is_secret_name(str(name)):
                self.add(text)
            self.add_many(_url_passwords(text))

    def redact(self, text: str) -> str:
        if not text:
            return text
        if self._values:
            if self._compiled is None:
                alternatives = sorted(self._values, key=len, reverse=True)
                self._compiled = re.compile("|".join(re.escape(v) for v in alternatives))
            text = self._compiled.sub(MASK, text)
        if _PATTERN_HINT.search(text) is None:
            return text
        for pattern in _PATTERNS:
            text = pattern.sub(_masked, text)
        return text

    def redact_obj(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, Mapping):
            return {k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.redact_obj(v) for v in obj]
        return obj


def _masked(match: re.Match[str]) -> str:
    return match.group("pre") + MASK


def _url_passwords(value: str) -> list[str]:
    return [m.group("secret") for m in _PATTERNS[0].finditer(value)]


# The process-wide redactor every sink uses; config loading and drivers teach it.
redactor = Redactor()
redactor.learn_environment()


def redact(text: str) -> str:
    return redactor.redact(text)
