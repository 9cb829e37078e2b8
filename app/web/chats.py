"""The chat list, the directory, conversations and their forms (no JavaScript needed)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from app.actions import accounts, conversations, messages, receipts
from app.actions.access import access_conversation
from app.actions.conversations import GROUP_ADMIN_ROLES
from app.actions.errors import ActionError, NotFound
from app.actions.frames import message_dict
from app.actions.stream import current_position
from app.lib.tokens import new_client_msg_id
from app.lib.usernames import is_username, normal_username
from app.records import Staff
from app.vocab import ConversationKind
from app.web import confirmations
from app.web.context import actor, current_actor, id_arg, login_required, svc
from app.web.security import IDLE_LOCK_MARGIN_SECONDS

bp = Blueprint("chats", __name__)



def _int_arg(name: str, *, minimum: int = 1) -> int | None:
    return id_arg(name, request.args.get(name), minimum=minimum)


@bp.get("/chats")
@login_required
async def chat_list() -> str:
    # The stream position the page's script resumes /ws from is read first: nothing the
    # page shows is older than it, so nothing after it can be missing from the page.
    position = await current_position(svc())
    convs = await conversations.list_conversations(svc(), actor().user)
    unread_total = sum(c.unread for c in convs)
    return await render_template("chats/list.html", conversations=convs, unread_total=unread_total, position=position, current_id=None)


def _search_args(source: MultiDict[str, str]) -> tuple[str, str, int]:
    """The search words, department and page number of a staff list, from a query string
    or a form (the page goes through the one id parser: anything odd is a 400)."""
    page = id_arg("page", source.get("page")) or 1
    if page > accounts.DIRECTORY_MAX_PAGE:
        raise BadRequest(f"page must be at most {accounts.DIRECTORY_MAX_PAGE}.")
    return source.get("q", "")[:100], source.get("department", "")[:100], page


def _search_params(query: str, department: str, page: int) -> dict[str, Any]:
    """The query string of a directory link: only what is set, so links stay short."""
    params: dict[str, Any] = {}
    if query:
        params["q"] = query
    if department:
        params["department"] = department
    if page > 1:
        params["page"] = page
    return params


@bp.get("/directory")
@login_required
async def directory() -> str:
    """The staff directory: search, a department filter, pages of DIRECTORY_PAGE_SIZE, and
    presence where it is shared with me. Plain GET form and links, no script needed."""
    query, department, page = _search_args(request.args)
    found = await accounts.directory(svc(), actor().user, query, department=department, page=page)
    here = found.found
    return await render_template(
        "chats/directory.html", found=found, q=query, department=department,
        previous_url=url_for("chats.directory", **_search_params(query, department, page - 1)) if here.has_previous else None,
        next_url=url_for("chats.directory", **_search_params(query, department, page + 1)) if here.has_next else None,
    )


@bp.post("/chats/direct")
@login_required
async def open_direct() -> ResponseReturnValue:
    form = await request.form
    conv_id = await conversations.do_open_direct(svc(), actor(), form.get("username", "")[:64])
    return redirect(url_for("chats.conversation", conversation_id=conv_id, _anchor="bottom"), 303)


@bp.get("/chats/new-group")
@login_required
async def new_group() -> str:
    query, department, page = _search_args(request.args)
    return await _new_group_page(query, department, page, "", [], None)


@bp.post("/chats/new-group")
@login_required
async def new_group_filter() -> str:
    """The Filter, Previous and Next buttons of the New-group form: the same form again,
    typed title and ticked members kept (the buttons post the whole form here with
    ``formaction``; Previous and Next add their ``page``)."""
    form = await request.form
    query, department, page = _search_args(form)
    return await _new_group_page(query, department, page, form.get("title", "")[:500], _chosen(form.getlist("members")), None)


def _picked(raw: list[str]) -> list[str]:
    """The member names a form posted, as many as a group may hold and one more (so the
    action can say "too many"), each cut to a username's length."""
    return [m[:64] for m in raw][: svc().settings.group_max_members + 1]


def _chosen(raw: list[str]) -> list[str]:
    """The posted names that can be usernames, to show ticked again (junk names nobody)."""
    return [m for m in _picked(raw) if is_username(normal_username(m))]


