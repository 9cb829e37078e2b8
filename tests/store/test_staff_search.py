"""The staff search behind the directory and the member pickers (app/store/staff.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.records import StaffPage
from app.services import Services
from app.store import staff
from app.store.models import User

PEOPLE = [
    # username, display name, department, job title
    ("amensah", "Ama Mensah", "Radiology", "Radiographer"),
    ("bdiaz", "Bruno Díaz", "Intensive Care", "Charge Nurse"),
    ("cold", "Cora Old", "Radiology", "Porter"),
    ("dsmith", "Dev Smith", "Pharmacy", "Pharmacist"),
    ("eweiss", "Änne Weiß", "Kardiologie", "Ärztin"),
    ("fxu", "Fang Xu", "", "Locum"),
    ("gone", "Gil Gone", "Radiology", "Radiographer"),  # deactivated below
]


@pytest.fixture
async def people(svc: Services) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with svc.db.transaction() as s:
        for username, name, department, job in PEOPLE:
            row = await staff.add_user(
                s, username=username, display_name=name, department=department, job_title=job,
                role="member", password_hash=None, now=svc.clock.now(),
            )
            ids[username] = row.id
        await s.execute(update(User).where(User.username == "gone").values(active=False))
    return ids


async def page(svc: Services, query: str, *, department: str | None = None, number: int = 1, per_page: int = 50, exclude: tuple[int, ...] = ()) -> StaffPage:
    async with svc.db.reading() as s:
        return await staff.staff_page(s, query, department=department, page=number, per_page=per_page, exclude_ids=exclude)


async def found(svc: Services, query: str, **kwargs: object) -> list[str]:
    return [p.username for p in (await page(svc, query, **kwargs)).people]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mensah", ["amensah"]),  # display name
        ("MENSAH", ["amensah"]),  # any case
        ("dsmi", ["dsmith"]),  # username
        ("DSMITH", ["dsmith"]),
        ("intensive", ["bdiaz"]),  # department
        ("pharmacy", ["dsmith"]),
        ("charge nurse", ["bdiaz"]),  # job title, every word must match somewhere
        ("radiology porter", ["cold"]),  # one word in the department, one in the job title
        ("LOCUM", ["fxu"]),
        ("díaz", ["bdiaz"]),  # not ASCII
        ("änne", ["eweiss"]),  # not ASCII, other case: SQLite's own lower() folds ASCII only
        ("ärztin", ["eweiss"]),
        ("ÄRZTIN", ["eweiss"]),
        ("weiß", ["eweiss"]),
        ("%", []),  # LIKE wildcards typed are characters
        ("_", []),
        ("\\", []),
        ("nobody", []),
        ("", ["amensah", "bdiaz", "cold", "dsmith", "eweiss", "fxu"]),  # everyone active, by name
    ],
)
async def test_each_field_matches(svc: Services, people: dict[str, int], query: str, expected: list[str]) -> None:
    assert sorted(await found(svc, query)) == sorted(expected)


async def test_order_is_by_name(svc: Services, people: dict[str, int]) -> None:
    # (Where "Änne" sorts depends on the database's collation.)
    assert [u for u in await found(svc, "") if u != "eweiss"] == ["amensah", "bdiaz", "cold", "dsmith", "fxu"]


async def test_inactive_people_are_never_found(svc: Services, people: dict[str, int]) -> None:
    assert "gone" not in await found(svc, "")
    assert await found(svc, "gil gone") == []
    assert await found(svc, "", department="Radiology") == ["amensah", "cold"]


async def test_department_filter(svc: Services, people: dict[str, int]) -> None:
    assert await found(svc, "", department="Radiology") == ["amensah", "cold"]
    assert await found(svc, "porter", department="Radiology") == ["cold"]
    assert await found(svc, "porter", department="Pharmacy") == []
    assert await found(svc, "", department="radiology") == []  # the exact name from the menu


async def test_departments_are_those_of_active_staff(svc: Services, people: dict[str, int]) -> None:
    async with svc.db.transaction() as s:
        await s.execute(update(User).where(User.username == "dsmith").values(active=False))
    async with svc.db.reading() as s:
        # No empty department; Pharmacy's only person is deactivated.
        assert await staff.departments(s) == ["Intensive Care", "Kardiologie", "Radiology"]


async def test_paging_boundaries(svc: Services, people: dict[str, int]) -> None:
    everyone = await found(svc, "")
    first = await page(svc, "", per_page=2)
    assert [p.username for p in first.people] == everyone[:2]
    assert first.page == 1 and first.has_next and not first.has_previous
    third = await page(svc, "", number=3, per_page=2)
    # Six people, two a page: the third page is the last, and full.
    assert [p.username for p in third.people] == everyone[4:6]
    assert third.has_previous and not third.has_next
    beyond = await page(svc, "", number=4, per_page=2)
    assert beyond.people == [] and not beyond.has_next and beyond.has_previous
    exact = await page(svc, "", per_page=6)
    assert len(exact.people) == 6 and not exact.has_next  # a full page with nothing after it
    walked = [p.username for n in (1, 2, 3) for p in (await page(svc, "", number=n, per_page=2)).people]
    assert walked == everyone  # every page in turn: everyone once


async def test_excluded_people_are_on_no_page(svc: Services, people: dict[str, int]) -> None:
    left_out = (people["amensah"], people["cold"])
    assert await found(svc, "radiology", exclude=left_out) == []
    assert await found(svc, "", per_page=2, exclude=left_out) == ["bdiaz", "dsmith"]


EVERYONE = ["amensah", "bdiaz", "cold", "dsmith", "eweiss", "fxu"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("\x00", EVERYONE), ("a\x00b", ["bdiaz"]), ("\ud800", EVERYONE), ("\x1b[31m", []), ("\u202e", [])],
)
async def test_hostile_search_text_is_no_error(svc: Services, people: dict[str, int], query: str, expected: list[str]) -> None:
    # PostgreSQL refuses a NUL in a string: control characters and lone surrogates are only
    # gaps between words ("a\x00b" looks for "a" and "b").
    assert sorted(await found(svc, query)) == expected
