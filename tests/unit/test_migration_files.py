"""Migration headers: `-- depends:` parsing, and a checksum that leaves the declaration out."""

from __future__ import annotations

from pathlib import Path

import pytest

from afasa_ops.errors import ConfigError
from afasa_ops.schema.migrations import Dependency, checksum, parse, parse_depends


def test_depends_lines_merge_per_table_and_may_wrap() -> None:
    body = (
        "-- depends: tenants(id), reports(status,\n-- depends: reports(format), users\nSELECT 1;\n"
    )
    # A line may end in a comma and go on on the next.
    assert parse_depends("-- depends: a(x),\n-- depends: b\n", "f") == (
        Dependency("a", ("x",)),
        Dependency("b"),
    )
    with pytest.raises(ConfigError, match="cannot read `-- depends:`"):
        parse_depends(body, "f.sql")
    assert parse_depends("-- depends: none\n", "f") == ()
    assert parse_depends("SELECT 1;\n", "f") is None
    with pytest.raises(ConfigError, match="is empty"):
        parse_depends("-- depends:\n", "f")
    with pytest.raises(ConfigError, match="not a plain name"):
        parse_depends('-- depends: t("x y")\n', "f")


def test_the_checksum_leaves_the_declaration_out(tmp_path: Path) -> None:
    """Adding or fixing `-- depends:` in an applied file is not drift; any other edit is."""
    plain = "-- m\nCREATE TABLE x (id int);\n-- verify:\nSELECT true\n"
    declared = "-- m\n-- depends: tenants(id)\nCREATE TABLE x (id int);\n-- verify:\nSELECT true\n"
    assert checksum(plain) == checksum(declared)
    assert checksum(plain) != checksum(plain.replace("int", "bigint"))
    f = tmp_path / "0002_x.sql"
    f.write_text(declared)
    assert parse(f).depends == (Dependency("tenants", ("id",)),)
