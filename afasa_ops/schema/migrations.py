"""Migration files: `NNNN_name.sql`, a body, then `-- verify:` and one boolean query.

Header directives (comment lines anywhere before `-- verify:`):
    -- requires: ext1, ext2   extensions that must be available (preflight blocks otherwise)
    -- optional: vector       extensions created only when [database] vector enables them
The checksum is the sha256 of the whole file: any edit to an applied file is drift.
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

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
    )


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
