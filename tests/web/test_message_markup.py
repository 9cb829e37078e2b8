"""One drawing of a message: the <template>s the script clones (static/js/render.js) and the
messages the page draws come from one markup path in templates/chats/_message.html, so they
have the same elements in the same order. These tests compare their skeletons (tag, class and
dir of each element) and fail when an element is added to only one of them."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from app.services import Services
from tests.helpers import all_messages, hidden
from tests.support import Client
from tests.web.test_chats import create_group, open_direct, page_html, send

pytestmark = pytest.mark.usefixtures("database_kind")

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# What render.js does to a clone beyond filling slots: the classes it adds to the <li>.
STATE_CLASSES = {"mine", "theirs", "pending"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Element] = []

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()


class Tree(HTMLParser):
    """The page's elements as a tree (text dropped)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return


def walk(element: Element) -> list[Element]:
    out = [element]
    for child in element.children:
        out += walk(child)
    return out


def by_id(tree: Tree, element_id: str) -> Element:
    found = [e for e in walk(tree.root) if e.attrs.get("id") == element_id]
    assert len(found) == 1, element_id
    return found[0]


def skeleton(li: Element) -> list[tuple[int, str, str, str]]:
    """(depth, tag, class, dir) of the message's elements in order. Not what the sender wrote
    (the children of .body: links, line breaks) and not the state render.js sets: the <li>'s
    mine/theirs, the ticks (render.js puts its own element in their place: ticks.js's rule)."""
    out: list[tuple[int, str, str, str]] = []

    def visit(e: Element, depth: int) -> None:
        classes = e.classes
        if "ticks" in classes:
            out.append((depth, "ticks", "ticks", ""))
            return
        if depth == 0:
            classes = [c for c in classes if c not in STATE_CLASSES]
        out.append((depth, e.tag, " ".join(classes), e.attrs.get("dir", "")))
        if "body" not in classes:
            for child in e.children:
                visit(child, depth + 1)

    visit(li, 0)
    return out


def template_message(tree: Tree, template_id: str) -> Element:
    template = by_id(tree, template_id)
    assert template.tag == "template"
    assert len(template.children) == 1, "a <template> holds one <li>"
    return template.children[0]


def drawn(tree: Tree) -> list[Element]:
    """The page's messages (day separators and the divider left out)."""
    return [li for li in by_id(tree, "messages").children if "msg" in li.classes]


def without(shape: list[tuple[int, str, str, str]], depth: int, cls: str) -> list[tuple[int, str, str, str]]:
    """``shape`` less the element of class ``cls`` at ``depth`` and what it holds: what
    render.js removes from a clone when the message has no such part."""
    at = next(i for i, (d, _, c, _dir) in enumerate(shape) if d == depth and c == cls)
    end = at + 1
    while end < len(shape) and shape[end][0] > depth:
        end += 1
    return shape[:at] + shape[end:]


def with_ticks(shape: list[tuple[int, str, str, str]]) -> list[tuple[int, str, str, str]]:
    """``shape`` with ticks after the time, where render.js's setTicks puts them."""
    at = next(i for i, (d, tag, _c, _dir) in enumerate(shape) if d == 2 and tag == "time")
    return [*shape[: at + 1], (2, "ticks", "ticks", ""), *shape[at + 1 :]]


async def reply(client: Client, conv: int, to: int, body: str) -> None:
    html = await page_html(client, f"/chats/{conv}?reply_to={to}")
    form = {"body": body, "client_msg_id": hidden(html, "client_msg_id"), "csrf_token": hidden(html, "csrf_token"), "reply_to": str(to)}
    assert (await client.post(f"/chats/{conv}/messages", form=form)).status_code == 303


async def test_the_message_template_is_the_drawn_message(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice", display_name="Alice Ames")
    bob = await login_as("bob", display_name="Bob Brown")
    conv = await create_group(alice, "Ward 7", ["bob"])
    await send(alice, conv, "is bed 4 free?")
    first = (await all_messages(svc, conv))[-1].id
    await reply(bob, conv, first, "yes, see https://example.org/beds\nand bed 5")
    second = (await all_messages(svc, conv))[-1].id
    await reply(alice, conv, second, "thanks")
    await send(bob, conv, "no reply here")

    tree = Tree(await page_html(alice, f"/chats/{conv}"))
    blank = template_message(tree, "message-template")
    shape = skeleton(blank)
    # The template is blank: nothing of any message in it, every slot render.js fills there.
    assert not {"id", "data-id", "data-sender", "href", "datetime"} & {k for e in walk(blank) for k in e.attrs}
    assert blank.classes == ["msg"]
    # render.js's slots: :scope > .sender, .quote with its .sender and .quote-text, .body,
    # .meta time, .reply-link.
    slots = {(1, "span", "sender"), (1, "a", "quote"), (2, "span", "sender"), (2, "span", "quote-text"), (1, "div", "body"), (2, "time", ""), (2, "a", "reply-link")}
    assert slots <= {(d, tag, c) for d, tag, c, _dir in shape}
    assert not any(tag == "ticks" for _, tag, _c, _dir in shape)  # render.js adds them (setTicks)

    system, mine_plain, theirs_reply, mine_reply, theirs_plain = drawn(tree)
    assert "system" in system.classes
    # Another's message in a group, replying: every part the template has, in its order.
    assert theirs_reply.classes == ["msg", "theirs"]
    assert skeleton(theirs_reply) == shape
    # Not replying: no quote (render.js's fillQuote removes it).
    assert skeleton(theirs_plain) == without(shape, 1, "quote")
    # Mine: no sender line (removed), ticks after the time (setTicks).
    assert mine_reply.classes == ["msg", "mine"]
    assert skeleton(mine_reply) == with_ticks(without(shape, 1, "sender"))
    assert skeleton(mine_plain) == with_ticks(without(without(shape, 1, "sender"), 1, "quote"))

    # A direct chat: no sender line for anyone, ticks as spans; the same template.
    with_bob = await open_direct(alice, "bob")
    await send(bob, with_bob, "hello")
    await send(alice, with_bob, "hi")
    tree = Tree(await page_html(alice, f"/chats/{with_bob}"))
    assert skeleton(template_message(tree, "message-template")) == shape
    theirs, mine = drawn(tree)
    assert skeleton(theirs) == without(without(shape, 1, "sender"), 1, "quote")
    assert skeleton(mine) == with_ticks(without(without(shape, 1, "sender"), 1, "quote"))


async def test_the_system_message_template_is_the_drawn_system_line(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice", display_name="Alice Ames")
    await login_as("bob", display_name="Bob Brown")
    conv = await create_group(alice, "Ward 7", ["bob"])
    tree = Tree(await page_html(alice, f"/chats/{conv}"))
    blank = template_message(tree, "system-message-template")
    assert not {"id", "datetime"} & {k for e in walk(blank) for k in e.attrs}
    [line] = drawn(tree)
    assert line.classes == blank.classes == ["msg", "system"]
    assert skeleton(line) == skeleton(blank)
    assert {(1, "span", "", "auto"), (1, "time", "", "")} <= set(skeleton(blank))  # render.js's slots
