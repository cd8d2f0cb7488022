"""Fetching over TLS: the stage's client trusts what httpx trusted (certifi's authorities, or
SSL_CERT_FILE), refuses a certificate nobody vouches for, and `verify_tls: false` reads it anyway."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from factflow_assets.fetching.http_fetch import FetchPolicy, fetch
from resources.http import new_http_client


def _certificate(subject: str, key, issuer: x509.Name | None, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def https_site(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(URL of a page served over TLS on loopback, the file of the authority that signed it)."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("factflow test authority", ca_key, None, ca_key, ca=True)
    server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            body = b"<html><title>Secure</title></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}/page", folder / "ca.pem"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _fetch(url: str, verify_tls: bool) -> bytes:
    async def main() -> bytes:
        async with new_http_client(verify_tls=verify_tls) as client:
            return (await fetch(client, url, FetchPolicy(retries=0))).body

    return asyncio.run(main())


def test_a_certificate_an_authority_of_ssl_cert_file_signed_is_trusted(https_site, monkeypatch):
    url, authority = https_site
    monkeypatch.setenv("SSL_CERT_FILE", str(authority))
    assert b"Secure" in _fetch(url, verify_tls=True)


def test_a_certificate_no_known_authority_signed_is_refused(https_site, monkeypatch):
    url, _ = https_site
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        _fetch(url, verify_tls=True)


def test_verify_tls_off_reads_it_anyway(https_site, monkeypatch):
    url, _ = https_site
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert b"Secure" in _fetch(url, verify_tls=False)
