"""The S3 driver's Signature Version 4 against the worked examples of Amazon's S3 API
reference ("Signature Calculations for the Authorization Header" and "Authenticating
Requests: Using Query Parameters"): the same inputs must give the published signatures."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from afasa_ops.infra.s3 import EMPTY_SHA256, UNSIGNED, S3Client, signature

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SCOPE = "20130524/us-east-1/s3/aws4_request"
HOST = "examplebucket.s3.amazonaws.com"


def test_header_signature_matches_amazons_get_object_example() -> None:
    headers = {
        "host": HOST,
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    got = signature(
        SECRET, "GET", "/test.txt", {}, headers, EMPTY_SHA256, "20130524T000000Z", SCOPE
    )
    assert got == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_query_signature_matches_amazons_presigned_example() -> None:
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"AKIAIOSFODNN7EXAMPLE/{SCOPE}",
        "X-Amz-Date": "20130524T000000Z",
        "X-Amz-Expires": "86400",
        "X-Amz-SignedHeaders": "host",
    }
    got = signature(
        SECRET, "GET", "/test.txt", query, {"host": HOST}, UNSIGNED, query["X-Amz-Date"], SCOPE
    )
    assert got == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_presigned_url_is_path_style_with_the_key_encoded_once() -> None:
    client = S3Client("http://s3.local:80", "AK", "SK")
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()
    url = client.presigned_get("reports", "tenant/t 1/r+1=ü.pdf", 600, now=now)
    parts = urlsplit(url)
    # The default port is not part of the Host that is signed (httpx does not send it).
    assert parts.netloc == "s3.local"
    assert parts.path == "/reports/tenant/t%201/r%2B1%3D%C3%BC.pdf"
    query = parse_qs(parts.query)
    assert query["X-Amz-Credential"] == ["AK/20261205/us-east-1/s3/aws4_request"]
    assert query["X-Amz-Date"] == ["20261205T120000Z"] and query["X-Amz-Expires"] == ["600"]
    assert len(query["X-Amz-Signature"][0]) == 64
