"""Generated configuration: TOML documents, raw bytes and AFASA_OPS_* values from hypothesis.

The property, through the real CLI entry (`main()`, as the console script runs it):
either the configuration loads and holds exactly what was written, or the command stops with
exit 2 and one line per problem, each naming the key, variable or file at fault. Never a
traceback. Bounded (max_examples) so it fits CI; deadline=None because the machine is shared.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afasa_ops.cli import main
from afasa_ops.config import SecretRef, load_settings, section_classes
from afasa_ops.errors import ConfigError

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SECTIONS = {name: cls for name, cls in section_classes().items() if name != "repo"}
KEYS = [(s, k) for s, cls in SECTIONS.items() for k in cls.model_fields]
# Text TOML can hold: no surrogates (not UTF-8), no NUL (nor can the environment).
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
)
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    TEXT,
    st.sampled_from(["nats://127.0.0.1:4222", "http://h:99999", "postgresql://u@h:x/db", "0"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["env", "file", "value", "x"]), inner, max_size=2),
    ),
    max_leaves=8,
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"


@st.composite
def documents(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    doc: dict[str, dict[str, Any]] = {}
    for section, key in draw(st.lists(st.sampled_from(KEYS), max_size=6, unique=True)):
        doc.setdefault(section, {})[key] = draw(VALUES)
    if draw(st.booleans()):  # a key nobody declared
        doc.setdefault(draw(st.sampled_from([*SECTIONS, "bogus"])), {})["nope"] = 1
    return doc


def render(doc: dict[str, dict[str, Any]]) -> str:
    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in body.items())
        for section, body in doc.items()
    )


def run_cli(config: Path, env: dict[str, str]) -> tuple[int, str]:
    """`afasa-ops -c CONFIG doctor config` in this process, as the console script runs it."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["afasa-ops", "--config", str(config), "doctor", "config"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AFASA_OPS_")}
    with (
        mock.patch.dict(os.environ, {**clean, **env}, clear=True),
        mock.patch.object(sys, "argv", argv),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def assert_refused_in_lines(err: str, names: list[str], config: Path) -> None:
    """Every line is an error that names one of `names` (a key or a variable) after the file."""
    lines = err.splitlines()
    assert lines and "Traceback" not in err, err
    for line in lines:
        assert line.startswith("error: "), err
        said = line.removeprefix("error: ").removeprefix(f"{config}: ")
        assert any(n in said for n in names), (line, names)


def names_of(doc: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for section, body in doc.items():
        out.append(f"[{section}]")
        out += [f"[{section}] {k}" for k in body]
    return out


def assert_loaded_exactly(config: Path, doc: dict[str, dict[str, Any]], env: dict) -> None:
    loaded = load_settings(config, environ=env)
    for section, body in doc.items():
        for key, value in body.items():
            got = getattr(getattr(loaded, section), key)
            if isinstance(got, SecretRef):
                assert got.model_dump(exclude_none=True) == value
            elif isinstance(value, float) and isinstance(got, float):
                assert got == value
            else:
                assert got == value or str(got) == str(value), (section, key, got, value)


@SETTINGS
@given(doc=documents())
def test_generated_toml_loads_exactly_or_is_refused_line_by_line(
    tmp_path_factory: Any, doc: dict[str, dict[str, Any]]
) -> None:
    config = tmp_path_factory.mktemp("gen") / "afasa-ops.toml"
    config.write_text(render(doc), encoding="utf-8")
    env = {"AFASA_OPS_REPO_PATH": str(config.parent)}
    code, err = run_cli(config, env)
    try:
        load_settings(config, environ=env)
    except ConfigError as exc:
        assert code == 2, err
        assert err.splitlines() == [f"error: {line}" for line in str(exc).splitlines()]
        assert_refused_in_lines(err, names_of(doc), config)
        return
    assert code != 2 and "Traceback" not in err, err
    assert_loaded_exactly(config, doc, env)


@SETTINGS
@given(blob=st.binary(max_size=200))
def test_arbitrary_bytes_are_a_config_or_one_line_per_problem(
    tmp_path_factory: Any, blob: bytes
) -> None:
    config = tmp_path_factory.mktemp("bytes") / "afasa-ops.toml"
    config.write_bytes(blob)
    code, err = run_cli(config, {"AFASA_OPS_REPO_PATH": str(config.parent)})
    assert "Traceback" not in err
    if code == 2:
        assert all(line.startswith("error: ") for line in err.splitlines()), err
        assert err.count("\n") >= 1


@SETTINGS
@given(
    values=st.dictionaries(
        st.sampled_from([f"AFASA_OPS_{s.upper()}_{k.upper()}" for s, k in KEYS]),
        st.one_of(TEXT, st.sampled_from(["[", '["a",', "[[1]]", "-1", "99999", "inf", "nan"])),
        max_size=4,
    )
)
def test_generated_environment_values_load_or_name_the_variable(
    tmp_path_factory: Any, values: dict[str, str]
) -> None:
    config = tmp_path_factory.mktemp("env") / "afasa-ops.toml"
    config.write_text("")
    env = {"AFASA_OPS_REPO_PATH": str(config.parent), **values}
    code, err = run_cli(config, env)
    try:
        load_settings(config, environ=env)
    except ConfigError:
        assert code == 2, err
        assert_refused_in_lines(err, list(values), config)
        return
    assert code != 2 and "Traceback" not in err, err
