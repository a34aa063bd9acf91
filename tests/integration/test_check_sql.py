"""A functional check's SQL actions against the real PostgreSQL, through the project's driver:
`:name` binds from captures, `::casts` and `%` left alone, nothing ever written, and a broken
query reported in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from afasa_ops.config import load_settings
from afasa_ops.errors import DriverError
from afasa_ops.steps.check import CheckParams, CheckRunner
from tests.support.schema_db import execute, query


def runner(tmp_path: Path, dsn: str) -> CheckRunner:
    config = tmp_path / "afasa-ops.toml"
    config.write_text(f'[repo]\npath = "{tmp_path}"\n[database]\nadmin_dsn = "{dsn}"\n')
    return CheckRunner(load_settings(config))


def actions(*sql: dict) -> CheckParams:  # type: ignore[type-arg]
    return CheckParams.model_validate(
        {"actions": [{"name": f"a{i}", "sql": {"role": "admin", **s}} for i, s in enumerate(sql)]}
    )


def test_binds_casts_and_percent_signs(pg_database: str, tmp_path: Path) -> None:
    execute(pg_database, "CREATE TABLE things (id int, name text)")
    execute(pg_database, "INSERT INTO things VALUES (1, 'ubi-1'), (2, 'tb-2')")
    check = runner(tmp_path, pg_database)
    try:
        check.run(
            actions(
                {"query": "SELECT id FROM things WHERE name LIKE 'ubi%'", "capture": {"tid": "id"}},
                {
                    "query": "SELECT name FROM things WHERE id = :tid AND '1'::int = 1",
                    "expect": "value",
                    "value": "ubi-1",
                },
                # An assertion that writes is rolled back.
                {"query": "DELETE FROM things RETURNING id", "expect": "rows"},
            )
        )
    finally:
        check.close()
    assert check.vars["tid"] == 1
    assert query(pg_database, "SELECT count(*) FROM things") == [(2,)]


def test_a_broken_query_is_one_line_naming_it(pg_database: str, tmp_path: Path) -> None:
    check = runner(tmp_path, pg_database)
    try:
        with pytest.raises(DriverError) as err:
            check.run(actions({"query": "SELECT nope FROM pg_class"}))
    finally:
        check.close()
    message = str(err.value)
    assert "\n" not in message
    assert "SELECT nope FROM pg_class" in message and 'column "nope" does not exist' in message
