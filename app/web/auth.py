"""Login, logout, the first-administrator setup link, invite links, my sessions."""

from __future__ import annotations

from quart import Blueprint, current_app, g, has_request_context, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue
from quart_auth import AuthUser, login_user, logout_user
from werkzeug.sansio.response import Response as BaseResponse

from app.actions import accounts, auth
from app.actions.accounts import StaffFields
from app.actions.errors import ActionError, LoginFailed
from app.records import Staff
from app.vocab import LinkPurpose
from app.web import confirmations
from app.web.context import actor, client_ip, current_actor, login_required, safe_next, svc
from app.web.security import cookie_name

bp = Blueprint("auth", __name__)


@bp.get("/")
async def index() -> ResponseReturnValue:
    return redirect(url_for("chats.chat_list") if current_actor() else url_for("auth.login_form"))


@bp.get("/login")
async def login_form() -> ResponseReturnValue:
    if current_actor():
        return redirect(safe_next(request.args.get("next")))
    return await render_template(
        "auth/login.html", next=safe_next(request.args.get("next")), error=None, username="",
        signed_out=signed_out_notice(request.args.get("why", "")),
    )


def _duration(seconds: int) -> str:
    """``1800`` -> "30 minutes", ``43200`` -> "12 hours", ``8`` -> "8 seconds"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def signed_out_notice(why: str) -> str | None:
    """What the login page says to someone whose session ended (``?why=``, the session
    row's end reason; an unknown value says nothing)."""
    settings = svc().settings
    notices = {
        "idle": f"Signed out after {_duration(int(settings.session_idle_seconds))} without activity. Log in again to go on.",
        "lifetime": f"Signed out after {_duration(int(settings.session_max_seconds))} (the longest a session lasts). Log in again to go on.",
        "deactivated": "Signed out: your account has been deactivated. Ask an administrator if this is a mistake.",
        "signed_out_elsewhere": "Signed out from another of your sessions (“Sign out all my other sessions”).",
        "revoked": "Signed out: this session was ended from another of your devices.",
        "password_reset": "Signed out: an administrator reset your password. Set a new one with the link they give you.",
        "logout": "This session was logged out.",
        "unknown": "Your session has ended. Log in again to go on.",
    }
    return notices.get(why)


@bp.post("/login")  # rate-limited per client address in app/web/__init__.py (LOGIN_RATE_*)
async def login_submit() -> ResponseReturnValue:
    form = await request.form
    username = form.get("username", "")[:64]
    target = safe_next(form.get("next"))
    try:
        done = await auth.do_login(svc(), username, form.get("password", "")[:1024], client_ip(), request.headers.get("User-Agent", ""))
    except LoginFailed as exc:
        return await render_template("auth/login.html", next=target, error=exc.message, username=username), 400
    # A new random session id at every login; the old cookie (if any) is simply replaced.
    login_user(AuthUser(done.token))
    response = redirect(target, 303)
    _remember_device_choice(response, form.get("personal_device") == "1")
    return response


def _remember_device_choice(response: BaseResponse, personal: bool) -> None:
    """Only on a personal device may the page's script keep unsent messages (IndexedDB) and
    settings; a shared terminal keeps nothing. Logout's Clear-Site-Data removes the flag."""
    name = cookie_name(current_app, "medchat_device")
    if personal:
        response.set_cookie(
            name, "personal", max_age=svc().settings.session_max_seconds, path="/",
            secure=svc().settings.cookie_secure, httponly=True, samesite="Lax",
        )
    else:
        response.delete_cookie(name, path="/", secure=svc().settings.cookie_secure, httponly=True, samesite="Lax")


@bp.app_context_processor
def _device_flag() -> dict[str, bool]:
    """``personal_device`` for the templates (a data attribute the script reads)."""
    if not has_request_context() or current_actor() is None:
        return {"personal_device": False}
    return {"personal_device": request.cookies.get(cookie_name(current_app, "medchat_device")) == "personal"}


@bp.post("/logout")
async def logout() -> ResponseReturnValue:
    who = current_actor()
    if who is not None:
        await auth.do_logout(svc(), who)
    logout_user()
    g.clear_site_data = True
    return redirect(url_for("auth.login_form", bye=1), 303)


@bp.route("/setup/<token>", methods=["GET", "POST"])
async def setup(token: str) -> ResponseReturnValue:
    if not await accounts.setup_link_valid(svc(), token):
        return await render_template("errors/error.html", status=404, title="Link not valid", message="This setup link has been used or has expired. Run ./start.sh again to print a new one while no account exists."), 404
    values = {"username": "", "display_name": "", "department": "", "job_title": ""}
    error = None
    if request.method == "POST":
        form = await request.form
        values = {k: form.get(k, "")[:200] for k in values}
        password = form.get("password", "")[:1024]
        if password != form.get("password2", "")[:1024]:
            error = "The two passwords differ."
        else:
            try:
                admin = await accounts.do_setup_admin(svc(), token, StaffFields(**values), password, client_ip())
            except ActionError as exc:
                if exc.status != 400:
                    raise  # the link died meanwhile: 404, not a form error
                error = exc.message
            else:
                # Signed in at once: the next step is inviting the staff.
                await _sign_in(admin, LinkPurpose.SETUP)
                return redirect(url_for("admin.staff_list", welcome=1), 303)
    return await render_template("auth/setup.html", token=token, values=values, error=error), (400 if error else 200)


@bp.route("/invite/<token>", methods=["GET", "POST"])
async def invite(token: str) -> ResponseReturnValue:
    user = await accounts.invite_for(svc(), token)
    if user is None:
        return await render_template("errors/error.html", status=404, title="Link not valid", message="This link has been used or has expired. Ask an administrator for a new one."), 404
    error = None
    if request.method == "POST":
        form = await request.form
        password = form.get("password", "")[:1024]
        if password != form.get("password2", "")[:1024]:
            error = "The two passwords differ."
        else:
            try:
                person = await accounts.do_accept_invite(svc(), token, password, client_ip())
            except ActionError as exc:
                if exc.status != 400:
                    raise  # the link died meanwhile: 404, not a form error
                error = exc.message
            else:
                await _sign_in(person, LinkPurpose.INVITE)
                return redirect(url_for("chats.chat_list", welcome=1), 303)
    return await render_template("auth/invite.html", token=token, user=user, error=error), (400 if error else 200)


async def _sign_in(user: Staff, link: str) -> None:
    """Open a session for someone who just set a password through a one-time link."""
    done = await auth.do_sign_in_after_link(svc(), user, client_ip(), request.headers.get("User-Agent", ""), link)
    login_user(AuthUser(done.token))


@bp.get("/account/sessions")
@login_required
async def sessions() -> str:
    mine = await auth.my_sessions(svc(), actor().user.id)
    return await render_template("auth/sessions.html", sessions=mine, current=actor().session_id, ended=request.args.get("ended"), others=len([x for x in mine if x.id != actor().session_id]))


async def confirm_end_other_sessions() -> str:
    """Ask once before signing out every other session (the script asks with a dialog)."""
    others = len([s for s in await auth.my_sessions(svc(), actor().user.id) if s.id != actor().session_id])
    question, consequence = confirmations.end_other_sessions(others)
    return await render_template(
        "confirm.html", heading=question, consequence=consequence, button="Sign out the others",
        action=url_for("auth.end_other_sessions"), cancel=url_for("auth.sessions"),
    )


# GET asks first (the confirmation page), POST does it.
@bp.route("/account/sessions/end-others", methods=["GET", "POST"])
@login_required
async def end_other_sessions() -> ResponseReturnValue:
    if request.method == "GET":
        return await confirm_end_other_sessions()
    count = await auth.do_end_other_sessions(svc(), actor())
    return redirect(url_for("auth.sessions", ended=count), 303)


@bp.post("/account/sessions/<session_id>/end")
@login_required
async def end_session(session_id: str) -> ResponseReturnValue:
    await auth.do_end_session(svc(), actor(), session_id[:64])
    if session_id == actor().session_id:
        logout_user()
        g.clear_site_data = True
        return redirect(url_for("auth.login_form", bye=1), 303)
    return redirect(url_for("auth.sessions", ended=1), 303)
