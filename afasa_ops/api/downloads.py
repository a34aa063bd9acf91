"""Download URLs of ready reports: presigned for S3, a served path for file storage."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from afasa_ops.config import Settings


def belongs_to(view: Any, tenant_id: uuid.UUID) -> bool:
    """Defence in depth behind row-level security: a report's stored key must lie under its
    caller's tenant prefix (`tenant/<id>/`), or nothing is served or signed for it."""
    from afasa_ops.platform.reports import tenant_prefix

    key = str(view.s3_key or "")
    return key.startswith(tenant_prefix(tenant_id)) and ".." not in key.split("/")


def download_url(settings: Settings, view: Any) -> str:
    from afasa_ops.platform.storage import S3Storage, open_storage

    storage = open_storage(settings.storage, settings.base_dir)
    if isinstance(storage, S3Storage):
        return storage.presigned_get(str(view.s3_key), int(settings.api.presign_expiry_s))
    # A path, not an absolute URL: behind Traefik the host the client used is what counts.
    return f"/api/report/reports/{view.id}/download"


def local_file(settings: Settings, key: str) -> Path | None:
    """The file of a key under file:// storage; None for S3 or a key that is not plain."""
    from afasa_ops.errors import DriverError
    from afasa_ops.platform.storage import FileStorage, open_storage

    storage = open_storage(settings.storage, settings.base_dir)
    if not isinstance(storage, FileStorage):
        return None
    try:
        return storage.root / key if storage.exists(key) else None
    except DriverError:  # "../" and friends
        return None
