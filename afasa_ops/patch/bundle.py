"""Reading an operators' patch bundle (a zip or a directory) into memory, refusing hostile input.

The whole bundle is read and validated before anything is written anywhere: a refusal is one
line naming the entry and what is wrong, and the repo is untouched.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from afasa_ops.errors import UsageError
from afasa_ops.patch.paths import name_problem

# Compose files that mark a repository copy (any one of them, or a services/ folder).
COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml")
# Entries that are never part of the repository's content.
IGNORED_PREFIXES = (".git/", ".afasa-ops/", "__MACOSX/")
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile bundle from exhausting memory or disk."""

    max_entry_bytes: int = 16 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024
    max_entries: int = 20_000
    # Uncompressed/compressed size above which an entry is treated as a zip bomb...
    max_ratio: float = 100.0
    # ...once it is at least this large (small files of repeated text compress very well).
    ratio_floor_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class BundleFile:
    path: str  # repo-relative, POSIX separators
    data: bytes
    executable: bool = False


@dataclass
class Bundle:
    source: Path
    kind: str  # zip | directory
    files: dict[str, BundleFile]
    stripped_root: str | None = None
    ignored: list[str] = field(default_factory=list)


class BundleRefused(UsageError):
    """The bundle is unsafe or not a repository copy; nothing was written."""

    def __init__(self, source: Path, detail: str, hint: str | None = None) -> None:
        super().__init__(f"patch bundle {source}: {detail}; nothing was written", hint=hint)


def read_bundle(source: Path, limits: Limits | None = None) -> Bundle:
    """Read and validate a zip file or a directory; raise BundleRefused on anything hostile."""
    limits = limits or Limits()
    if source.is_symlink():
        raise BundleRefused(source, "is a symlink", "pass the real path of the bundle")
    if source.is_dir():
        raw = _read_directory(source, limits)
        kind = "directory"
    elif source.is_file():
        raw = _read_zip(source, limits)
        kind = "zip"
    else:
        raise UsageError(f"patch bundle {source}: no such file or directory")
    files, ignored = _drop_ignored(raw)
    files, root = _strip_single_root(files)
    bundle = Bundle(source, kind, files, root, ignored)
    _check_layout(bundle)
    return bundle


