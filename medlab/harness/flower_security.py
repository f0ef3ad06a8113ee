"""Throwaway credentials for ``medlab federate --tls`` / ``--node-auth`` on loopback: a
certificate authority with a server certificate it signs, and SuperNode key pairs. A real
federation uses its organisations' own authority and keys (docs/federation.md)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any

__all__ = ["make_certificates", "make_node_key"]

_MISSING = (
    "medlab federate --tls/--node-auth needs cryptography (the harness extra): in the "
    "repository, pip install -c constraints.txt -e '.[harness,flower]'"
)


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise RuntimeError(_MISSING) from None


def make_certificates(folder: Path, *, days: int = 1) -> dict[str, Path]:
    """A throwaway certificate authority and a server certificate it signs for 127.0.0.1 and
    localhost (EC P-256 keys, valid ``days``), written to ``folder`` as ``ca.crt``,
    ``server.pem`` and ``server.key`` (owner-only); returns their paths as ``ca``, ``cert``,
    ``key``. They pass strict X.509 verification (key usages and key identifiers, as Python
    3.13's default context requires)."""
    _require_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder.mkdir(parents=True, exist_ok=True)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _signed(
        "medlab throwaway CA", ca_key.public_key(), "medlab throwaway CA", ca_key, days,
        [(x509.BasicConstraints(ca=True, path_length=0), True), (_usage(ca=True), True)],
    )  # fmt: skip
    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    server = [
        (x509.SubjectAlternativeName(sans), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_usage(ca=False), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
    ]
    cert = _signed("127.0.0.1", key.public_key(), "medlab throwaway CA", ca_key, days, server)
    paths = {"ca": folder / "ca.crt", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(ser.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(ser.Encoding.PEM))
    paths["key"].touch(mode=0o600)
    paths["key"].write_bytes(
        key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    )
    return paths


def make_node_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh EC P-384 key pair for one SuperNode in OpenSSH format, as Flower reads it:
    ``folder/name`` (private, owner-only) and ``folder/name.pub``; returns both paths."""
    _require_cryptography()
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private, public = folder / name, folder / f"{name}.pub"
    private.touch(mode=0o600)
    private.write_bytes(
        key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    )
    return private, public


def _signed(
    subject: str, public_key: Any, issuer: str, issuer_key: Any, days: int, extensions: list
) -> Any:
    """An X.509 certificate for ``subject``'s ``public_key`` signed by ``issuer_key`` (SHA-256),
    valid from 5 minutes ago for ``days``, with ``extensions`` ((extension, critical) pairs) and
    its subject key identifier."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _usage(*, ca: bool) -> Any:
    """KeyUsage of a CA (signs certificates and CRLs) or of a TLS server (signs handshakes)."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