async def _ticked(chosen: list[str], left_out: set[int]) -> list[Staff]:
    """The active colleagues named in ``chosen`` (by name), but those in ``left_out``."""
    ticked = [p for p in await accounts.active_staff_named(svc(), chosen) if p.id not in left_out]
    ticked.sort(key=lambda p: (p.display_name, p.id))
    return ticked


async def _new_group_page(query: str, department: str, page: int, title: str, chosen: list[str], error: str | None) -> str:
    """The form: the colleagues already ticked (whether they match or not, so filtering
    never drops a choice), then a page of those matching the search."""
    me = actor().user
    ticked = await _ticked(chosen, {me.id})
    found = await accounts.directory(svc(), me, query, department=department, page=page, pinned=ticked, exclude_ids={me.id})
    return await render_template(
        "chats/new_group.html", found=found, q=query, department=department, error=error, title=title,
        chosen={p.username for p in ticked},
    )


@bp.post("/chats/group")
@login_required
async def create_group() -> ResponseReturnValue:
    form = await request.form
    title = form.get("title", "")[:500]
    members = _picked(form.getlist("members"))
    try:
        conv_id = await conversations.do_create_group(svc(), actor(), title, members)
    except ActionError as exc:
        if exc.status != 400:
            raise
        query, department, page = _search_args(form)
        return await _new_group_page(query, department, page, title, _chosen(members), exc.message), 400
    return redirect(url_for("chats.conversation", conversation_id=conv_id, _anchor="bottom"), 303)


async def _conversation_page(conversation_id: int, *, body: str = "", client_msg_id: str | None = None, error: str | None = None, reply_to: int | None = None) -> str:
    """The conversation: the chat list beside it, the messages, the compose form.

    Without JavaScript the newest messages show in a frame (``message_pane``) that reloads
    itself while this page, and the draft in its compose form, stay put. This page reloads
    only once the session's idle timeout has passed (nothing here counts as activity after
    this GET), so that reload finds the session ended and ends at the login page.
    """
    before = _int_arg("before")
    auto = request.args.get("auto") == "1"
    count = _int_arg("n", minimum=0) or 0
    # The stream position the script resumes from is read before anything the page shows.
    position = await current_position(svc())
    convs = await conversations.list_conversations(svc(), actor().user)
    view = await messages.view_conversation(svc(), actor(), conversation_id, before_id=before, mark_read=not auto and error is None)
    reply = None
    if reply_to is None:
        reply_to = _int_arg("reply_to")
    if reply_to is not None:
        try:
            reply = await messages.message_for(svc(), actor().user, conversation_id, reply_to)
        except NotFound:
            reply = None
    return await render_template(
        "chats/conversation.html", view=view, body=body, error=error, reply=reply,
        client_msg_id=client_msg_id or new_client_msg_id(), before=before,
        read_mark=view.my_last_read_id, framed=False,
        pane_url=url_for("chats.message_pane", conversation_id=conversation_id, auto=1, since=view.my_last_read_id, _anchor="bottom"),
        lock_after=svc().settings.session_idle_seconds + IDLE_LOCK_MARGIN_SECONDS,
        lock_url=url_for("chats.conversation", conversation_id=conversation_id, before=before, auto=1, n=count + 1),
        conversations=convs, current_id=conversation_id, position=position,
        unread_total=sum(c.unread for c in convs if c.id != conversation_id),
        members=[
            {"id": m.user_id, "name": m.display_name, "read": m.last_read_id, "delivered": m.last_delivered_id, "from": m.history_from_id}
            for m in view.detail.members
        ],
    )


