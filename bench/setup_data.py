"""Fill a benchmark instance: N users, direct chats, groups, and one login cookie per user.

    MEDCHAT_INSTANCE_PATH=bench/results/instance-sqlite .venv/bin/python bench/setup_data.py --users 1000

Bench-only shortcuts (never do this outside a benchmark), both documented in docs/performance.md:

- Users: ``create_user_with_password`` hashes every password with argon2id (~50 ms each, so
  ~1 min for 1000). Here ONE argon2id hash of one password is computed with the app's own
  ``PasswordHashing`` and written for every user, through the store's tables in a single
  transaction. A real login (``do_login``) of one user is then checked in-process, so the
  hash is known to work.
- Sessions: logging in over HTTP is possible but POST /login is rate limited per address
  (app/web/auth.py: 10, later 30 a minute), i.e. 33-100 minutes for 1000 users from one address. Instead
  sessions are minted the way ``app.actions.auth.do_login`` opens them after the password
  check: a random token (``new_token``), its SHA-256 (``token_hash``) stored through
  ``app.store.sessions.add_session``, and the cookie value signed with quart-auth's own
  serializer and the instance's secret key (``QuartAuth.dump_token``). The server accepts
  them exactly like cookies from a browser login.

Conversations (deterministic with --seed):

- every user is in exactly one group of 10-50 members (a random partition), "bench-g<k>";
- one group of 100 ("bench-100": users 1-100) and one of 1000 ("bench-1000": users 1-1000);
- direct chats: user i with user i+1 (a ring), so each user has two.

Output: bench/results/data-<name>.json with the cookie name, users [{id, username, cookie}],
groups, direct chats and the two big groups. The cookies are secrets of this throw-away
instance only; bench/results/ is git-ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_PASSWORD = "bench horse battery staple correct"  # noqa: S105 - throw-away bench accounts


def _partition(ids: list[int], rng: random.Random, low: int, high: int) -> list[list[int]]:
    shuffled = ids[:]
    rng.shuffle(shuffled)
    groups: list[list[int]] = []
    i = 0
    while i < len(shuffled):
        size = rng.randint(low, high)
        rest = len(shuffled) - i - size
        if 0 < rest < low:
            size += rest  # never leave a group smaller than ``low``
        groups.append(shuffled[i:i + size])
        i += size
    return groups


async def build(args: argparse.Namespace) -> dict[str, Any]:
    from quart_auth.globals import _find_extension

    from app import create_app
    from app.actions.auth import do_login
    from app.lib.tokens import new_token, token_hash
    from app.services import Services
    from app.store.models import AuditEntry, AuthSession, Conversation, Invite, Membership, Message, User

    app = create_app()
    svc: Services = app.extensions["medchat"]
    auth_ext = _find_extension(app)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    await svc.db.upgrade_to_head()
    now = svc.clock.now()
    try:
        async with svc.db.transaction() as s:
            existing = await s.scalar(select(User.id).limit(1))
            if existing is not None:
                if not args.reset:
                    raise SystemExit("the instance already has users: use a fresh instance or --reset")
                for model in (Message, Membership, Conversation, AuthSession, Invite, AuditEntry, User):
                    await s.execute(delete(model))

        shared_hash = svc.passwords.hash(BENCH_PASSWORD)  # one argon2id hash for everybody
        n = args.users
        width = len(str(n))
        async with svc.db.transaction() as s:
            await s.execute(insert(User), [
                {
                    "username": f"bench{i:0{width}d}", "display_name": f"Bench User {i}",
                    "department": f"Ward {i % 20}", "job_title": "Nurse" if i % 3 else "Doctor",
                    "role": "admin" if i == 1 else "member", "password_hash": shared_hash, "active": True,
                    "failed_logins": 0, "created_at": now,
                }
                for i in range(1, n + 1)
            ])
            rows = (await s.execute(select(User.id, User.username).order_by(User.id))).all()
            ids = [r[0] for r in rows]
            names = {r[0]: r[1] for r in rows}

            conversations: list[tuple[str, str, str | None, list[int]]] = []  # kind, title, key, members
            for k, members in enumerate(_partition(ids, rng, args.group_min, args.group_max), 1):
                conversations.append(("group", f"bench-g{k}", None, members))
            conversations.append(("group", "bench-100", None, ids[:100]))
            if not args.no_big_group:
                conversations.append(("group", "bench-1000", None, ids[:1000]))
            if n > 2:
                for i, a in enumerate(ids):
                    b = ids[(i + 1) % n]
                    low, high = sorted((a, b))
                    conversations.append(("direct", "", f"{low}:{high}", [a, b]))

            conv_rows = (await s.execute(
                insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True),
                [{"kind": kind, "title": title, "direct_key": key, "created_by": members[0], "created_at": now,
                  "last_message_id": 0} for kind, title, key, members in conversations],
            )).all()
            conv_ids = [r[0] for r in conv_rows]
            await s.execute(insert(Membership), [
                {"conversation_id": cid, "user_id": uid, "role": ("owner" if j == 0 and kind == "group" else "member"),
                 "last_read_id": 0, "last_delivered_id": 0, "joined_at": now}
                for cid, (kind, _t, _k, members) in zip(conv_ids, conversations, strict=True)
                for j, uid in enumerate(members)
            ])

            tokens = {uid: new_token() for uid in ids}
            await s.execute(insert(AuthSession), [
                {"id": token_hash(tok), "user_id": uid, "created_at": now, "last_seen_at": now,
                 "user_agent": "medchat-bench", "ip": "127.0.0.1"}
                for uid, tok in tokens.items()
            ])
        # The shared hash really logs in (one real do_login; its session is not used).
        await do_login(svc, names[ids[0]], BENCH_PASSWORD, "127.0.0.1", "medchat-bench check")
    finally:
        await svc.db.dispose()

    groups, directs = [], []
    big100 = big1000 = None
    for cid, (kind, title, _key, members) in zip(conv_ids, conversations, strict=True):
        entry = {"id": cid, "title": title, "members": members}
        if kind == "direct":
            directs.append(entry)
        elif title == "bench-100":
            big100 = entry
        elif title == "bench-1000":
            big1000 = entry
        else:
            groups.append(entry)
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "instance": app.instance_path,
        "database": "sqlite" if svc.db.is_sqlite else "postgresql",
        "cookie_name": app.config["QUART_AUTH_COOKIE_NAME"],
        "password": BENCH_PASSWORD,
        "users": [{"id": uid, "username": names[uid], "cookie": auth_ext.dump_token(tokens[uid], app=app)} for uid in ids],
        "groups": groups,
        "group100": big100,
        "group1000": big1000,
        "directs": directs,
        "seconds": round(time.monotonic() - t0, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--group-min", type=int, default=10)
    parser.add_argument("--group-max", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reset", action="store_true", help="delete every row of the instance first")
    parser.add_argument("--no-big-group", action="store_true",
                        help="no 1000-member group: then not everybody shares a conversation with everybody, "
                             "so connecting N users is not an N*N presence storm (idle-memory comparison)")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/data-<instance name>.json")
    args = parser.parse_args()
    if not os.environ.get("MEDCHAT_INSTANCE_PATH"):
        raise SystemExit("set MEDCHAT_INSTANCE_PATH to the benchmark instance folder")
    data = asyncio.run(build(args))
    out = args.out or ROOT / "bench" / "results" / f"data-{Path(data['instance']).name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data))
    sizes = sorted(len(g["members"]) for g in data["groups"])
    print(
        f"{len(data['users'])} users, {len(data['groups'])} groups of {sizes[0]}-{sizes[-1]}, "
        f"group of {len(data['group100']['members'])}, "
        f"group of {len(data['group1000']['members']) if data['group1000'] else 0}, "
        f"{len(data['directs'])} direct chats; {data['seconds']} s -> {out}"
    )
    print(f"cookie {data['cookie_name']} for {data['users'][0]['username']}: {data['users'][0]['cookie']}")


if __name__ == "__main__":
    main()
