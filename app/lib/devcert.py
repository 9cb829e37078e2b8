"""A small local certificate authority and a server certificate for HTTPS development.

Browsers refuse to register a service worker behind a certificate warning, so the
installable app needs a certificate they trust. ``./start.sh`` (``prepare-instance``) makes
a local authority (``ca.pem``, its key ``ca-key.pem``) once, and a server certificate
signed by it (``cert.pem`` with the chain, ``key.pem``) for localhost, 127.0.0.1, ::1 and
the host of PUBLIC_URL. Trusting ``ca.pem`` once (``scripts/trust-dev-ca.sh``) makes every
later server certificate of this instance trusted too.

A certificate MedChat did not make (a hospital's own) is never touched. Keys are mode 600.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.lib.private_files import make_private_folder, write_private_file

SERVER_CN = "MedChat development (localhost)"
CA_CN = "MedChat local development CA"
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class DevCertificate:
    cert: Path
    key: Path
    ca: Path | None  # None: the certificate in place is not MedChat's (left alone)
    issued: bool  # a new server certificate was written now


def ensure_dev_certificate(folder: Path, days: int = 365, extra_names: tuple[str, ...] = ()) -> DevCertificate:
    """Make sure ``folder`` holds a usable certificate; issue one from the local CA if the
    one there is missing, is MedChat's and expires within a week, is an older self-signed
    MedChat certificate, or does not name every host in ``extra_names``."""
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    ca_path, ca_key_path = folder / "ca.pem", folder / "ca-key.pem"
    names = tuple(dict.fromkeys([*LOOPBACK, *(n.lower() for n in extra_names if n)]))
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if not _is_ours(current):
            return DevCertificate(cert_path, key_path, None, False)
        if _still_good(current, ca_path, names):
            return DevCertificate(cert_path, key_path, ca_path, False)
    make_private_folder(folder)
    ca_cert, ca_key = _ensure_ca(ca_path, ca_key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_CN)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    # The chain: the server certificate, then the authority (browsers that trust it need no more).
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    return DevCertificate(cert_path, key_path, ca_path, True)


def _is_ours(cert: x509.Certificate) -> bool:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return bool(cns) and cns[0].value == SERVER_CN


def _still_good(cert: x509.Certificate, ca_path: Path, names: tuple[str, ...]) -> bool:
    if cert.not_valid_after_utc <= datetime.now(UTC) + timedelta(days=7) or not ca_path.exists():
        return False
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    if cert.issuer != ca.subject or ca.not_valid_after_utc <= datetime.now(UTC) + timedelta(days=7):
        return False  # the older self-signed development certificate, or a dying authority
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(v).lower() for v in san.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(_normal(n) in present for n in names)


def _ensure_ca(ca_path: Path, ca_key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The local authority: kept for ten years, so a browser trusts this instance once."""
    if ca_path.exists() and ca_key_path.exists():
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if isinstance(ca_key, ec.EllipticCurvePrivateKey) and ca.not_valid_after_utc > datetime.now(UTC) + timedelta(days=30):
            return ca, ca_key
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, CA_CN),
        # A per-instance serial in the name, so two instances' authorities never collide in a store.
        x509.NameAttribute(NameOID.SERIAL_NUMBER, f"{x509.random_serial_number():x}"[:32]),
    ])
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(ca_key_path, _key_pem(ca_key))
    _write_private(ca_path, ca.public_bytes(serialization.Encoding.PEM))
    return ca, ca_key


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _normal(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 600 whatever the umask (written aside, then renamed,
    so Hypercorn never reads half a certificate)."""
    tmp = path.with_name(path.name + ".tmp")
    write_private_file(tmp, data)
    os.replace(tmp, path)