# -- names ------------------------------------------------------------------------------------
def shown(name: str, limit: int = 120) -> str:
    """An entry name for a one-line message: quoted, and cut short when it is huge."""
    if len(name) <= limit:
        return repr(name)
    return repr(name[: limit // 2]) + f"...({len(name)} characters)"


def safe_name(source: Path, name: str) -> str:
    """Normalise an entry name to a repo-relative POSIX path, refusing traversal, absolutes,
    names no filesystem holds and aliases of the git folder."""
    if "\x00" in name:
        raise BundleRefused(source, f"entry {shown(name)} has a NUL byte in its name")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise BundleRefused(source, f"entry {shown(name)} is an absolute path (zip slip)")
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        raise BundleRefused(source, f"entry {shown(name)} climbs out with '..' (zip slip)")
    clean = [p for p in parts if p not in ("", ".")]
    problem = name_problem(clean)
    if problem is not None:
        raise BundleRefused(source, f"entry {shown(name)} {problem}")
    return "/".join(clean)


def _drop_ignored(raw: dict[str, BundleFile]) -> tuple[dict[str, BundleFile], list[str]]:
    files: dict[str, BundleFile] = {}
    ignored: list[str] = []
    for path, entry in raw.items():
        probe = path + "/"
        if any(probe.startswith(p) or f"/{p}" in probe for p in IGNORED_PREFIXES):
            ignored.append(path)
        else:
            files[path] = entry
    return files, sorted(ignored)


def _strip_single_root(files: dict[str, BundleFile]) -> tuple[dict[str, BundleFile], str | None]:
    """`Afasa-main/docker-compose.yml` -> `docker-compose.yml` when all entries share one folder."""
    tops = {p.split("/", 1)[0] for p in files}
    if len(tops) != 1:
        return files, None
    (top,) = tops
    # A single file at the root, or a bare services/ tree, is content rather than a wrapper.
    if top in files or top == "services":
        return files, None
    stripped = {
        p[len(top) + 1 :]: BundleFile(p[len(top) + 1 :], f.data, f.executable)
        for p, f in files.items()
    }
    return stripped, top


def _check_layout(bundle: Bundle) -> None:
    paths = bundle.files
    if not any(n in paths for n in COMPOSE_NAMES) and not any(
        p.startswith("services/") for p in paths
    ):
        raise BundleRefused(
            bundle.source,
            "is not a copy of the repository (no docker-compose.yml and no services/)",
            "pass the patched AFASA checkout (zip or folder)",
        )
    seen: dict[str, str] = {}
    for path in sorted(paths):
        key = path.casefold()
        if key in seen:
            raise BundleRefused(
                bundle.source,
                f"entries {seen[key]!r} and {path!r} collide on a case-insensitive filesystem",
            )
        seen[key] = path
    for path in paths:
        parent = PurePosixPath(path).parent
        while str(parent) not in (".", ""):
            if str(parent) in paths:
                raise BundleRefused(
                    bundle.source, f"{str(parent)!r} is both a file and the folder of {path!r}"
                )
            parent = parent.parent


# -- zip --------------------------------------------------------------------------------------
def _read_zip(source: Path, limits: Limits) -> dict[str, BundleFile]:
    try:
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
            _check_zip_headers(source, infos, limits)
            out: dict[str, BundleFile] = {}
            total = 0
            for info in infos:
                if info.is_dir():
                    continue
                data = _read_member(source, zf, info, limits)
                total += len(data)
                if total > limits.max_total_bytes:
                    raise BundleRefused(
                        source, f"holds more than {limits.max_total_bytes} bytes in total"
                    )
                name = safe_name(source, info.filename)
                if not name:
                    raise BundleRefused(source, f"entry {info.filename!r} has no file name")
                if name in out:
                    raise BundleRefused(source, f"entry {name!r} appears twice")
                mode = info.external_attr >> 16
                out[name] = BundleFile(name, data, bool(mode & 0o111))
            return out
    except BundleRefused:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise BundleRefused(
            source,
            f"is not a readable zip (corrupt or truncated: {exc})",
            "download the bundle again",
        ) from None
    except NotImplementedError as exc:
        raise BundleRefused(source, f"uses an unsupported zip feature: {exc}") from None


def _check_zip_headers(source: Path, infos: list[zipfile.ZipInfo], limits: Limits) -> None:
    """Everything the central directory declares, checked before a byte is decompressed."""
    if len(infos) > limits.max_entries:
        raise BundleRefused(source, f"has {len(infos)} entries (limit {limits.max_entries})")
    declared = 0
    for info in infos:
        name = info.filename
        safe_name(source, name)
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise BundleRefused(source, f"entry {name!r} is a symlink")
        if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise BundleRefused(source, f"entry {name!r} is a device or special file")
        if info.flag_bits & 0x1:
            raise BundleRefused(source, f"entry {name!r} is encrypted")
        if info.file_size > limits.max_entry_bytes:
            raise BundleRefused(
                source,
                f"entry {name!r} is {info.file_size} bytes (limit {limits.max_entry_bytes})",
            )
        _check_ratio(source, name, info.file_size, info.compress_size, limits)
        declared += info.file_size
    if declared > limits.max_total_bytes:
        raise BundleRefused(
            source, f"declares {declared} bytes in total (limit {limits.max_total_bytes})"
        )


def _check_ratio(source: Path, name: str, size: int, compressed: int, limits: Limits) -> None:
    if size < limits.ratio_floor_bytes:
        return
    ratio = size / max(compressed, 1)
    if ratio > limits.max_ratio:
        raise BundleRefused(
            source,
            f"entry {name!r} expands {ratio:.0f}:1 (limit {limits.max_ratio:.0f}:1, a zip bomb)",
        )


def _read_member(source: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bytes:
    """Decompress counting the real bytes: declared sizes in a hostile zip may lie."""
    chunks: list[bytes] = []
    real = 0
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            real += len(chunk)
            if real > limits.max_entry_bytes:
                raise BundleRefused(
                    source,
                    f"entry {info.filename!r} expands past {limits.max_entry_bytes} bytes",
                )
            _check_ratio(source, info.filename, real, info.compress_size, limits)
            chunks.append(chunk)
    if real != info.file_size:
        raise BundleRefused(
            source, f"entry {info.filename!r} is {real} bytes but declares {info.file_size}"
        )
    return b"".join(chunks)


# -- directory --------------------------------------------------------------------------------
def _read_directory(source: Path, limits: Limits) -> dict[str, BundleFile]:
    out: dict[str, BundleFile] = {}
    total = 0

    def refuse_walk(exc: OSError) -> None:
        raise BundleRefused(source, f"cannot read {exc.filename}: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(source, onerror=refuse_walk, followlinks=False):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".afasa-ops"))
        for name in sorted(dirnames) + sorted(filenames):
            path = base / name
            rel = path.relative_to(source).as_posix()
            # Names first: a folder too deep is refused before the walk descends into it.
            safe_name(source, rel)
            try:
                st = path.lstat()
            except OSError as exc:
                raise BundleRefused(source, f"cannot read {shown(rel)}: {exc.strerror}") from None
            if stat.S_ISLNK(st.st_mode):
                raise BundleRefused(source, f"{shown(rel)} is a symlink")
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise BundleRefused(source, f"{shown(rel)} is a device or special file")
            if len(out) >= limits.max_entries:
                raise BundleRefused(source, f"has more than {limits.max_entries} files")
            data = _read_regular(source, path, rel, limits)
            total += len(data)
            if total > limits.max_total_bytes:
                raise BundleRefused(
                    source, f"holds more than {limits.max_total_bytes} bytes in total"
                )
            out[rel] = BundleFile(rel, data, bool(st.st_mode & 0o111))
    return out


def _read_regular(source: Path, path: Path, rel: str, limits: Limits) -> bytes:
    # O_NOFOLLOW: a file swapped for a symlink after lstat() is still refused.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limits.max_entry_bytes + 1)
    if len(data) > limits.max_entry_bytes:
        raise BundleRefused(source, f"{rel!r} is larger than {limits.max_entry_bytes} bytes")
    return data
