"""Image references: `[registry/][namespace/]name[:tag][@sha256:digest]`, and what pinned means."""

from __future__ import annotations

from dataclasses import dataclass

from afasa_ops.traefik.compat import release_of


@dataclass(frozen=True)
class ImageRef:
    raw: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The last path component: `traefik` for `docker.io/library/traefik:v3.6.7`."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def is_latest(self) -> bool:
        return self.digest is None and self.tag in (None, "latest")

    @property
    def release(self) -> tuple[int, int, int] | None:
        return release_of(self.tag) if self.tag else None

    @property
    def pinned(self) -> bool:
        """A digest, or a full release tag (`v3.6.7`); `latest`, `v3`, `3.6` float."""
        return self.digest is not None or self.release is not None


def parse_image(raw: str) -> ImageRef:
    text = raw.strip()
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    # A colon before the last slash belongs to a registry port (registry:5000/traefik).
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
    return ImageRef(raw, text, tag or None, digest or None)


def is_traefik(image: str) -> bool:
    return parse_image(image).name == "traefik"
