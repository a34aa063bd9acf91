"""Migration files: `NNNN_name.sql`, a body, then `-- verify:` and one boolean query.

Header directives (comment lines anywhere before `-- verify:`):
    -- requires: ext1, ext2   extensions that must be available (preflight blocks otherwise)
    -- optional: vector       extensions created only when [database] vector enables them
    -- depends: tenants(id), reports(status, format), users
                              the baseline's tables and columns the migration uses (references,
                              alters, constrains, indexes); `none` when it uses none. `schema
                              baseline` blocks only when one of these is missing. A migration
                              without the line is taken to need the whole baseline.
The checksum is the sha256 of the whole file less its `-- depends:` lines: any other edit to an
applied file is drift, while a dependency declaration can be added or corrected later.
The shipped migrations live in the package (`afasa_ops/data/migrations/`, read through
importlib.resources); `[database] migrations_dir` may name another directory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable

from afasa_ops.errors import ConfigError

FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
VERIFY_MARK = re.compile(r"^--\s*verify:\s*$", re.MULTILINE)
DIRECTIVE = re.compile(r"^--\s*(requires|optional):\s*(.+)$", re.MULTILINE)
DEPENDS = re.compile(r"^--\s*depends:\s*(.*)$", re.MULTILINE)
DEPENDENCY = re.compile(r"\s*([a-z_][a-z0-9_]*)\s*(?:\(([^()]*)\))?\s*(?:,|$)")
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Dependency:
    """A baseline table a migration uses, and the columns of it that it uses."""

    table: str
    columns: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.table}({', '.join(self.columns)})" if self.columns else self.table


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Traversable  # a file, or one shipped in the package
    body: str
    verify: str
    checksum: str
    requires: tuple[str, ...] = field(default=())
    optional: tuple[str, ...] = field(default=())
    # None: the file declares nothing (taken to need the whole baseline).
    depends: tuple[Dependency, ...] | None = None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


DEPENDS_LINE = re.compile(r"^--\s*depends:.*(?:\n|$)", re.MULTILINE)


def checksum(text: str) -> str:
    """sha256 of a migration file, its `-- depends:` lines left out (they describe the file to
    `schema baseline`; they change nothing it does)."""
    return hashlib.sha256(DEPENDS_LINE.sub("", text).encode()).hexdigest()


def parse(path: Traversable) -> Migration:
    m = FILE_RE.match(path.name)
    if not m:
        raise ConfigError(
            f"{path}: migration files are named NNNN_name.sql (4 digits, lower-case name)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the migration: {exc}") from None
    parts = VERIFY_MARK.split(text, maxsplit=1)
    if len(parts) != 2 or not parts[1].strip():
        raise ConfigError(
            f"{path}: no verify query; end the file with a `-- verify:` line and a SELECT "
            "that returns true once the migration is applied"
        )
    body, verify = parts
    directives: dict[str, list[str]] = {"requires": [], "optional": []}
    for kind, names in DIRECTIVE.findall(body):
        directives[kind] += [n.strip().strip('"') for n in names.split(",") if n.strip()]
    return Migration(
        version=int(m["version"]),
        name=m["name"],
        path=path,
        body=body,
        verify=verify.strip().rstrip(";"),
        checksum=checksum(text),
        requires=tuple(directives["requires"]),
        optional=tuple(directives["optional"]),
        depends=parse_depends(body, str(path)),
    )


def parse_depends(body: str, label: str) -> tuple[Dependency, ...] | None:
    """The `-- depends:` lines (they may repeat), merged per table; None when there are none."""
    lines = DEPENDS.findall(body)
    if not lines:
        return None
    text = ", ".join(line.strip().strip(",") for line in lines)
    if not text.strip(" ,"):
        raise ConfigError(f"{label}: `-- depends:` is empty; write `-- depends: none` or tables")
    if text.strip().lower() == "none":
        return ()
    merged: dict[str, list[str]] = {}
    pos = 0
    while pos < len(text):
        m = DEPENDENCY.match(text, pos)
        if not m or m.end() == pos:
            raise ConfigError(
                f"{label}: cannot read `-- depends:` at {text[pos : pos + 30]!r}; write "
                "table(column, ...) entries separated by commas, e.g. tenants(id), users"
            )
        columns = [c.strip() for c in (m.group(2) or "").split(",") if c.strip()]
        bad = [c for c in columns if not IDENT.match(c)]
        if bad:
            raise ConfigError(f"{label}: `-- depends:` column {bad[0]!r} is not a plain name")
        cols = merged.setdefault(m.group(1), [])
        cols += [c for c in columns if c not in cols]
        pos = m.end()
    return tuple(Dependency(table, tuple(cols)) for table, cols in merged.items())


def load(directory: Traversable | None = None) -> list[Migration]:
    """The migrations in version order (the shipped ones by default); duplicate versions are
    refused."""
    from afasa_ops.resources import migrations_dir

    root = directory or migrations_dir()
    if not root.is_dir():
        raise ConfigError(
            f"migrations directory {root} does not exist",
            hint="set [database] migrations_dir to a directory of NNNN_name.sql files, "
            "or unset it to use the migrations afasa-ops ships",
        )
    entries = sorted(
        (e for e in root.iterdir() if e.name.endswith(".sql") and e.is_file()),
        key=lambda e: e.name,
    )
    found = [parse(p) for p in entries]
    seen: dict[int, Migration] = {}
    for mig in found:
        if mig.version in seen:
            raise ConfigError(
                f"{mig.path}: version {mig.version:04d} is also used by {seen[mig.version].path}"
            )
        seen[mig.version] = mig
    if not found:
        raise ConfigError(f"no NNNN_name.sql migrations in {root}")
    return found


def line_of(text: str, position: int) -> int:
    """1-based line number of a 1-based character position reported by PostgreSQL."""
    return text.count("\n", 0, max(0, position - 1)) + 1