@bp.get("/chats/<int:conversation_id>/pane")
async def message_pane(conversation_id: int) -> ResponseReturnValue:
    """The newest messages alone, for the frame of the no-JS conversation page.

    It reloads itself every NOSCRIPT_REFRESH_SECONDS to a URL that differs each time (``n``
    counts up): a refresh to the current URL plus a fragment is only an in-page jump in
    Chromium and never fires again. Loaded with ``auto=1`` it is never activity, and it moves
    only my "delivered" watermark. ``since`` is where the page around it found my read
    watermark, so "New messages" stays where it was. The only page shown in a frame
    (app/web/security.py FRAMEABLE_ENDPOINTS). Signed out, it says so with a link out of
    the frame instead of a login page the frame would refuse to show.
    """
    if current_actor() is None:
        return await render_template("chats/pane_signed_out.html", conversation_id=conversation_id)
    since = _int_arg("since", minimum=0)
    count = _int_arg("n", minimum=0) or 0
    view = await messages.view_conversation(svc(), actor(), conversation_id, before_id=None, mark_read=False)
    convs = await conversations.list_conversations(svc(), actor().user)
    return await render_template(
        "chats/pane.html", view=view, before=None, framed=True,
        read_mark=view.my_last_read_id if since is None else since,
        refresh=svc().settings.noscript_refresh_seconds,
        next_url=url_for("chats.message_pane", conversation_id=conversation_id, auto=1, since=since, n=count + 1, _anchor="bottom"),
        updated=svc().clock.now(),
        unread_elsewhere=sum(c.unread for c in convs if c.id != conversation_id),
    )


@bp.get("/chats/<int:conversation_id>/messages.json")
@login_required
async def older_messages(conversation_id: int) -> ResponseReturnValue:
    """A page of history before ``before`` for the script (the no-JS page has ?before=).

    Reading history moves no watermark. Members only: anyone else gets the same 404 as for
    a conversation that does not exist.
    """
    before = _int_arg("before")
    if before is None:
        await access_conversation(svc(), actor().user, conversation_id)  # 404 first
        raise BadRequest("before is required.")
    view = await messages.view_conversation(svc(), actor(), conversation_id, before_id=before, mark_read=False)
    response = jsonify({"messages": [message_dict(m) for m in view.messages], "has_older": view.has_older})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/chats/<int:conversation_id>")
@login_required
async def conversation(conversation_id: int) -> str:
    return await _conversation_page(conversation_id)


@bp.post("/chats/<int:conversation_id>/messages")
@login_required
async def send_message(conversation_id: int) -> ResponseReturnValue:
    form = await request.form
    body = form.get("body", "")
    client_msg_id = form.get("client_msg_id", "")[:64]
    reply_to = id_arg("reply_to", form.get("reply_to"))
    try:
        await messages.do_send_message(svc(), actor(), conversation_id, body, client_msg_id, reply_to)
    except ActionError as exc:
        if exc.status != 400:
            raise
        # Show the form again with what was typed and the same client_msg_id.
        keep_id = client_msg_id if exc.code != "bad_client_msg_id" else None
        page = await _conversation_page(conversation_id, body=body[: svc().settings.message_max_chars * 2], client_msg_id=keep_id, error=exc.message, reply_to=reply_to)
        return page, 400
    return redirect(url_for("chats.conversation", conversation_id=conversation_id, _anchor="bottom"), 303)


@bp.get("/chats/<int:conversation_id>/messages/<int:message_id>/info")
@login_required
async def message_info(conversation_id: int, message_id: int) -> str:
    """Message info: who has read one of my messages and who it has only reached, with times."""
    info = await receipts.message_info(svc(), actor().user, conversation_id, message_id)
    return await render_template("chats/message_info.html", info=info, conversation_id=conversation_id)


# One rule for both methods, so a bad id is a 404 for both (two rules make it a 405).
@bp.route("/chats/<int:conversation_id>/info", methods=["GET", "POST"])
@login_required
async def info(conversation_id: int) -> str:
    """The conversation's details. POST is the Filter, Previous and Next buttons of the
    Add-colleagues form: the page again with the ticked colleagues kept (the buttons post
    the whole form here with ``formaction``); it changes nothing."""
    if request.method == "GET":
        query, department, page = _search_args(request.args)
        return await _info_page(conversation_id, None, query=query, department=department, page=page)
    form = await request.form
    query, department, page = _search_args(form)
    return await _info_page(conversation_id, None, query=query, department=department, page=page, chosen=_chosen(form.getlist("username")))


