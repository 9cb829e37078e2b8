"""The local certificate authority: trusted once, and the installable app works without flags.

``prepare-instance`` (run by ./start.sh and the harness) makes instance/ca.pem and a server
certificate signed by it; ``scripts/trust-dev-ca.sh`` imports the authority into the
user's NSS store with certutil. A fresh Chromium profile whose HOME has that store loads
the site without any certificate flag and registers the service worker; the same Chromium
with an empty HOME refuses the site.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from app.lib.devcert import CA_CN, ensure_dev_certificate
from tests.e2e.harness import CHROMIUM, CHROMIUM_ARGS, ROOT, ServerProcess

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry pebble orchid 42"


def trust(ca: Path, home: Path) -> None:
    env = {**os.environ, "HOME": str(home), "MEDCHAT_TRUST_SYSTEM": "0"}  # never this machine's store in a test
    done = subprocess.run(["bash", str(ROOT / "scripts/trust-dev-ca.sh"), str(ca)], env=env, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 0, done.stdout + done.stderr
    assert (home / ".pki" / "nssdb" / "cert9.db").exists(), done.stdout + done.stderr


async def open_login(home: Path, url: str) -> tuple[Any, Any, Any, str | None]:
    """Launch Chromium with ``home`` as HOME (its NSS store) and no certificate flag."""
    from playwright.async_api import Error, async_playwright

    pw = await async_playwright().start()
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env={**os.environ, "HOME": str(home)})
    page = await (await browser.new_context(ignore_https_errors=False)).new_page()
    try:
        await page.goto(url)
    except Error as exc:
        return pw, browser, page, str(exc)
    return pw, browser, page, None


async def test_the_trusted_authority_lets_the_service_worker_register_without_flags(server: ServerProcess, tmp_path: Path) -> None:
    ca = server.instance / "ca.pem"
    assert ca.exists()
    authority = x509.load_pem_x509_certificate(ca.read_bytes())
    assert authority.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == CA_CN
    server.create_user("nina", PASSWORD, display_name="Nina Nurse")
    url = f"https://localhost:{server.https_port}/login"

    # Untrusted: an empty profile refuses the certificate (so the next part proves something).
    pw, browser, _page, error = await open_login(tmp_path / "empty-home", url)
    try:
        assert error is not None and "ERR_CERT" in error, error
    finally:
        await browser.close()
        await pw.stop()

    home = tmp_path / "home"
    home.mkdir()
    trust(ca, home)
    pw, browser, page, error = await open_login(home, url)
    try:
        assert error is None, error
        await page.fill("#username", "nina")
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation(url=re.compile(r"/chats$")):
            await page.click("main button[type=submit]")
        assert await page.evaluate("navigator.serviceWorker.ready.then(r => r.active !== null)") is True
        await page.reload()  # a page loaded after activation is controlled by the worker
        await page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15000)
    finally:
        await browser.close()
        await pw.stop()


def test_a_hospital_certificate_is_left_alone(tmp_path: Path) -> None:
    """prepare-instance never replaces a certificate MedChat did not make."""
    folder = tmp_path / "inst"
    made = ensure_dev_certificate(folder)
    assert made.ca is not None and made.issued
    # A later run keeps the same certificate, and adds a name it lacks.
    again = ensure_dev_certificate(folder)
    assert not again.issued and again.cert.read_bytes() == made.cert.read_bytes()
    named = ensure_dev_certificate(folder, extra_names=("medchat.ward.example",))
    assert named.issued
    leaf = x509.load_pem_x509_certificate(named.cert.read_bytes())
    assert "medchat.ward.example" in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    # Replace it with "the hospital's" certificate: made elsewhere, any name.
    other = tmp_path / "other"
    ensure_dev_certificate(other)
    hospital = x509.load_pem_x509_certificate((other / "ca.pem").read_bytes())  # any certificate not ours as a leaf
    (folder / "cert.pem").write_bytes(hospital.public_bytes(serialization.Encoding.PEM))
    before = (folder / "cert.pem").read_bytes()
    kept = ensure_dev_certificate(folder, extra_names=("medchat.ward.example",))
    assert kept.ca is None and not kept.issued
    assert (folder / "cert.pem").read_bytes() == before
    for name in ("cert.pem", "key.pem", "ca.pem", "ca-key.pem"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600, name
