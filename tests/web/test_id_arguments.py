"""Every id argument of every door goes through app/lib/ids.py: bad ones are 400/404, never 500.

One table of bad values (tests/helpers.py: BAD_IDS) is walked through every route that takes
an id in its query string, a form field or its path. /ws ``?after=`` is walked in
tests/ws/test_auth_and_limits.py with the same table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.actions.accounts import DIRECTORY_MAX_PAGE
from app.services import Services
from tests.helpers import BAD_IDS, all_messages, conversation_id_of, fill, hidden, http_rules, new_id, snapshot
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")

APP = Path(__file__).resolve().parents[2] / "app"

# (method, path with {conv}, argument name, who): every id argument a page or form reads.
ID_ARGUMENTS = [
    ("GET", "/chats/{conv}", "before", "alice"),
    ("GET", "/chats/{conv}", "reply_to", "alice"),
    ("GET", "/chats/{conv}", "n", "alice"),
    ("GET", "/chats/{conv}/pane", "since", "alice"),
    ("GET", "/chats/{conv}/pane", "n", "alice"),
    ("GET", "/chats/{conv}/messages.json", "before", "alice"),
    ("GET", "/admin/audit", "before", "root"),
    ("POST", "/chats/{conv}/messages", "reply_to", "alice"),
    ("GET", "/directory", "page", "alice"),
    ("GET", "/chats/new-group", "page", "alice"),
    ("POST", "/chats/new-group", "page", "alice"),
    ("GET", "/chats/{conv}/info", "page", "alice"),
    ("POST", "/chats/{conv}/info", "page", "alice"),
    ("POST", "/chats/{conv}/members", "page", "alice"),
]
PATH_RULES = [(rule, method) for rule, method in http_rules() if "<int:" in rule]


@pytest.fixture
async def people(login_as: object) -> tuple[dict[str, Client], int]:
    """alice (in a direct chat with bob, with one message) and root, an administrator."""
    alice = await login_as("alice")  # type: ignore[operator]
    await login_as("bob")  # type: ignore[operator]
    root = await login_as("root", admin=True)  # type: ignore[operator]
    r = await alice.submit("/chats/direct", {"username": "bob"}, page="/directory")
    conv = conversation_id_of(r.headers["Location"])
    await alice.submit(f"/chats/{conv}/messages", {"body": "hello", "client_msg_id": new_id()}, page=f"/chats/{conv}")
    return {"alice": alice, "root": root}, conv


def test_the_table_covers_every_id_argument_in_the_code() -> None:
    """A new id argument in app/web must be added to ID_ARGUMENTS (and so be walked)."""
    found = set()
    for source in (APP / "web").glob("*.py"):
        for name in re.findall(r'(?:_int_arg|id_arg)\("(\w+)"', source.read_text()):
            found.add((source.stem, name))
    covered = {("admin" if path.startswith("/admin") else "chats", name) for _, path, name, _ in ID_ARGUMENTS}
    assert found == covered
    # And nothing in the app parses numbers the old way.
    for source in APP.rglob("*.py"):
        if source.name == "ids.py":
            continue  # the parser, whose docstring says why not
        text = source.read_text()
        assert ".isdigit()" not in text, source
        assert not re.search(r"\bint\((?:raw|request|form|websocket)", text), source


@pytest.mark.parametrize(("method", "path", "name", "who"), ID_ARGUMENTS, ids=[f"{m} {p} {n}" for m, p, n, _ in ID_ARGUMENTS])
async def test_bad_id_arguments_are_400(people: tuple[dict[str, Client], int], svc: Services, method: str, path: str, name: str, who: str) -> None:
    clients, conv = people
    client = clients[who]
    url = path.format(conv=conv)
    token = hidden(await (await client.get(f"/chats/{conv}" if who == "alice" else "/chats")).get_data(as_text=True), "csrf_token")
    before = await snapshot(svc, skip=("audit_log", "sessions"))
    for label, encoded in BAD_IDS:
        if method == "GET":
            r = await client.get(f"{url}?{name}={encoded}")
        else:
            body = f"csrf_token={token}&client_msg_id={new_id()}&body=hello&{name}={encoded}"
            r = await client.post(url, data=body.encode("ascii"), headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400, (label, r.status_code)
        assert re.search(rf"{name} must be a (positive )?whole number", await r.get_data(as_text=True)), label
    assert await snapshot(svc, skip=("audit_log", "sessions")) == before  # nothing stored
    assert [m.body for m in await all_messages(svc, conv)] == ["hello"]


@pytest.mark.parametrize(("method", "path", "name", "who"), [a for a in ID_ARGUMENTS if a[0] == "GET"], ids=[f"{p} {n}" for m, p, n, _ in ID_ARGUMENTS if m == "GET"])
async def test_good_and_empty_id_arguments(people: tuple[dict[str, Client], int], svc: Services, method: str, path: str, name: str, who: str) -> None:
    clients, conv = people
    client = clients[who]
    url = path.format(conv=conv)
    newest = (await all_messages(svc, conv))[-1].id
    # Pages stop at DIRECTORY_MAX_PAGE (one more is a 400 too); other ids at 2**63 - 1.
    top = DIRECTORY_MAX_PAGE if name == "page" else 2**63 - 1
    for value in (str(newest), f"000{newest}", str(top)):
        assert (await client.get(f"{url}?{name}={value}")).status_code == 200, value
    if name == "page":
        assert (await client.get(f"{url}?page={top + 1}")).status_code == 400
    # Empty means absent; messages.json needs its ``before``.
    expected = 400 if path.endswith(".json") else 200
    assert (await client.get(f"{url}?{name}=")).status_code == expected


@pytest.mark.parametrize(("rule", "method"), PATH_RULES)
async def test_bad_ids_in_paths_are_404(people: tuple[dict[str, Client], int], svc: Services, rule: str, method: str) -> None:
    clients, conv = people
    client = clients["root"] if rule.startswith("/admin") else clients["alice"]
    token = hidden(await (await client.get("/chats")).get_data(as_text=True), "csrf_token")
    before = await snapshot(svc, skip=("audit_log", "sessions"))
    # "١" is an Arabic-Indic one: werkzeug's \d took it and int() made it 1 (a real id here).
    for label, encoded in [*BAD_IDS, ("arabic-indic-conv", "".join(f"%D9%A{d}" for d in str(conv)))]:
        path = fill(rule, {"conversation_id": encoded, "user_id": encoded, "message_id": encoded})
        if method == "GET":
            r = await client.get(path)
        else:
            r = await client.post(path, form={"csrf_token": token, "body": "x", "client_msg_id": new_id(), "title": "T", "role": "member"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 404, (label, path, r.status_code)
    assert await snapshot(svc, skip=("audit_log", "sessions")) == before
