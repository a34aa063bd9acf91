"""The wheels the adopted services' image installs (`afasa-ops-services/wheels/`), made from
the afasa-ops that runs this step, so the image holds exactly the code the operator runs and
its build needs no package index (build containers often reach none; the host's pip does).

- afasa-ops itself is packed from the installed package (editable or not) into a wheel whose
  bytes depend only on its files: a rerun with the same code rewrites nothing, and docker's
  layer cache keeps the image.
- Its dependencies are the installed versions of afasa-ops[service]'s requirement closure,
  taken from `[adopt] wheelhouse` when configured (air-gapped hosts), else downloaded by pip
  for the image's platform (CPython 3.11 on Linux), not the host's.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import platform
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import afasa_ops
from afasa_ops.resources import package_dir

if TYPE_CHECKING:
    from importlib import metadata

    from packaging.requirements import Requirement

# importlib.metadata and packaging are imported where the wheels are made: the step that
# does it is in every runbook, so this module is imported by every run, most of which never
# pack a wheel (a few tens of milliseconds of start-up).

DIST = "afasa-ops"
EXTRA = "service"
# The image's interpreter (the Dockerfile's base image): its wheels, not the host's.
IMAGE_PYTHON = "3.11"
# Debian bookworm's glibc (python:3.11-slim-bookworm): manylinux wheels up to 2.36 run there.
IMAGE_GLIBC = (2, 36)
STAMP = "afasa-ops.source"
# Deterministic zip entries: a fixed date, so equal files give an equal wheel.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def package_files(root: Path | None = None) -> list[Path]:
    """The files a wheel of afasa-ops holds: its modules, py.typed and data/ (runbooks,
    migrations), as pyproject's package-data says; never caches or stray files."""
    root = root or package_dir()
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or "__pycache__" in rel.parts:
            continue
        if path.suffix == ".py" or rel.name == "py.typed" or rel.parts[0] == "data":
            out.append(path)
    return out


@functools.cache
def source_fingerprint() -> str:
    """afasa-ops' version and a hash of its files: what the packed wheel is made of
    ("0.1.0+<16 hex>"), cached per process: the files do not change under a running tool."""
    root = package_dir()
    digest = hashlib.sha256()
    for path in package_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"{afasa_ops.__version__}+{digest.hexdigest()[:16]}"


def wheel_name(version: str) -> str:
    return f"afasa_ops-{version}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def installed_distribution() -> metadata.Distribution:
    """The installed afasa-ops' metadata: a .dist-info of this version first (a source tree
    on sys.path may also hold a stale .egg-info of its own)."""
    from importlib import metadata

    found = list(metadata.distributions(name=DIST))
    for dist in found:
        if dist.read_text("METADATA") and dist.version == afasa_ops.__version__:
            return dist
    for dist in found:
        if dist.read_text("PKG-INFO") and dist.version == afasa_ops.__version__:
            return dist
    raise LookupError(f"{DIST} {afasa_ops.__version__} has no installed metadata")


def _dist_info(version: str) -> dict[str, bytes]:
    """METADATA and entry points of the installed distribution, WHEEL written here."""
    dist = installed_distribution()
    entry_points = (
        dist.read_text("entry_points.txt") or "[console_scripts]\nafasa-ops = afasa_ops.cli:main\n"
    )
    wheel = "Wheel-Version: 1.0\nGenerator: afasa-ops\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return {
        "METADATA": (dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "").encode(),
        "entry_points.txt": entry_points.encode(),
        "WHEEL": wheel.encode(),
    }


def pack_installed() -> tuple[str, bytes]:
    """(file name, bytes) of a wheel of the installed afasa-ops."""
    version = afasa_ops.__version__
    root = package_dir()
    entries = [
        (f"afasa_ops/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in package_files(root)
    ]
    info_dir = f"afasa_ops-{version}.dist-info"
    entries += [(f"{info_dir}/{name}", data) for name, data in _dist_info(version).items()]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{info_dir}/RECORD,,\n"
    entries.append((f"{info_dir}/RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return wheel_name(version), buffer.getvalue()


def _image_environment() -> dict[str, str]:
    """Marker values of the image's interpreter: Linux CPython 3.11 on this machine's arch."""
    from packaging.markers import default_environment

    env = {k: str(v) for k, v in default_environment().items()}
    env.update(
        python_version=IMAGE_PYTHON,
        python_full_version=f"{IMAGE_PYTHON}.0",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        sys_platform="linux",
        platform_system="Linux",
        os_name="posix",
        platform_machine=platform.machine(),
    )
    return env


def _requirements(name: str, extras: Iterable[str]) -> Iterator[Requirement]:
    from importlib import metadata

    from packaging.requirements import Requirement

    dist = installed_distribution() if name == DIST else metadata.distribution(name)
    env = _image_environment()
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or any(
            req.marker.evaluate({**env, "extra": extra}) for extra in ["", *extras]
        ):
            yield req


def service_pins() -> list[Pin]:
    """The installed versions of every distribution afasa-ops[service] needs in the image,
    walked from the installed metadata (what the operator's afasa-ops was tested with)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    pins: dict[str, Pin] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(DIST, (EXTRA,))]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for req in _requirements(name, extras):
            key = canonicalize_name(req.name)
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                raise LookupError(f"{req.name} (needed by {name}) is not installed") from None
            if key != canonicalize_name(DIST):
                pins[key] = Pin(key, version)
            todo.append((req.name, tuple(sorted(req.extras))))
    return sorted(pins.values(), key=lambda p: p.name)


def wheels_in(folder: Path) -> dict[str, str]:
    """canonical name -> version of the wheels in folder."""
    from packaging.utils import canonicalize_name

    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        if match := _WHEEL_NAME.match(path.name):
            found[canonicalize_name(match["name"])] = match["version"]
    return found


def missing_pins(pins: Iterable[Pin], folder: Path) -> list[Pin]:
    have = wheels_in(folder)
    return [p for p in pins if have.get(p.name) != p.version]


def pip_download_argv(python: str, pins: Iterable[Pin], dest: Path) -> list[str]:
    """pip download of exactly these pins as binary wheels for the image's platform."""
    machine = platform.machine()
    argv = [python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    argv += ["--dest", str(dest), "--python-version", IMAGE_PYTHON, "--implementation", "cp"]
    argv += ["--abi", f"cp{IMAGE_PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
    for platform_tag in image_platforms(machine):
        argv += ["--platform", platform_tag]
    return argv + [str(p) for p in pins]


def image_platforms(machine: str) -> list[str]:
    """Every manylinux tag the image's glibc runs, newest first: pip does not expand a
    given `--platform` to the older glibc versions it implies."""
    major, newest = IMAGE_GLIBC
    tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(newest, 4, -1)]
    legacy = [f"manylinux{year}_{machine}" for year in ("2014", "2010", "1")]
    return [*tags, *legacy]
