"""The S3 driver: the few S3 REST calls afasa-ops makes (object head, get, put, delete and
list; bucket head and create; a presigned GET), signed with AWS Signature Version 4 over
httpx, path-style (`ENDPOINT/BUCKET/KEY`), as MinIO, SeaweedFS and Ceph all accept.

Why not an S3 SDK: the one we used pulled in pycryptodome, argon2 and urllib3 for these few
calls, and cost a quarter of a converged run's start-up. Signing is the standard algorithm
(docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from afasa_ops.infra import http

if TYPE_CHECKING:
    import httpx

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
# A restarting gateway answers 5xx, or refuses or cuts a connection, for a moment: those are
# retried, with a short backoff (then an outage is an outage: the caller holds its job).
RETRIES = 2
BACKOFF_S = 0.2


class S3Error(Exception):
    """The server answered with an error: its S3 code (`NoSuchKey`, `SignatureDoesNotMatch`,
    or `HTTP 503` when the body named none) and message."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status


def _uri(text: str, *, keep_slash: bool) -> str:
    """SigV4's URI encoding: every byte but A-Z a-z 0-9 - . _ ~ is %XX (and '/' in paths)."""
    return quote(text, safe="-._~/" if keep_slash else "-._~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass
class S3Client:
    endpoint: str  # http(s)://host:port, or host:port for plain http
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}")
        # The Host header as httpx sends it (and so as it must be signed): no default port.
        default = {"http": 80, "https": 443}.get(parts.scheme)
        host = parts.netloc.rsplit("@", 1)[-1]
        self._host = host.removesuffix(f":{default}") if parts.port == default else host
        self._base = f"{parts.scheme}://{self._host}"

    # -- the calls ----------------------------------------------------------------------------
    def head_object(self, bucket: str, key: str) -> int | None:
        """The object's size, or None when it (or its bucket) does not exist."""
        response = self._send("HEAD", bucket, key, ok_missing=True)
        if response is None:
            return None
        return int(response.headers.get("content-length", "0"))

    def get_object(self, bucket: str, key: str) -> bytes:
        response = self._send("GET", bucket, key)
        assert response is not None
        return response.content

    def put_object(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._send("PUT", bucket, key, body=body, headers={"content-type": content_type})

    def put_file(self, bucket: str, key: str, path: Path, content_type: str) -> None:
        """A file as one object, streamed: read twice (its hash, then the upload) in chunks,
        never held whole, so a report of any size costs a chunk of memory."""
        self._send("PUT", bucket, key, body=path, headers={"content-type": content_type})

    def delete_object(self, bucket: str, key: str) -> None:
        # S3 answers 204 whether or not the key existed; some gateways say NoSuchKey.
        self._send("DELETE", bucket, key, ok_missing=True)

    def list_keys(self, bucket: str, prefix: str, *, page_size: int = 1000) -> list[str]:
        """Every key under prefix (ListObjectsV2, page by page); none for a missing bucket."""
        keys: list[str] = []
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size)}
            if token:
                query["continuation-token"] = token
            response = self._send("GET", bucket, query=query, ok_missing=True)
            if response is None:
                return []
            root = ET.fromstring(response.content)
            keys += [el.text or "" for el in root.iter() if _local(el.tag) == "Key"]
            truncated = _child_text(root, "IsTruncated") == "true"
            token = _child_text(root, "NextContinuationToken")
            if not truncated or not token:
                return keys

    def bucket_exists(self, bucket: str) -> bool:
        return self._send("HEAD", bucket, ok_missing=True) is not None

    def make_bucket(self, bucket: str) -> None:
        body = b""
        if self.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.region}</LocationConstraint>"
                "</CreateBucketConfiguration>"
            ).encode()
        self._send("PUT", bucket, body=body)

    def presigned_get(self, bucket: str, key: str, expires_s: int, now: float | None = None) -> str:
        """A GET URL anyone holding it may use until it expires (query-string SigV4)."""
        stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        amz_date, day = stamp.strftime("%Y%m%dT%H%M%SZ"), stamp.strftime("%Y%m%d")
        scope = f"{day}/{self.region}/s3/aws4_request"
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires_s),
            "X-Amz-SignedHeaders": "host",
        }
        path = self._path(bucket, key)
        signed = signature(
            self.secret_key, "GET", path, query, {"host": self._host}, UNSIGNED, amz_date, scope
        )
        query["X-Amz-Signature"] = signed
        return f"{self._base}{path}?{_canonical_query(query)}"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- signing and sending ------------------------------------------------------------------
    def _path(self, bucket: str, key: str | None = None) -> str:
        return (
            "/" + _uri(bucket, keep_slash=False) + ("/" + _uri(key, keep_slash=True) if key else "")
        )

    def _signed_headers(
        self, method: str, path: str, query: dict[str, str], payload: str, extra: dict[str, str]
    ) -> dict[str, str]:
        stamp = datetime.now(UTC)
        amz_date, day = stamp.strftime("%Y%m%dT%H%M%SZ"), stamp.strftime("%Y%m%d")
        scope = f"{day}/{self.region}/s3/aws4_request"
        headers = {
            "host": self._host,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload,
            **{k.lower(): v for k, v in extra.items()},
        }
        signed = signature(self.secret_key, method, path, query, headers, payload, amz_date, scope)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(sorted(headers))}, Signature={signed}"
        )
        return headers

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            self._http = http.client(self.read_timeout_s)
            self._http.timeout = httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)
        return self._http

    def _send(
        self,
        method: str,
        bucket: str,
        key: str | None = None,
        *,
        query: dict[str, str] | None = None,
        body: bytes | Path = b"",
        headers: dict[str, str] | None = None,
        ok_missing: bool = False,
    ) -> httpx.Response | None:
        """One signed request, 5xx retried; the response, None for a 404 where `ok_missing`,
        else S3Error (the server's refusal) or httpx's own error (no answer). A Path body is
        streamed from the file, with its length given (S3 refuses a chunked upload)."""
        import httpx

        path = self._path(bucket, key)
        query = query or {}
        url = self._base + path + (f"?{_canonical_query(query)}" if query else "")
        payload = _file_sha256(body) if isinstance(body, Path) else hashlib.sha256(body).hexdigest()
        extra = dict(headers or {})
        if isinstance(body, Path):
            extra["content-length"] = str(body.stat().st_size)
        for attempt in range(RETRIES + 1):
            signed = self._signed_headers(method, path, query, payload, extra)
            del signed["host"]  # httpx sends the same Host itself
            content = _chunks(body) if isinstance(body, Path) else (body or None)
            try:
                response = self._client().request(method, url, content=content, headers=signed)
            except (
                httpx.ConnectError,
                httpx.ReadError,
                httpx.WriteError,
                httpx.RemoteProtocolError,
            ):
                # Every call here is idempotent: a refused or cut connection is tried again.
                if attempt == RETRIES:
                    raise
                time.sleep(BACKOFF_S * (2**attempt))
                continue
            if response.status_code < 500 or attempt == RETRIES:
                break
            time.sleep(BACKOFF_S * (2**attempt))
        if response.status_code < 300:
            return response
        error = _error_of(response)
        if ok_missing and response.status_code == 404:
            return None
        raise error


