"""Fixtures for /ws tests: people with logged-in clients, their direct chat, per-test config.

``@pytest.mark.app_config(KEY=value)`` changes the app's configuration for one test.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from app.services import Services
from tests.helpers import conversation_id_of, user_id
from tests.support import Client


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "app_config(**values): configuration for this test's app")


@pytest.fixture
def app_config(app_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    for mark in reversed(list(request.node.iter_markers("app_config"))):
        app_config.update(mark.kwargs)
    return app_config


@dataclass
class People:
    """alice and bob share a direct chat ``ab``; carol shares nothing with them."""

    svc: Services
    alice: Client
    bob: Client
    carol: Client
    ids: dict[str, int]
    ab: int

    async def direct(self, client: Client, username: str) -> int:
        response = await client.submit("/chats/direct", {"username": username})
        assert response.status_code == 303
        return conversation_id_of(response.headers["Location"])



@pytest.fixture
async def people(svc: Services, login_as: Any) -> People:
    clients = {name: await login_as(name) for name in ("alice", "bob", "carol")}
    ids = {name: await user_id(svc, name) for name in clients}
    p = People(svc, clients["alice"], clients["bob"], clients["carol"], ids, 0)
    p.ab = await p.direct(p.alice, "bob")
    return p


async def heartbeats_waiting(app: Any, count: int) -> None:
    """Wait (in real time, at most 5 s) until ``count`` sockets have their next heartbeat
    scheduled (their session re-check ended) and the heartbeat sleeps on the clock."""
    heartbeat = app.extensions["medchat_ws"].heartbeat
    clock = app.extensions["medchat"].clock
    async with asyncio.timeout(5.0):
        while heartbeat.waiting() < count:
            await asyncio.sleep(0.005)
        await clock.sleeping(1, due_within=heartbeat.interval)
