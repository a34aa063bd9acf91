"""The HTTP driver's clients verify https and load the CA bundle only for it: a process that
speaks plain http (Traefik's API, the entrypoint) never builds the verifying context, and an
https server with a certificate no CA signed is refused. Real servers on 127.0.0.1."""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from afasa_ops.infra import http as http_driver


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        pass


def _serve(tls: ssl.SSLContext | None) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


@pytest.fixture
def plain() -> Iterator[str]:
    yield from _serve(None)


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[str]:
    yield from _serve(_self_signed(tmp_path))


def test_plain_http_never_loads_the_ca_bundle(plain: str) -> None:
    http_driver._ssl_context.cache_clear()
    with http_driver.client(5.0) as client:
        assert http_driver.request("GET", plain + "/", timeout_s=5.0, using=client).text == "ok"
    with http_driver.client(5.0, base_url=plain) as client:
        assert client.get("/x").status_code == 200
    assert http_driver._ssl_context.cache_info().currsize == 0


def test_https_is_verified_on_the_same_client(plain: str, tls: str) -> None:
    http_driver._ssl_context.cache_clear()
    with http_driver.client(5.0) as client:
        assert (
            http_driver.request("GET", plain + "/", timeout_s=5.0, using=client).status_code == 200
        )
        with pytest.raises(http_driver.HttpFailure, match="CERTIFICATE_VERIFY_FAILED"):
            http_driver.request("GET", tls + "/", timeout_s=5.0, using=client)
    assert http_driver._ssl_context.cache_info().currsize == 1
