"""Commands: ``quart --app app init-db | prepare-instance | setup-link | create-user``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from quart import Quart

from app.services import Services
from app.settings import Settings
from app.vocab import StaffRole

T = TypeVar("T")


def _run(app: Quart, work: Callable[[Services], Awaitable[T]]) -> T:
    services = cast(Services, app.extensions["medchat"])

    async def main() -> T:
        try:
            return await work(services)
        finally:
            await services.db.dispose()

    return asyncio.run(main())


def _settings(app: Quart) -> Settings:
    return cast(Services, app.extensions["medchat"]).settings


def register_cli(app: Quart) -> None:
    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database schema (Alembic, to head)."""
        _run(app, lambda svc: svc.db.upgrade_to_head())
        click.echo("database at head")

    @app.cli.command("prepare-instance")
    def prepare_instance() -> None:
        """Make the instance folder ready: secret key (done on load), TLS certificate, schema.

        The folder ends up 0700 and every file in it 0600, an older folder included.
        """
        from urllib.parse import urlsplit

        from app.lib.devcert import ensure_dev_certificate
        from app.lib.private_files import repair_folder

        folder = Path(app.instance_path)
        repair_folder(folder)  # first: SQLite gives -wal/-shm the mode the database has now
        host = urlsplit(_settings(app).public_url).hostname or ""
        made = ensure_dev_certificate(folder, extra_names=(host,))
        _run(app, lambda svc: svc.db.upgrade_to_head())
        repair_folder(folder)
        click.echo(f"instance ready: {app.instance_path} (certificate {made.cert.name}, key {made.key.name})")
        if made.ca is not None:
            click.echo(
                "development certificate from the local authority in "
                f"{made.ca}; to make Chromium and this machine trust it (once per machine):\n"
                f"    scripts/trust-dev-ca.sh {made.ca}"
            )

    @app.cli.command("setup-link")
    def setup_link() -> None:
        """Print a one-time link that creates the first administrator, while no account exists."""
        from app.actions.accounts import do_issue_setup_link

        token = _run(app, do_issue_setup_link)
        if token is None:
            click.echo("accounts exist: no setup link needed")
            return
        base = _settings(app).public_url
        hours = _settings(app).setup_link_hours
        click.echo("")
        click.echo("  No account exists yet. Open this one-time link to create the first administrator")
        click.echo(f"  (valid {hours} h, dies when used):")
        click.echo(f"    {base}/setup/{token}")
        click.echo("")

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--display-name", required=True)
    @click.option("--department", default="")
    @click.option("--job-title", default="")
    @click.option("--admin", is_flag=True, help="Make the account an administrator.")
    @click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
    def create_user(username: str, display_name: str, department: str, job_title: str, admin: bool, password_stdin: bool) -> None:
        """Create an account with a password (for scripts)."""
        from app.actions.accounts import StaffFields, create_user_with_password
        from app.actions.errors import ActionError

        password = sys.stdin.readline().rstrip("\n")
        fields = StaffFields(username, display_name, department, job_title, StaffRole.ADMIN if admin else StaffRole.MEMBER)

        async def work(svc: Services) -> Any:
            await svc.db.upgrade_to_head()
            return await create_user_with_password(svc, fields, password)

        try:
            user = _run(app, work)
        except ActionError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"created {user.username} ({user.role})")
