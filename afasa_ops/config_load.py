"""Reading afasa-ops.toml and the AFASA_OPS_* variables into Settings.

Every problem is collected before anything is reported: unknown keys, wrong types, values out
of range, missing required keys, inline secrets, unusable variables. They are raised together
as one ConfigError, one line each, naming the file or variable, the key, and what is allowed.
Hostile input (bytes that are not UTF-8, absurd nesting, malformed JSON lists) is one more
such line, never a traceback.
"""

from __future__ import annotations

import json
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from afasa_ops.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    ENV_PREFIX,
    MIN_HMAC_SECRET_BYTES,
    RESERVED_ENV,
    SecretRef,
    Section,
    Settings,
    env_var,
    says,
    section_classes,
)
from afasa_ops.errors import ConfigError
from afasa_ops.redact import redactor

# Longest value shown back in a message; the rest is elided.
MAX_SHOWN = 60
# Names pydantic puts in an error's location for the arm of a union it tried.
_UNION_ARMS = {"SecretRef", "str", "list[str]", "float", "int", "bool", "Url"}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}

Origins = dict[tuple[str, str], str]  # (section, key) -> the variable that set it


def load(path: Path | str | None, *, environ: Mapping[str, str], require_file: bool) -> Settings:
    explicit = path or environ.get(CONFIG_ENV)
    chosen = Path(explicit or DEFAULT_CONFIG)
    label = str(chosen)
    raw: dict[str, Any] = {}
    readable = chosen.exists() and not chosen.is_dir()  # a file, or a pipe like <(...)
    if readable:
        raw = read_toml(chosen, label)
    elif chosen.exists():
        raise ConfigError(f"{label}: is a directory, not a config file")
    elif explicit or require_file:
        raise ConfigError(
            f"{label}: no such config file",
            hint="run `afasa-ops init REPO` to write one, pass --config PATH, or configure "
            f"with {ENV_PREFIX}<SECTION>_<KEY> variables alone",
        )
    problems = inline_secret_problems(raw, label)
    origins: Origins = {}
    problems += apply_env_overrides(raw, environ, origins)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems += validation_problems(exc, label, origins)
    except RecursionError:
        problems.append(f"{label}: values nested too deeply to validate")
    problems += weak_secret_problems(raw, label, origins)
    if problems:
        raise ConfigError("\n".join(one_line(p) for p in dict.fromkeys(problems)))
    assert settings is not None
    settings.source = chosen.resolve() if readable else None
    return settings


def env_label(name: str) -> str:
    # Not "NAME: value": the redactor masks what follows a secret-looking NAME and a colon.
    return f"{name} (environment variable)"


