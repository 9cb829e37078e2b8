"""Fixtures for action tests: four colleagues and alice's group "Ward 7" with bob and carol."""

from __future__ import annotations

from typing import Any

import pytest

from app.actions import conversations
from app.records import Staff
from app.services import Services
from tests.helpers import actor_for


@pytest.fixture
async def staff(make_user: Any) -> dict[str, Staff]:
    return {name: await make_user(name) for name in ("alice", "bob", "carol", "dave")}


@pytest.fixture
async def group(svc: Services, staff: dict[str, Staff]) -> int:
    return await conversations.do_create_group(svc, actor_for(staff["alice"]), "Ward 7", ["bob", "carol"])
