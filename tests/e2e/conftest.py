"""End-to-end fixtures: ``server`` (a real Hypercorn per module), ``browser``, ``artifacts``.

The machinery lives in ``tests/e2e/harness.py`` so test modules can import it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ServerProcess, start_server


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A fresh instance and a running Hypercorn for this test module."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    running = start_server(tmp_path_factory.mktemp(f"instance-{name}"), name=name)
    try:
        yield running
    finally:
        running.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the Hypercorn log to the report of a failed test that used a server."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, ServerProcess):
                report.sections.append((f"hypercorn log ({value.log_path})", value.log_text()[-20000:]))
    return report


@pytest.fixture
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """Headless Debian Chromium driven by playwright (its own browser download is not used).

    A module marked ``service_worker`` gets one that also trusts the test certificate for
    service worker scripts: ``ignore_https_errors`` covers pages and fetches, but Chromium
    refuses to register a service worker from a certificate it does not trust without
    ``--ignore-certificate-errors``.
    """
    from playwright.async_api import async_playwright

    args = [*CHROMIUM_ARGS, "--ignore-certificate-errors"] if request.node.get_closest_marker("service_worker") else CHROMIUM_ARGS
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``test-artifacts/e2e/`` (git-ignored): screenshots and logs."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