def one_line(text: str) -> str:
    """Printable on any terminal and on one line, whatever bytes a value held."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe.replace("\r", "\\r").replace("\n", "\\n")


def read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{label}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "TOML files are UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {' '.join(str(exc).split())}") from exc
    except RecursionError:
        raise ConfigError(f"{label}: not usable TOML: arrays or tables nested too deeply") from None


def inline_secret_problems(raw: dict[str, Any], label: str) -> list[str]:
    """Secrets written inline, and DSNs with a password; the keys are dropped from `raw` so
    validation does not report them a second time."""
    out = []
    if "source" in raw:  # a field of Settings, not a key of the file
        raw.pop("source")
        out.append(f"{label}: unknown key [source]; sections: {', '.join(section_classes())}")
    for section_name, cls in section_classes().items():
        section = raw.get(section_name)
        if not isinstance(section, dict):
            continue
        for key in cls.secret_keys:
            if isinstance(section.get(key), str):
                redactor.add(section.pop(key))
                out.append(
                    f"{label}: [{section_name}] {key} is a secret and may not be written inline "
                    f'(use {key} = {{ env = "NAME" }} or {{ file = "/run/secrets/NAME" }}, '
                    f"or set {env_var(section_name, key)})"
                )
        for key in cls.dsn_keys:
            value = section.get(key)
            if isinstance(value, str) and _has_password(value):
                redactor.add_many(_passwords_in(value))
                section.pop(key)
                out.append(
                    f"{label}: [{section_name}] {key} holds a password; a DSN with a password "
                    f'is a secret (use {key} = {{ env = "NAME" }}, or set '
                    f"{env_var(section_name, key)})"
                )
    return out


def _has_password(dsn: str) -> bool:
    if "://" in dsn:
        try:
            return urlsplit_password(dsn) is not None
        except ValueError:
            return True
    return "password=" in dsn.lower()


def urlsplit_password(dsn: str) -> str | None:
    from urllib.parse import urlsplit

    return urlsplit(dsn).password


def _passwords_in(value: str) -> list[str]:
    try:
        pw = urlsplit_password(value) if "://" in value else None
    except ValueError:
        pw = None
    return [pw] if pw else []


def apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str], origins: Origins) -> list[str]:
    sections = section_classes()
    out = []
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section_name = next((s for s in sections if rest.startswith(s + "_")), None)
        if section_name is None:
            out.append(
                f"{env_label(name)}: no such section; expected "
                f"{ENV_PREFIX}<SECTION>_<KEY> with SECTION one of "
                + ", ".join(s.upper() for s in sections)
            )
            continue
        key = rest[len(section_name) + 1 :]
        cls = sections[section_name]
        if key not in cls.model_fields:
            out.append(
                f"{env_label(name)}: [{section_name}] has no key {key!r}; "
                f"keys: {', '.join(cls.model_fields)}"
            )
            continue
        section = raw.setdefault(section_name, {})
        if not isinstance(section, dict):
            continue  # the file's [section] is not a table: validation says so
        origins[(section_name, key)] = name
        if not value and _accepts_none(cls, key):
            # `KEY=${VAR:-}` in a compose file: an empty variable leaves the key unset.
            section.pop(key, None)
        elif key in cls.secret_keys or key in cls.dsn_keys:
            redactor.add(value)
            redactor.add_many(_passwords_in(value))
            section[key] = {"value": value}
        elif _is_list_field(cls, key):
            parsed, problem = parse_list(value)
            if problem:
                out.append(f"{env_label(name)}: {problem}")
                section.pop(key, None)
            else:
                section[key] = parsed
        else:
            section[key] = value
    return out


def _accepts_none(cls: type[Section], key: str) -> bool:
    return type(None) in typing.get_args(cls.model_fields[key].annotation)


def _is_list_field(cls: type[Section], key: str) -> bool:
    return typing.get_origin(cls.model_fields[key].annotation) is list


def parse_list(value: str) -> tuple[list[str], str | None]:
    """`a,b,c` or a JSON list of plain values; a problem (one line) instead of an exception."""
    text = value.strip()
    if not text.startswith("["):
        return [part.strip() for part in text.split(",") if part.strip()], None
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        where = f" at character {exc.pos + 1}" if isinstance(exc, json.JSONDecodeError) else ""
        return [], (
            f"not a JSON list ({why}{where}); write a JSON list such as "
            '["a", "b"], or comma-separated values'
        )
    if not isinstance(parsed, list):
        return [], 'not a JSON list; write a JSON list such as ["a", "b"]'
    if any(isinstance(v, (list, dict)) or v is None or isinstance(v, bool) for v in parsed):
        return (
            [],
            "a JSON list of plain strings or numbers is expected (no null, true, [..] or {..})",
        )
    return [str(v) for v in parsed], None


def validation_problems(exc: ValidationError, label: str, origins: Origins) -> list[str]:
    """One line per offending key (pydantic reports each arm of a union separately)."""
    seen: dict[tuple[str, ...], ErrorDetails] = {}
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"] if str(p) not in _UNION_ARMS)
        loc = tuple(p for p in loc if not p.startswith("function-"))
        seen.setdefault(loc, err)
    return [_describe(loc, err, label, origins) for loc, err in seen.items()]


def _describe(loc: tuple[str, ...], err: ErrorDetails, label: str, origins: Origins) -> str:
    kind = err["type"]
    if kind == "value_error" and len(loc) == 1 and ": " in err["msg"]:
        # A section's own check names its key: "Value error, admin_dsn: port ...".
        key, _, msg = err["msg"].removeprefix("Value error, ").partition(": ")
        loc, err = (loc[0], key), {**err, "msg": msg, "input": {}}
    where = _where(loc, label, origins)
    name = _key_name(loc)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        if len(loc) <= 1:
            scope = "sections: "
        elif len(loc) == 2:
            scope = f"valid keys in [{loc[0]}]: "
        elif _is_secret(loc):
            scope = "a reference has the keys "  # no "NAME: " after a secret's name
        else:
            scope = f"valid keys in {_key_name(loc[:-1])}: "
        return f"{where}: unknown key {name}" + (f"; {scope}{allowed}" if allowed else "")
    if kind == "missing":
        return f"{where}: missing required key {name}"
    shown = _shown(loc, err.get("input"))
    if kind in _RANGE_ERRORS or kind == "finite_number":
        allowed = allowed_range(loc)
        what = "is not a finite number" if kind == "finite_number" else "is out of range"
        return f"{where}: {name}{shown} {what}" + (f"; allowed {allowed}" if allowed else "")
    msg = err["msg"].removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:] if msg else msg
    got = f" (got{shown.removeprefix(' =')})" if shown else ""
    return f"{where}: " + says(name, f"{msg}{got}")


def _where(loc: tuple[str, ...], label: str, origins: Origins) -> str:
    var = origins.get((loc[0], loc[1])) if len(loc) >= 2 else None
    return env_label(var) if var else label


def _key_name(loc: tuple[str, ...]) -> str:
    if not loc:
        return "(top level)"
    if loc[0] == "services" and len(loc) >= 2 and loc[1].isdigit():
        rest = ".".join(loc[2:])
        return f"[[services]] entry {int(loc[1]) + 1}" + (f" {rest}" if rest else "")
    if len(loc) == 1:
        return f"[{loc[0]}]"
    return f"[{loc[0]}] " + ".".join(loc[1:])


def _is_secret(loc: tuple[str, ...]) -> bool:
    cls = section_classes().get(loc[0]) if loc else None
    return bool(cls and len(loc) >= 2 and loc[1] in (*cls.secret_keys, *cls.dsn_keys))


def _shown(loc: tuple[str, ...], value: Any) -> str:
    """` = VALUE` for messages: never a secret, never a table, at most MAX_SHOWN characters."""
    if isinstance(value, dict) or _is_secret(loc):
        return ""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        text = f"<a {type(value).__name__}>"
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "..."
    return f" = {redactor.redact(text)}"


def _allowed_keys(loc: tuple[str, ...]) -> str:
    if len(loc) < 2:
        return ", ".join(section_classes())
    cls: type[Any] | None = section_classes().get(loc[0])
    if loc[0] == "services":
        from afasa_ops.config import ServiceEntry

        cls = ServiceEntry
    if (
        cls is not None
        and len(loc) >= 3
        and loc[1] in getattr(cls, "secret_keys", ()) + getattr(cls, "dsn_keys", ())
    ):
        return "env, file"
    return ", ".join(cls.model_fields) if cls else ""


def allowed_range(loc: tuple[str, ...]) -> str:
    """The bounds of a numeric key, from its declaration (`1..65535`, `> 0 and <= 604800`)."""
    cls = section_classes().get(loc[0]) if loc else None
    if cls is None or len(loc) < 2 or loc[1] not in cls.model_fields:
        return ""
    field = cls.model_fields[loc[1]]
    metadata = list(field.metadata)
    if len(loc) > 2 and typing.get_origin(field.annotation) is list:
        (item,) = typing.get_args(field.annotation)
        metadata = [m for arg in typing.get_args(item)[1:] for m in getattr(arg, "metadata", [])]
    return describe_bounds(metadata)


def describe_bounds(metadata: list[Any]) -> str:
    lo = next((m for m in metadata if isinstance(m, (Gt, Ge))), None)
    hi = next((m for m in metadata if isinstance(m, (Lt, Le))), None)
    if isinstance(lo, Ge) and isinstance(hi, Le) and _whole(lo.ge) and _whole(hi.le):
        return f"{_num(lo.ge)}..{_num(hi.le)}"
    parts = []
    if isinstance(lo, Gt):
        parts.append(f"> {_num(lo.gt)}")
    elif isinstance(lo, Ge):
        parts.append(f">= {_num(lo.ge)}")
    if isinstance(hi, Lt):
        parts.append(f"< {_num(hi.lt)}")
    elif isinstance(hi, Le):
        parts.append(f"<= {_num(hi.le)}")
    return " and ".join(parts)


def _whole(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def weak_secret_problems(raw: dict[str, Any], label: str, origins: Origins) -> list[str]:
    """Signing secrets too short to sign with, refused at load when their value can be read
    (from the raw document, so they are reported with every other problem)."""
    out = []
    for section_name, cls in section_classes().items():
        section = raw.get(section_name)
        if not isinstance(section, dict):
            continue
        for key in cls.hmac_keys:
            try:
                ref = SecretRef.model_validate(section.get(key))
            except ValidationError:
                continue  # absent or malformed: validation reports it
            value = ref.get()
            if not value or value.lstrip().startswith("-----BEGIN"):
                continue  # unset (checked where used) or a PEM key (RS256)
            size = len(value.encode())
            if size < MIN_HMAC_SECRET_BYTES:
                var = origins.get((section_name, key))
                where = env_label(var) if var else label
                out.append(
                    f"{where}: [{section_name}] {key} ({ref.describe()}) is {size} bytes; an "
                    f"HS256 secret needs at least {MIN_HMAC_SECRET_BYTES} (RFC 7518, 3.2)"
                )
    return out