def signature(
    secret_key: str,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    payload_hash: str,
    amz_date: str,
    scope: str,
) -> str:
    """The SigV4 signature of one request: `headers` are the signed ones, lower-case names;
    `scope` is DAY/REGION/s3/aws4_request."""
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            path,
            _canonical_query(query),
            "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, digest])
    key = _hmac(("AWS4" + secret_key).encode(), scope.split("/")[0])
    for part in scope.split("/")[1:]:
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


CHUNK = 1 << 20


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _canonical_query(query: dict[str, str]) -> str:
    pairs = sorted((_uri(k, keep_slash=False), _uri(v, keep_slash=False)) for k, v in query.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(root: Any, name: str) -> str | None:
    for child in root:
        if _local(child.tag) == name:
            return str(child.text or "")
    return None


def _error_of(response: httpx.Response) -> S3Error:
    """The S3 error a response carries: <Error><Code>...</Code><Message>...</Message>."""
    code, message = f"HTTP {response.status_code}", ""
    if response.content:
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            message = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        else:
            code = _child_text(root, "Code") or code
            message = _child_text(root, "Message") or ""
    elif response.status_code == 404:
        code = "NoSuchKey"  # a HEAD's 404 has no body to say more
    elif response.status_code == 403:
        code = "AccessDenied"
    return S3Error(code, message, response.status_code)