async def _info_page(conversation_id: int, error: str | None, *, query: str = "", department: str = "", page: int = 1, chosen: list[str] | None = None) -> str:
    """The conversation's details; for a group admin, the list to add colleagues from:
    those ticked first, then a page of the search, members shown as such and not tickable."""
    me = actor().user
    detail = await conversations.conversation_detail(svc(), me, conversation_id)
    mine = detail.member(me.id)
    found = None
    if detail.kind == ConversationKind.GROUP and mine is not None and mine.role in GROUP_ADMIN_ROLES:
        member_ids = {m.user_id for m in detail.members}
        ticked = await _ticked(chosen or [], member_ids)
        found = await accounts.directory(svc(), me, query, department=department, page=page, pinned=ticked)
    return await render_template(
        "chats/info.html", detail=detail, mine=mine, error=error, found=found, query=query, department=department,
        chosen={p.username for p in found.pinned} if found else set(), member_ids={m.user_id for m in detail.members},
    )


@bp.post("/chats/<int:conversation_id>/rename")
@login_required
async def rename(conversation_id: int) -> ResponseReturnValue:
    form = await request.form
    try:
        await conversations.do_rename_group(svc(), actor(), conversation_id, form.get("title", "")[:500])
    except ActionError as exc:
        if exc.status != 400:
            raise
        return await _info_page(conversation_id, exc.message), 400
    return redirect(url_for("chats.info", conversation_id=conversation_id), 303)


@bp.post("/chats/<int:conversation_id>/members")
@login_required
async def add_members(conversation_id: int) -> ResponseReturnValue:
    form = await request.form
    names = [n for raw in form.getlist("username") for n in raw.replace(",", " ").split()][:200]
    try:
        await conversations.do_add_members(svc(), actor(), conversation_id, names)
    except ActionError as exc:
        if exc.status != 400:
            raise
        query, department, page = _search_args(form)
        return await _info_page(conversation_id, exc.message, query=query, department=department, page=page, chosen=_chosen(names)), 400
    return redirect(url_for("chats.info", conversation_id=conversation_id), 303)


async def confirm_remove_member(conversation_id: int, user_id: int) -> str:
    """Ask once before removing a member (the page's script asks with a dialog instead)."""
    detail = await conversations.conversation_detail(svc(), actor().user, conversation_id)
    target = detail.member(user_id)
    if detail.kind != ConversationKind.GROUP or target is None:
        raise NotFound("That colleague is not in this group.")
    question, consequence = confirmations.remove_member(target.display_name, detail.title)
    return await render_template(
        "confirm.html", heading=question, consequence=consequence, button="Remove",
        action=url_for("chats.remove_member", conversation_id=conversation_id, user_id=user_id),
        cancel=url_for("chats.info", conversation_id=conversation_id),
    )


async def confirm_leave(conversation_id: int) -> str:
    detail = await conversations.conversation_detail(svc(), actor().user, conversation_id)
    if detail.kind != ConversationKind.GROUP:
        raise NotFound("You can only leave groups.")
    question, consequence = confirmations.leave_group(detail.title)
    return await render_template(
        "confirm.html", heading=question, consequence=consequence, button="Leave group",
        action=url_for("chats.leave", conversation_id=conversation_id), cancel=url_for("chats.info", conversation_id=conversation_id),
    )


# GET asks first (the confirmation page), POST does it: one rule, so a bad id is 404 for both.
@bp.route("/chats/<int:conversation_id>/members/<int:user_id>/remove", methods=["GET", "POST"])
@login_required
async def remove_member(conversation_id: int, user_id: int) -> ResponseReturnValue:
    if request.method == "GET":
        return await confirm_remove_member(conversation_id, user_id)
    await conversations.do_remove_member(svc(), actor(), conversation_id, user_id)
    if user_id == actor().user.id:
        return redirect(url_for("chats.chat_list"), 303)
    return redirect(url_for("chats.info", conversation_id=conversation_id), 303)


@bp.route("/chats/<int:conversation_id>/leave", methods=["GET", "POST"])
@login_required
async def leave(conversation_id: int) -> ResponseReturnValue:
    if request.method == "GET":
        return await confirm_leave(conversation_id)
    await conversations.do_leave_group(svc(), actor(), conversation_id)
    return redirect(url_for("chats.chat_list"), 303)
