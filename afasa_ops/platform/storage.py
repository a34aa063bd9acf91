"""Report storage: file://DIR (embedded default) or s3://BUCKET on any S3 API via minio.

Puts are whole-object and keyed by the report id, so a redelivered job overwrites the same
object instead of adding a second one."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from afasa_ops.errors import ConfigError, DriverError

if TYPE_CHECKING:
    from afasa_ops.config import StorageSection


class Storage(Protocol):
    @property
    def url(self) -> str: ...

    def put_file(self, key: str, path: Path, content_type: str) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str) -> list[str]: ...


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

    def list_keys(self, prefix: str) -> list[str]:
        if not self.root.exists():
            return []
        keys = [
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ]
        return sorted(k for k in keys if k.startswith(prefix))


@dataclass
class S3Storage:
    bucket: str
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    _bucket_checked: bool = False

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"

    def _client(self) -> Any:
        from minio import Minio

        parts = urlsplit(self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}")
        return Minio(
            parts.netloc,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=parts.scheme == "https",
            region=self.region,
        )

    def _ensure_bucket(self, client: Any) -> None:
        if self._bucket_checked:
            return
        if not client.bucket_exists(self.bucket):
            try:
                client.make_bucket(self.bucket, location=self.region)
            except Exception as exc:  # a racing worker may have created it
                if not client.bucket_exists(self.bucket):
                    raise exc
        self._bucket_checked = True

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        from minio.error import MinioException

        client = self._client()
        try:
            self._ensure_bucket(client)
            client.fput_object(self.bucket, _safe_key(key), str(path), content_type=content_type)
        except (MinioException, OSError) as exc:
            raise DriverError(f"S3 {self.endpoint} put {self.bucket}/{key}: {exc}") from exc

    def get_bytes(self, key: str) -> bytes:
        from minio.error import MinioException

        try:
            resp = self._client().get_object(self.bucket, key)
        except (MinioException, OSError) as exc:
            raise DriverError(f"S3 {self.endpoint} get {self.bucket}/{key}: {exc}") from exc
        try:
            return bytes(resp.read())
        finally:
            resp.close()
            resp.release_conn()

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self._client().stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return False
            raise DriverError(f"S3 {self.endpoint} stat {self.bucket}/{key}: {exc}") from exc
        return True

    def list_keys(self, prefix: str) -> list[str]:
        from minio.error import S3Error

        try:
            objs = self._client().list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted(o.object_name for o in objs if o.object_name)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return []
            raise DriverError(f"S3 {self.endpoint} list {self.bucket}: {exc}") from exc


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
