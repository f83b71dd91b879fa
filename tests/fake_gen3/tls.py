"""A throwaway self-signed certificate for 127.0.0.1 (for the SDK's https-only DRS code)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (SAN ``IP:127.0.0.1``) into ``directory``.

    Point ``requests`` at it with ``REQUESTS_CA_BUNDLE=<cert.pem>``.
    """
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key
