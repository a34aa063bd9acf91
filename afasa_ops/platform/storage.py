"""Report storage: file://DIR (embedded default) or s3://BUCKET on any S3 API (infra/s3.py).

Puts are whole-object and keyed by the report id, so a redelivered job overwrites the same
object instead of adding a second one."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from afasa_ops.errors import ConfigError, DriverError
from afasa_ops.platform.availability import STORAGE, Unavailable

if TYPE_CHECKING:
    from afasa_ops.config import StorageSection
    from afasa_ops.infra.s3 import S3Client


class Storage(Protocol):
    @property
    def url(self) -> str: ...

    def put_file(self, key: str, path: Path, content_type: str) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int | None: ...
    def delete(self, key: str) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def close(self) -> None: ...


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise DriverError(f"storage key {key!r} is not a plain relative path")
    return key


@dataclass
class FileStorage:
    root: Path

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)  # readers see the old object or the new one, never half

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        if not self.root.exists():
            return []
        keys = [
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ]
        return sorted(k for k in keys if k.startswith(prefix))

    def close(self) -> None:
        """Nothing is held open between calls."""


@dataclass
class S3Storage:
    bucket: str
    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    _bucket_checked: bool = False
    _s3: S3Client | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"

    def _client(self) -> S3Client:
        if self._s3 is None:
            from afasa_ops.infra.s3 import S3Client

            # Bounded: a refused or silent endpoint is an outage within seconds, not minutes.
            self._s3 = S3Client(
                self.endpoint,
                self.access_key,
                self.secret_key,
                self.region,
                connect_timeout_s=S3_CONNECT_TIMEOUT_S,
                read_timeout_s=S3_READ_TIMEOUT_S,
            )
        return self._s3

    def _where(self, key: str | None = None) -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def _ensure_bucket(self, client: S3Client) -> None:
        if self._bucket_checked:
            return
        if not client.bucket_exists(self.bucket):
            try:
                client.make_bucket(self.bucket)
            except Exception as exc:  # a racing worker may have created it
                if not client.bucket_exists(self.bucket):
                    raise exc
        self._bucket_checked = True

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        client = self._client()
        with s3_errors("put", self._where(key)):
            self._ensure_bucket(client)
            client.put_file(self.bucket, _safe_key(key), path, content_type)

    def get_bytes(self, key: str) -> bytes:
        with s3_errors("get", self._where(key)):
            return self._client().get_object(self.bucket, key)

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        with s3_errors("stat", self._where(key)):
            return self._client().head_object(self.bucket, key)

    def delete(self, key: str) -> None:
        with s3_errors("remove", self._where(key)):
            self._client().delete_object(self.bucket, key)

    def list_keys(self, prefix: str) -> list[str]:
        with s3_errors("list", self._where()):
            return sorted(k for k in self._client().list_keys(self.bucket, prefix) if k)

    def presigned_get(self, key: str, expires_s: int) -> str:
        """A time-limited download URL of one object (signed locally: no request is made)."""
        return self._client().presigned_get(self.bucket, key, expires_s)

    def close(self) -> None:
        if self._s3 is not None:
            self._s3.close()


S3_CONNECT_TIMEOUT_S = 5.0
S3_READ_TIMEOUT_S = 60.0
# S3 error codes that say "later", not "never": the service is there but not serving.
_S3_UNAVAILABLE_CODES = {"ServiceUnavailable", "SlowDown", "InternalError", "RequestTimeout"}


def _cause(exc: BaseException) -> tuple[str, bool]:
    """(what went wrong in a few words, whether it is an outage) for an S3 client error."""
    import httpx

    from afasa_ops.infra.s3 import S3Error

    if isinstance(exc, S3Error):
        unavailable = exc.code in _S3_UNAVAILABLE_CODES or exc.status >= 500
        return str(exc), unavailable
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out", True
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        return ("connection refused" if "refused" in text else "cannot connect"), True
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return "no answer (read timed out)", True
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection reset", True
    if isinstance(exc, ConnectionError):
        return "connection reset", True
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__, True
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__), False


def _translate(op: str, where: str, exc: BaseException) -> DriverError:
    cause, outage = _cause(exc)
    message = f"S3 {op} {where}: {cause}"
    return Unavailable(STORAGE, message) if outage else DriverError(message)


@contextmanager
def s3_errors(op: str, where: str) -> Iterator[None]:
    """Every S3 client error as one line ("S3 put s3://bucket/key: connection refused");
    an outage as `Unavailable`, so a worker holds its job instead of failing it."""
    import httpx

    from afasa_ops.infra.s3 import S3Error

    try:
        yield
    except (S3Error, OSError, httpx.HTTPError) as exc:
        raise _translate(op, where, exc) from exc


def open_storage(section: StorageSection, base_dir: Path) -> Storage:
    """Storage from [storage]; a relative file:// directory is taken from the config's folder."""
    from afasa_ops.config import secret_value

    parts = urlsplit(section.url)
    if parts.scheme == "file":
        raw = section.url[len("file://") :]
        root = Path(raw)
        return FileStorage(root if root.is_absolute() else (base_dir / root).resolve())
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"[storage] url {section.url!r}: s3:// needs a bucket name")
        access, secret = secret_value(section.access_key), secret_value(section.secret_key)
        if not section.endpoint or not access or not secret:
            raise ConfigError(
                "[storage] s3:// needs endpoint, access_key and secret_key",
                hint='e.g. endpoint = "http://minio:9000", access_key = { env = "S3_ACCESS_KEY" }',
            )
        return S3Storage(parts.netloc, section.endpoint, access, secret, section.region)
    raise ConfigError(
        f"[storage] url {section.url!r}: unsupported scheme",
        hint="use file://DIR or s3://BUCKET",
    )
