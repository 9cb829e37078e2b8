"""MedChat /ws load generator: asyncio + websockets, one socket per benchmark user.

Run by hand against a server started with bench/server.py and filled by bench/setup_data.py
(bench/run.sh does all of it). Pin it to the core the server does not use:

    taskset -c 1 .venv/bin/python bench/loadgen.py --instance bench/results/instance-sqlite capacity --rates 20,50,100

Every client offers permessage-deflate like a browser (``--no-compression`` to not offer it),
sends a browser-like Origin and the session cookie, answers the server's ``ping`` frames
with ``pong`` (protocol-level pings are answered by the websockets library), and keeps the
highest message id it has seen; after an unexpected close it reconnects with
``?after=<last id>`` like the real client, so messages it catches up through ``sync`` count
as delivered (late), not lost.

Latency is measured end to end on one clock (this process): the time just before the
``send`` frame is written to the socket, to the time the ``message`` frame carrying that
``client_msg_id`` is read by each recipient's socket. Every socket of every member counts as
a recipient, the sender's own socket included (the server sends it the message event as
well as the ack, for the person's other tabs). Loss = expected deliveries (members that
have a socket in this run) not received before the drain timeout; duplicates = a message
read twice by the same client. Server RSS is VmRSS of Hypercorn's worker process
(/proc/<pid>/status), CPU is its utime+stime over the wall time.

Scenarios (sub-commands): ward, capacity, mixed, fanout, idle, commits, storm, reconnect.

``ward`` is the shape of issue 10 section 3: every member of a group connected and sending
(Poisson arrivals at an aggregate rate, the sender picked at random), ``?batch=1`` and
``delivered``/``read`` receipts as the browser client sends them. Every open-loop run
(ward, capacity, mixed) also reports latency from each send's *scheduled* time and per
one-second window (``from_schedule``, ``worst_second``, ``per_second``). ``--receipts`` makes
the clients of any scenario send receipts.
Each writes one JSON file to bench/results/ (see --out) and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import ssl
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from server import RESULTS, BenchServer, cpu_seconds, rss_kib, sched_wait_seconds  # noqa: E402

perf = time.perf_counter
loads = json.loads
FILLER = "Patient in bed 12 asks for a review of the medication chart before the evening round."


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def summary(values: list[float]) -> dict[str, Any]:
    v = sorted(values)
    return {
        "n": len(v), "p50_ms": ms(pct(v, 50)), "p90_ms": ms(pct(v, 90)), "p99_ms": ms(pct(v, 99)),
        "p999_ms": ms(pct(v, 99.9)), "max_ms": ms(v[-1] if v else None),
        "mean_ms": ms(sum(v) / len(v) if v else None),
    }


@dataclass(slots=True)
class Sent:
    t: float  # perf_counter just before the frame was written
    conv: int
    sender: int  # client index
    expected: tuple[int, ...]  # client indexes of the members
    phase: str
    got: dict[int, float] = field(default_factory=dict)  # client index -> latency (s)
    via_sync: int = 0
    dup: int = 0
    ack: float | None = None
    msg_id: int | None = None
    error: str | None = None
    answered: asyncio.Event | None = None  # set on ack or error (closed-loop senders wait on it)
    # Open loop: how late the frame was written after its scheduled (Poisson) time. Latency
    # "from the schedule" = lag + latency from the write: a generator or socket that falls
    # behind shows up in the figures instead of silently thinning the load (coordinated
    # omission). 0 for closed-loop and single sends.
    lag: float = 0.0
    sched: float | None = None  # scheduled time (perf_counter), open loop only


class Client:
    """One browser tab: a socket of one user."""

    def __init__(self, gen: Generator, idx: int, user: dict[str, Any]) -> None:
        self.gen = gen
        self.idx = idx
        self.user_id: int = user["id"]
        self.cookie = f"{gen.data['cookie_name']}={user['cookie']}"
        self.ws: ClientConnection | None = None
        self.connected = False
        self.last_id = 0
        self.counts: Counter[str] = Counter()
        self.closes: list[int | None] = []
        self.synced = asyncio.Event()
        self.sync_done_at: float | None = None
        self.reader: asyncio.Task[None] | None = None
        self.reconnect = True
        self.extensions: str | None = None
        # Receipts as the PWA sends them (static/js/app.js, conversation.js), with --receipts:
        # a tab showing the conversation (on_screen, --readers) marks it read after every
        # message from someone else; any other tab (the chat list) collects the newest id per
        # conversation and sends `delivered` 1 s after the first one (--delivered-delay).
        self.on_screen = False
        self.conv_max: dict[int, int] = {}
        self.read_sent: dict[int, int] = {}
        self.delivered_sent: dict[int, int] = {}
        self.pending_delivered: dict[int, int] = {}
        self.delivered_timer: asyncio.TimerHandle | None = None

    async def connect(self, after: int | None = None, timeout: float = 30.0) -> float:
        """Open the socket (and start reading); return the handshake time."""
        query = [f"after={after}"] if after is not None else []
        if self.gen.batch:
            query.append("batch=1")
        url = self.gen.url + ("?" + "&".join(query) if query else "")
        self.synced.clear()
        self.sync_done_at = None
        started = perf()
        ws = await connect(
            url,
            ssl=self.gen.ssl_ctx,
            additional_headers={"Cookie": self.cookie, "Origin": self.gen.origin},
            user_agent_header="Mozilla/5.0 (medchat-bench)",
            compression="deflate" if self.gen.compression else None,
            proxy=None,
            open_timeout=timeout,
            ping_interval=None,  # browsers do not ping; the server does (and is answered)
            close_timeout=2,
            max_size=2**20,
            max_queue=1024,  # a slow generator must not look like a slow consumer too soon
        )
        took = perf() - started
        self.ws = ws
        self.extensions = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        self.connected = True
        self.reader = asyncio.create_task(self._read(ws))
        return took

    async def _frame(self, ws: ClientConnection, raw: str | dict[str, Any], t: float) -> None:
        """One server frame, as text (parsed only when needed) or already parsed."""
        gen = self.gen
        if isinstance(raw, dict):
            obj: dict[str, Any] | None = raw
            kind = str(raw.get("type"))
        elif raw.startswith('{"type":"'):
            obj, kind = None, raw[9:raw.index('"', 9)]
        else:
            obj = loads(raw)
            kind = str(obj.get("type"))

        def parsed() -> dict[str, Any]:
            return obj if obj is not None else loads(raw)  # type: ignore[arg-type]

        self.counts[kind] += 1
        if kind == "message":
            m = parsed()["message"]
            gen.on_message(self, m, t, False)
            if gen.receipts:
                await self._seen(ws, m)
        elif kind == "ack":
            frame = parsed()
            gen.on_ack(self, frame, t)
            if gen.receipts:
                await self._seen(ws, frame["message"])
        elif kind == "ping":
            await ws.send('{"type":"pong"}')
        elif kind == "sync":
            frame = parsed()
            for m in frame["messages"]:
                gen.on_message(self, m, t, True)
                if gen.receipts:
                    await self._seen(ws, m)
            if frame.get("last_id", 0) > self.last_id:
                self.last_id = frame["last_id"]
            if frame.get("done"):
                self.sync_done_at = t
                self.synced.set()
        elif kind == "error":
            gen.on_error(self, parsed())
        elif kind == "resync":
            self.synced.set()
        elif kind == "hello" and self.pending_delivered:
            await self._flush_delivered_now()  # app.js flushes its delivered batch on hello

    async def _seen(self, ws: ClientConnection, m: dict[str, Any]) -> None:
        """A message reached this tab: answer with the receipt the browser client would send.

        Mirrors static/js: ``Conversation.markSeen`` (the conversation is open: one frame per
        message from someone else, up to the newest id the tab has, own messages included;
        ``read`` when on screen, else ``delivered``) and ``noteDelivered``/``flushDelivered`` in
        app.js (any other page: the newest id per conversation, one ``delivered`` frame per
        conversation 250 ms after the first unsent one). Own messages never cause a receipt.
        """
        conv, mid = m["conversation_id"], m["id"]
        if mid > self.conv_max.get(conv, 0):
            self.conv_max[conv] = mid
        if m.get("sender_id") == self.user_id:
            return
        gen = self.gen
        up_to = self.conv_max[conv]
        if self.on_screen:
            if up_to > self.read_sent.get(conv, 0) and await self._send_receipt(ws, "read", conv, up_to):
                self.read_sent[conv] = up_to
                self.delivered_sent[conv] = max(self.delivered_sent.get(conv, 0), up_to)
        elif gen.delivered_delay <= 0:  # the conversation open in a hidden tab
            if up_to > self.delivered_sent.get(conv, 0) and await self._send_receipt(ws, "delivered", conv, up_to):
                self.delivered_sent[conv] = up_to
        else:
            self.pending_delivered[conv] = max(self.pending_delivered.get(conv, 0), mid)
            if self.delivered_timer is None:
                self.delivered_timer = asyncio.get_running_loop().call_later(gen.delivered_delay, self._flush_delivered)

    def _flush_delivered(self) -> None:
        self.delivered_timer = None
        asyncio.get_running_loop().create_task(self._flush_delivered_now())

    async def _flush_delivered_now(self) -> None:
        ws = self.ws
        for conv, up_to in list(self.pending_delivered.items()):
            # kept when the socket is down: the browser flushes again after the next hello
            if ws is not None and await self._send_receipt(ws, "delivered", conv, up_to):
                if self.pending_delivered.get(conv) == up_to:
                    del self.pending_delivered[conv]

    async def _send_receipt(self, ws: ClientConnection, kind: str, conv: int, up_to: int) -> bool:
        if not self.connected or self.gen.stopping:
            return False
        try:
            await ws.send(dumps({"type": kind, "conversation_id": conv, "up_to_id": up_to}))
        except ConnectionClosed:
            return False
        self.gen.receipts_sent[kind] += 1
        return True

    async def close(self) -> None:
        self.reconnect = False
        if self.delivered_timer is not None:
            self.delivered_timer.cancel()
            self.delivered_timer = None
        ws = self.ws
        if ws is not None:
            await ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        self.connected = False

    async def _read(self, ws: ClientConnection) -> None:
        gen = self.gen
        counts = self.counts
        try:
            async for raw in ws:
                t = perf()
                if not isinstance(raw, str):
                    counts["binary"] += 1
                    continue
                if raw.startswith("["):  # ?batch=1: several frames in one message
                    counts["batched_messages"] += 1
                    for item in loads(raw):
                        await self._frame(ws, item, t)
                else:
                    await self._frame(ws, raw, t)
        except ConnectionClosed:
            pass
        finally:
            self.connected = False
            code = ws.close_code
            self.closes.append(code)
            if self.reconnect and not gen.stopping:
                gen.closed_unexpectedly[code] += 1
                asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.2
        while self.reconnect and not self.gen.stopping:
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311
            try:
                await self.connect(after=self.last_id)
                self.gen.reconnects += 1
                return
            except Exception as exc:  # noqa: BLE001 - count and retry
                self.gen.reconnect_failures[type(exc).__name__] += 1
                delay = min(delay * 2, 5.0)


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.instance: Path = args.instance
        self.server_info = json.loads((self.instance / "server.json").read_text())
        data_file = args.data or RESULTS / f"data-{self.instance.name}.json"
        self.data: dict[str, Any] = json.loads(Path(data_file).read_text())
        self.tls = not args.plain
        self.url = self.server_info["wss_url"] if self.tls else self.server_info["ws_url"]
        self.origin = self.server_info["base_url"] if self.tls else f"http://127.0.0.1:{self.server_info['http_port']}"
        self.ssl_ctx: ssl.SSLContext | None = None
        if self.tls:
            self.ssl_ctx = ssl.create_default_context()
            self.ssl_ctx.check_hostname = False
            self.ssl_ctx.verify_mode = ssl.CERT_NONE
        self.compression = not args.no_compression
        ward = args.scenario == "ward"
        # The ward shape speaks like the PWA by default: ?batch=1 and receipts.
        self.batch = bool(ward if args.batch is None else args.batch)
        self.receipts = bool(ward if args.receipts is None else args.receipts)
        self.readers: float = args.readers
        self.delivered_delay: float = args.delivered_delay
        self.receipts_sent: Counter[str] = Counter()
        self.rng = random.Random(args.seed)  # noqa: S311
        # who looks at the chat: its own generator, so the send schedule stays the same
        self.reader_rng = random.Random(args.seed + 1)  # noqa: S311
        self.users = self.data["users"]
        self.user_index = {u["id"]: i for i, u in enumerate(self.users)}
        self.clients: dict[int, Client] = {}  # by user index
        self.sent: dict[str, Sent] = {}
        self.errors: Counter[str] = Counter()
        self.closed_unexpectedly: Counter[int | None] = Counter()
        self.reconnects = 0
        self.reconnect_failures: Counter[str] = Counter()
        self.stopping = False
        self.foreign = 0
        self.rss_samples: list[int] = []
        self._sampler: asyncio.Task[None] | None = None

    # -- server -------------------------------------------------------------------------
    def worker_pid(self) -> int | None:
        info = json.loads((self.instance / "server.json").read_text())
        pids = info.get("worker_pids") or []
        return pids[0] if pids else None

    def server_rss(self) -> int:
        pid = self.worker_pid()
        return rss_kib(pid) if pid else 0

    async def _sample(self) -> None:
        while True:
            self.rss_samples.append(self.server_rss())
            await asyncio.sleep(0.5)

    def start_sampling(self) -> None:
        self.rss_samples = []
        self._sampler = asyncio.get_running_loop().create_task(self._sample())

    async def stop_sampling(self) -> None:
        if self._sampler:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)

    # -- callbacks from clients ---------------------------------------------------------
    def on_message(self, client: Client, m: dict[str, Any], t: float, via_sync: bool) -> None:
        mid = m["id"]
        if mid > client.last_id:
            client.last_id = mid
        cmid = m.get("client_msg_id")
        rec = self.sent.get(cmid) if cmid else None
        if rec is None:
            self.foreign += 1
            return
        if client.idx in rec.got:
            rec.dup += 1
            return
        rec.got[client.idx] = t - rec.t
        if via_sync:
            rec.via_sync += 1

    def on_ack(self, client: Client, frame: dict[str, Any], t: float) -> None:
        rec = self.sent.get(frame["client_msg_id"])
        if rec is not None and rec.ack is None:
            rec.ack = t - rec.t
            rec.msg_id = frame["message"]["id"]
            if rec.answered is not None:
                rec.answered.set()
        if frame["message"]["id"] > client.last_id:
            client.last_id = frame["message"]["id"]

    def on_error(self, client: Client, frame: dict[str, Any]) -> None:
        self.errors[frame.get("code", "?")] += 1
        rec = self.sent.get(frame.get("ref") or "")
        if rec is not None:
            rec.error = frame.get("code")
            if rec.answered is not None:
                rec.answered.set()

    # -- helpers ------------------------------------------------------------------------
    def client_for(self, user_id: int) -> Client:
        idx = self.user_index[user_id]
        if idx not in self.clients:
            client = self.clients[idx] = Client(self, idx, self.users[idx])
            client.on_screen = self.receipts and self.reader_rng.random() < self.readers
        return self.clients[idx]

    async def connect_users(self, user_ids: list[int], batch: int = 50, settle: float = 2.0) -> dict[str, Any]:
        """Connect users in batches (not a storm), wait for presence traffic to settle."""
        times: list[float] = []
        failures: Counter[str] = Counter()
        clients = [self.client_for(u) for u in user_ids]
        for i in range(0, len(clients), batch):
            results = await asyncio.gather(*(c.connect() for c in clients[i:i + batch]), return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    failures[_describe(r)] += 1
                else:
                    times.append(r)
        connected_at = perf()
        await self.quiet(settle, limit=self.args.settle_limit)
        frames = Counter[str]()
        for c in clients:
            frames.update(c.counts)
        return {"connected": len(times), "failures": dict(failures), "handshake": summary(times),
                # presence traffic caused by the connects (everyone shares the 1000-member group)
                "seconds_until_quiet": round(perf() - connected_at, 2), "frames_while_connecting": dict(frames)}

    async def quiet(self, seconds: float, limit: float = 60.0) -> None:
        """Wait until no frame arrived for ``seconds`` (presence storms), at most ``limit``."""
        deadline = perf() + limit
        last = -1
        while perf() < deadline:
            # the server's heartbeat pings (1000 sockets: 50/s) are not traffic to wait for
            total = sum(sum(c.counts.values()) - c.counts["ping"] for c in self.clients.values())
            if total == last:
                return
            last = total
            await asyncio.sleep(seconds)

    def members(self, conv: dict[str, Any]) -> tuple[int, ...]:
        return tuple(self.user_index[u] for u in conv["members"] if self.user_index[u] in self.clients)

    async def send(self, client: Client, conv_id: int, expected: tuple[int, ...], phase: str, seq: int,
                   wait: bool = False) -> Sent | None:
        cmid = str(uuid.uuid4())
        frame = dumps({"type": "send", "client_msg_id": cmid, "conversation_id": conv_id, "body": f"#{seq} {FILLER}"})
        ws = client.ws
        if ws is None or not client.connected:
            return None
        rec = Sent(perf(), conv_id, client.idx, expected, phase)
        if wait:
            rec.answered = asyncio.Event()
        self.sent[cmid] = rec
        try:
            await ws.send(frame)
        except ConnectionClosed:
            rec.error = "closed"
            if rec.answered is not None:
                rec.answered.set()
        return rec

    async def send_at(self, client: Client, conv_id: int, expected: tuple[int, ...], phase: str, seq: int,
                      sched: float, give_up: float) -> Sent | None:
        """Send one scheduled arrival; in the ward shape a sender whose socket is down waits for
        its reconnect (the PWA's outbox does the same) instead of being skipped."""
        while not client.connected or client.ws is None:
            if self.stopping or perf() > give_up:
                return None
            await asyncio.sleep(0.02)
        rec = await self.send(client, conv_id, expected, phase, seq)
        if rec is not None:
            rec.sched = sched
            rec.lag = max(0.0, rec.t - sched)
        return rec

    async def open_loop(self, rate: float, duration: float, warmup: float, pick: Any, phase: str) -> dict[str, Any]:
        """Poisson arrivals at ``rate``/s for warmup+duration; only post-warmup sends are measured.

        The scheduler never waits for a socket: every arrival is written by its own task, so a
        socket with a full buffer delays its own message only, and a late write is not
        dropped or squeezed out but measured from its scheduled time (``from_schedule``).
        A sender found disconnected at its time is skipped and counted, except in the ward
        shape, where the send waits for the reconnect.
        """
        start = perf()
        measure_from = start + warmup
        end = measure_from + duration
        t_next = start
        skipped = 0
        seq = 0
        hold = self.args.scenario == "ward"
        cpu0, wall0 = time.process_time(), perf()
        pid = self.worker_pid()
        scpu0 = cpu_seconds(pid) if pid else 0.0
        swait0 = sched_wait_seconds(pid) if pid else 0.0
        gwait0 = sched_wait_seconds(os.getpid())
        receipts0 = Counter(self.receipts_sent)
        got0 = self.frames_received()
        tasks: list[asyncio.Task[Sent | None]] = []
        while True:
            t_next += self.rng.expovariate(rate)
            if t_next >= end:
                break
            delay = t_next - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            client, conv_id, expected = pick()
            seq += 1
            if not client.connected and not hold:
                skipped += 1
                continue
            tasks.append(asyncio.create_task(
                self.send_at(client, conv_id, expected, phase, seq, t_next, end + self.args.drain)))
        send_wall = perf() - wall0
        gen_cpu = (time.process_time() - cpu0) / send_wall
        server_cpu_s = cpu_seconds(pid) - scpu0 if pid else None
        server_cpu = server_cpu_s / send_wall if server_cpu_s is not None else None
        server_wait = (sched_wait_seconds(pid) - swait0) / send_wall if pid else None
        gen_wait = (sched_wait_seconds(os.getpid()) - gwait0) / send_wall
        receipts = {k: v - receipts0[k] for k, v in self.receipts_sent.items()}
        got = self.frames_received()
        receipt_frames_in = got["receipt"] - got0["receipt"]
        measured: list[Sent] = []
        for rec in await asyncio.gather(*tasks):
            if rec is None:
                skipped += 1
            elif rec.sched is not None and rec.sched >= measure_from:
                measured.append(rec)
        await self.drain(measured, self.args.drain)
        return self.stats(measured, duration, origin=measure_from, extra={
            "rate": rate, "sends_skipped_disconnected": skipped,
            # second 0 of per_second starts here (CLOCK_MONOTONIC, as bench/loopmon.py's "t")
            "origin_monotonic": round(measure_from, 4),
            "schedule_lag": summary([rec.lag for rec in measured]),
            "generator_cpu": round(gen_cpu, 3), "server_cpu": round(server_cpu, 3) if server_cpu is not None else None,
            # share of wall time the process was runnable but another process had its core
            "server_runqueue_wait": round(server_wait, 3) if server_wait is not None else None,
            "generator_runqueue_wait": round(gen_wait, 3),
            # load-independent cost: server CPU time per message sent (warm-up included)
            "server_cpu_ms_per_message": round(1000 * server_cpu_s / seq, 3) if server_cpu_s is not None and seq else None,
            # receipt frames the clients sent and the receipt events they got while sending
            "receipts_sent": receipts, "receipts_sent_per_s": round(sum(receipts.values()) / send_wall, 1),
            "receipt_events_received": receipt_frames_in,
        })

    def frames_received(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for c in self.clients.values():
            total.update(c.counts)
        return total

    async def drain(self, recs: list[Sent], timeout: float) -> float:
        started = perf()
        deadline = started + timeout
        while perf() < deadline:
            if all(rec.error or len(rec.got) >= len(rec.expected) for rec in recs) and all(
                rec.ack is not None or rec.error for rec in recs
            ):
                break
            await asyncio.sleep(0.05)
        return perf() - started

    def stats(self, recs: list[Sent], duration: float, extra: dict[str, Any] | None = None,
              origin: float | None = None) -> dict[str, Any]:
        lat: list[float] = []
        full: list[float] = []
        expected = got = dups = via_sync = acked = errors = lost = 0
        acks: list[float] = []
        err_codes: Counter[str] = Counter()
        for rec in recs:
            vals = list(rec.got.values())
            lat += vals
            expected += len(rec.expected)
            got += sum(1 for i in rec.got if i in rec.expected)
            dups += rec.dup
            via_sync += rec.via_sync
            if rec.ack is not None:
                acked += 1
                acks.append(rec.ack)
            if rec.error:
                errors += 1
                err_codes[rec.error] += 1
            else:
                lost += sum(1 for i in rec.expected if i not in rec.got)
            if vals and len(rec.got) >= len(rec.expected):
                full.append(max(vals))
        return {
            **(extra or {}),
            "messages": len(recs), "acked": acked, "acks_per_s": round(acked / duration, 1) if duration else None,
            "send_errors": dict(err_codes),
            "deliveries_expected": expected, "deliveries": got,
            "deliveries_per_s": round(got / duration, 1) if duration else None,
            "lost": lost,
            "duplicates": dups, "delivered_via_sync": via_sync,
            "latency": summary(lat), "full_delivery": summary(full), "ack_latency": summary(acks),
            **(per_second(recs, origin) if origin is not None else {}),
        }

    def env(self) -> dict[str, Any]:
        return {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "transport": "wss (TLS)" if self.tls else "ws (plain)", "compression_offered": self.compression, "batch": self.batch,
            "receipts": self.receipts, "readers": self.readers if self.receipts else None,
            "delivered_delay_s": self.delivered_delay if self.receipts else None,
            "database": self.data.get("database"), "server_core": self.server_info.get("core"),
            "generator_affinity": sorted(os.sched_getaffinity(0)),
            "git": _git(),
        }

    async def close_all(self) -> None:
        self.stopping = True
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)


SLOW_MS = 100.0  # the target: p99 <= 100 ms in every second of a run


def per_second(recs: list[Sent], origin: float) -> dict[str, Any]:
    """Open-loop figures measured from each send's scheduled time, over the run and per second.

    ack = scheduled time -> the sender's socket read the ack; delivery = scheduled time -> the
    last expected socket read the message (only messages every expected socket got; the others
    are counted as undelivered). Seconds are numbered by scheduled time from the end of the
    warm-up. A second holds only rate x 1 s messages, so its p99 is close to its maximum.
    """
    acks: list[float] = []
    full: list[float] = []
    each: list[float] = []
    undelivered = unacked = 0
    seconds: dict[int, list[Sent]] = {}
    for rec in recs:
        assert rec.sched is not None
        seconds.setdefault(int(rec.sched - origin), []).append(rec)
    windows: list[dict[str, Any]] = []
    for second in sorted(seconds):
        w_acks: list[float] = []
        w_full: list[float] = []
        w_undelivered = w_unacked = w_errors = 0
        for rec in seconds[second]:
            if rec.error:
                w_errors += 1
                continue
            if rec.ack is None:
                w_unacked += 1
            else:
                w_acks.append(rec.lag + rec.ack)
            each.extend(rec.lag + v for v in rec.got.values())
            if rec.got and len(rec.got) >= len(rec.expected):
                w_full.append(rec.lag + max(rec.got.values()))
            else:
                w_undelivered += 1
        acks += w_acks
        full += w_full
        undelivered += w_undelivered
        unacked += w_unacked
        w_acks.sort()
        w_full.sort()
        windows.append({
            "second": second, "sent": len(seconds[second]),
            "ack_p50_ms": ms(pct(w_acks, 50)), "ack_p99_ms": ms(pct(w_acks, 99)), "ack_max_ms": ms(w_acks[-1] if w_acks else None),
            "delivery_p50_ms": ms(pct(w_full, 50)), "delivery_p99_ms": ms(pct(w_full, 99)),
            "delivery_max_ms": ms(w_full[-1] if w_full else None),
            "undelivered": w_undelivered, "unacked": w_unacked, "errors": w_errors,
        })

    def worst(key: str) -> float | None:
        values = [w[key] for w in windows if w[key] is not None]
        return max(values) if values else None

    def over(key: str) -> int:
        return sum(1 for w in windows if w[key] is not None and w[key] > SLOW_MS)

    return {
        "from_schedule": {
            "ack": summary(acks), "delivery": summary(full), "delivery_each_recipient": summary(each),
            "undelivered_messages": undelivered, "unacked_messages": unacked,
        },
        "worst_second": {
            "ack_p99_ms": worst("ack_p99_ms"), "ack_max_ms": worst("ack_max_ms"),
            "delivery_p99_ms": worst("delivery_p99_ms"), "delivery_max_ms": worst("delivery_max_ms"),
            "seconds": len(windows),
            "seconds_ack_p99_over_100ms": over("ack_p99_ms"),
            "seconds_delivery_p99_over_100ms": over("delivery_p99_ms"),
            "seconds_with_undelivered": sum(1 for w in windows if w["undelivered"]),
        },
        "per_second": windows,
    }


def _git() -> dict[str, Any]:
    import subprocess

    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    return {"commit": run("rev-parse", "--short", "HEAD"), "app_changes": run("status", "--short", "--", "app").splitlines()}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"http {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


# ----------------------------------------------------------------------------- scenarios
async def _rate_runs(gen: Generator, args: argparse.Namespace, pick: Any, tag: str) -> list[dict[str, Any]]:
    """One open-loop run per rate of ``--rates``, sampling the server throughout."""
    runs = []
    gen.start_sampling()
    for rate in [float(r) for r in args.rates.split(",")]:
        load_before = os.getloadavg()[0]
        res = await gen.open_loop(rate, args.duration, args.warmup, pick, f"{tag}{rate}")
        res["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        res["server_rss_kib"] = gen.server_rss()
        runs.append(res)
        _print_rate(res)
        await gen.quiet(1.0, limit=15)
    await gen.stop_sampling()
    return runs


async def scenario_capacity(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    conv = gen.data["group100"]
    before = gen.env()
    conn = await gen.connect_users(conv["members"])
    expected = gen.members(conv)
    clients = [gen.clients[i] for i in expected]

    def pick() -> tuple[Client, int, tuple[int, ...]]:
        return gen.rng.choice(clients), conv["id"], expected

    runs = await _rate_runs(gen, args, pick, "rate")
    return {"scenario": "capacity", "group_size": len(conv["members"]), "env": before, "connect": conn,
            "runs": runs, "server_rss_max_kib": max(gen.rss_samples or [0]),
            "closed_unexpectedly": {str(k): v for k, v in gen.closed_unexpectedly.items()}, "reconnects": gen.reconnects}


async def scenario_ward(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    """A ward: every member of one group is connected and sends, open-loop Poisson at each rate.

    The group is the smallest one of the data with at least ``--members`` members (a group of
    10-50, the 100 or the 1000); if it is bigger, only its first ``--members`` connect (the
    others are offline members). Each arrival goes from a member picked at random; receipts
    and ?batch=1 as the browser client (on unless --no-receipts / --no-batch).
    """
    candidates = [*gen.data["groups"], gen.data["group100"], *([gen.data["group1000"]] if gen.data.get("group1000") else [])]
    fitting = [g for g in candidates if len(g["members"]) >= args.members]
    if not fitting:
        raise SystemExit(f"no group with {args.members} members in the data (largest: {max(len(g['members']) for g in candidates)})")
    conv = min(fitting, key=lambda g: len(g["members"]))
    users = conv["members"][: args.members]
    before = gen.env()
    conn = await gen.connect_users(users, settle=3.0)
    expected = gen.members(conv)
    clients = [gen.clients[i] for i in expected]
    readers = sum(1 for c in clients if c.on_screen)
    print(f"  ward: {len(clients)} of the group's {len(conv['members'])} members connected, all senders; "
          f"receipts {'on' if gen.receipts else 'off'} ({readers} looking at the chat), batch {gen.batch}", flush=True)

    def pick() -> tuple[Client, int, tuple[int, ...]]:
        return gen.rng.choice(clients), conv["id"], expected

    runs = await _rate_runs(gen, args, pick, "ward")
    return {"scenario": "ward", "group_size": len(conv["members"]), "members": len(clients), "readers": readers,
            "env": before, "connect": conn, "runs": runs, "server_rss_max_kib": max(gen.rss_samples or [0]),
            "closed_unexpectedly": {str(k): v for k, v in gen.closed_unexpectedly.items()}, "reconnects": gen.reconnects}


async def scenario_mixed(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    users = [u["id"] for u in gen.users[: args.users]]
    before = gen.env()
    conn = await gen.connect_users(users, settle=3.0)
    group_of: dict[int, dict[str, Any]] = {}
    for g in gen.data["groups"]:
        for u in g["members"]:
            group_of[u] = g
    directs_of: dict[int, list[dict[str, Any]]] = {}
    for d in gen.data["directs"]:
        for u in d["members"]:
            directs_of.setdefault(u, []).append(d)
    expected_cache: dict[int, tuple[int, ...]] = {}
    connected = [gen.clients[gen.user_index[u]] for u in users if gen.user_index[u] in gen.clients]

    def pick() -> tuple[Client, int, tuple[int, ...]]:
        client = gen.rng.choice(connected)
        if args.direct_fraction and gen.rng.random() < args.direct_fraction and directs_of.get(client.user_id):
            conv = gen.rng.choice(directs_of[client.user_id])
        else:
            conv = group_of[client.user_id]
        exp = expected_cache.get(conv["id"])
        if exp is None:
            exp = expected_cache[conv["id"]] = gen.members(conv)
        return client, conv["id"], exp

    gen.start_sampling()
    rss0 = gen.server_rss()
    res = await gen.open_loop(args.rate, args.duration, args.warmup, pick, "mixed")
    await gen.stop_sampling()
    res["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    _print_rate(res)
    return {"scenario": "mixed", "users": len(users), "direct_fraction": args.direct_fraction, "env": before,
            "connect": conn, "result": res, "server_rss_kib": [rss0, gen.server_rss()],
            "server_rss_max_kib": max(gen.rss_samples or [0]),
            "closed_unexpectedly": {str(k): v for k, v in gen.closed_unexpectedly.items()}}


async def scenario_fanout(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    conv = gen.data["group1000"]
    before = gen.env()
    conn = await gen.connect_users(conv["members"], settle=3.0)
    expected = gen.members(conv)
    recs: list[Sent] = []
    pid = gen.worker_pid()
    swait0 = sched_wait_seconds(pid) if pid else 0.0
    t_start = perf()
    for k in range(args.count):
        client = gen.clients[gen.rng.choice(expected)]
        rec = await gen.send(client, conv["id"], expected, "fanout", k)
        if rec is not None:
            await gen.drain([rec], args.drain)
            recs.append(rec)
            full = max(rec.got.values()) if rec.got else None
            first = min(rec.got.values()) if rec.got else None
            print(f"  fan-out {k + 1}: {len(rec.got)}/{len(expected)} in {ms(full)} ms (first {ms(first)} ms, "
                  f"ack {ms(rec.ack)} ms)", flush=True)
        await asyncio.sleep(args.gap)
    res = gen.stats(recs, 0)
    res["per_message_full_ms"] = [ms(max(r.got.values())) if r.got else None for r in recs]
    res["per_message_complete"] = [len(r.got) >= len(r.expected) for r in recs]
    # first delivery = store + publish path; spread = last - first = the fan-out itself
    res["per_message_first_ms"] = [ms(min(r.got.values())) if r.got else None for r in recs]
    res["per_message_spread_ms"] = [ms(max(r.got.values()) - min(r.got.values())) if r.got else None for r in recs]
    res["spread"] = summary([max(r.got.values()) - min(r.got.values()) for r in recs if r.got])
    swait = sched_wait_seconds(pid) if pid else None
    res["server_runqueue_wait_s_total"] = round(swait - swait0, 3) if swait is not None else None
    res["seconds"] = round(perf() - t_start, 2)
    return {"scenario": "fanout", "group_size": len(conv["members"]), "connected": len(expected), "env": before,
            "connect": conn, "result": res, "server_rss_kib": rss_kib(pid) if pid else None,
            "closed_unexpectedly": {str(k): v for k, v in gen.closed_unexpectedly.items()}}


async def scenario_idle(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    users = [u["id"] for u in gen.users[: args.users]]
    before = gen.env()
    # Warm the worker up (imports, first-use caches) with a few sockets, then measure.
    warm = await gen.connect_users(users[:10], settle=1.0)
    for c in list(gen.clients.values()):
        await c.close()
    gen.clients.clear()
    await asyncio.sleep(args.settle)
    rss0 = gen.server_rss()
    conn = await gen.connect_users(users, batch=args.batch, settle=2.0)
    pid = gen.worker_pid()
    cpu0, t0 = (cpu_seconds(pid) if pid else 0.0), perf()
    await asyncio.sleep(args.settle)
    idle_cpu = (cpu_seconds(pid) - cpu0) / (perf() - t0) if pid else None
    rss1 = gen.server_rss()
    n = conn["connected"]
    extensions = Counter(str(c.extensions) for c in gen.clients.values())
    await gen.close_all()
    await asyncio.sleep(args.settle)
    rss2 = gen.server_rss()
    per = (rss1 - rss0) / n if n else None
    print(f"  idle: {n} sockets, RSS {rss0} -> {rss1} KiB: {per and round(per, 1)} KiB per connection; after close {rss2} KiB; "
          f"server CPU while idle {idle_cpu and round(idle_cpu, 3)}")
    return {"scenario": "idle", "env": before, "warmup": warm, "connect": conn, "rss_before_kib": rss0,
            "rss_connected_kib": rss1, "rss_after_close_kib": rss2,
            "kib_per_connection": round(per, 1) if per is not None else None,
            # CPU share the server spends on N idle sockets (heartbeat pings + session re-checks)
            "server_cpu_idle": round(idle_cpu, 3) if idle_cpu is not None else None, "idle_cpu_window_s": args.settle,
            "negotiated_extensions": dict(extensions)}


async def scenario_commits(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    """Closed loop: each of S senders keeps W sends in flight into its direct chat."""
    users = [u["id"] for u in gen.users[: args.senders + 1]]
    before = gen.env()
    conn = await gen.connect_users(users, settle=2.0)
    senders = [gen.client_for(u) for u in users[: args.senders]]
    directs: dict[int, dict[str, Any]] = {}
    for d in gen.data["directs"]:
        a, b = d["members"]
        directs.setdefault(a, d)  # user i's chat with i+1 (the ring's first chat for a)
    stop_at = perf() + args.warmup + args.duration
    measure_from = perf() + args.warmup
    measured: list[Sent] = []
    dropped = Counter[str]()
    pid = gen.worker_pid()

    async def sender(client: Client) -> None:
        conv = directs[client.user_id]
        exp = gen.members(conv)
        seq = 0
        while perf() < stop_at:
            seq += 1
            rec = await gen.send(client, conv["id"], exp, "commits", seq, wait=True)
            if rec is None:
                dropped["disconnected"] += 1
                await asyncio.sleep(0.1)
                continue
            assert rec.answered is not None
            try:
                await asyncio.wait_for(rec.answered.wait(), timeout=max(0.1, stop_at + 30 - perf()))
            except TimeoutError:
                rec.error = "no_ack"
            if rec.t >= measure_from and perf() <= stop_at:
                measured.append(rec)

    tasks = [asyncio.create_task(sender(c)) for c in senders for _ in range(args.window)]
    await asyncio.sleep(max(0.0, measure_from - perf()))
    t1 = perf()
    scpu1 = cpu_seconds(pid) if pid else 0.0
    swait1 = sched_wait_seconds(pid) if pid else 0.0
    await asyncio.gather(*tasks)
    wall = perf() - t1
    res = gen.stats(measured, args.duration)
    res["server_cpu"] = round((cpu_seconds(pid) - scpu1) / wall, 3) if pid else None
    res["server_runqueue_wait"] = round((sched_wait_seconds(pid) - swait1) / wall, 3) if pid else None
    res["server_cpu_ms_per_ack"] = (
        round(1000 * (cpu_seconds(pid) - scpu1) / res["acked"], 3) if pid and res["acked"] else None
    )
    res["dropped_senders"] = dict(dropped)
    print(f"  commits: {res['acked']} acks in {args.duration}s = {res['acks_per_s']}/s; ack p50 {res['ack_latency']['p50_ms']} ms "
          f"p99 {res['ack_latency']['p99_ms']} ms; errors {res['send_errors']}; closes {dict(gen.closed_unexpectedly)}; "
          f"server cpu {res['server_cpu']} ({res['server_cpu_ms_per_ack']} ms/ack), waiting for the core {res['server_runqueue_wait']}")
    return {"scenario": "commits", "senders": args.senders, "window": args.window, "env": before, "connect": conn,
            "result": res, "closed_unexpectedly": {str(k): v for k, v in gen.closed_unexpectedly.items()},
            "reconnects": gen.reconnects, "server_rss_kib": gen.server_rss()}


async def scenario_storm(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    """N sockets opened at the same moment; none may be refused or dropped."""
    users = [u["id"] for u in gen.users[: args.users]]
    clients = [gen.client_for(u) for u in users]
    for c in clients:
        c.reconnect = False  # a drop must show, not be repaired
    before = gen.env()
    rss0 = gen.server_rss()
    pid = gen.worker_pid()
    cpu0 = cpu_seconds(pid) if pid else 0.0
    t0 = perf()
    results = await asyncio.gather(*(c.connect(timeout=args.timeout) for c in clients), return_exceptions=True)
    all_open = perf() - t0
    server_cpu_s = (cpu_seconds(pid) - cpu0) if pid else None
    failures = Counter(_describe(r) for r in results if isinstance(r, BaseException))
    times = [r for r in results if not isinstance(r, BaseException)]
    # Everyone must also get hello and the presence snapshot, then stay connected.
    await asyncio.sleep(args.hold)
    no_hello = sum(1 for c, r in zip(clients, results, strict=True) if not isinstance(r, BaseException) and not c.counts["hello"])
    dropped = Counter(str(code) for c in clients for code in c.closes)
    still_open = sum(1 for c in clients if c.connected)
    presence_frames = sum(c.counts["presence"] for c in clients)
    res = {
        "scenario": "storm", "env": before, "attempted": len(clients), "opened": len(times),
        "refused_or_failed": dict(failures), "dropped_during_hold": dict(dropped), "still_open": still_open,
        "without_hello": no_hello, "seconds_until_all_open": round(all_open, 3), "handshake": summary(times),
        "presence_frames_received": presence_frames, "hold_s": args.hold,
        "server_cpu_seconds_while_opening": round(server_cpu_s, 3) if server_cpu_s is not None else None,
        "server_rss_kib": [rss0, gen.server_rss()],
    }
    print(f"  storm: {len(times)}/{len(clients)} opened in {all_open:.2f} s (p99 {res['handshake']['p99_ms']} ms), "
          f"failed {dict(failures)}, dropped {dict(dropped)}, still open {still_open}")
    return res


async def scenario_reconnect(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    """N clients miss messages, the server restarts, all reconnect at once with ?after=."""
    users = [u["id"] for u in gen.users[: args.users]]
    before = gen.env()
    conn = await gen.connect_users(users, settle=2.0)
    clients = [gen.client_for(u) for u in users]
    # 0. A writer (a separate socket of user 1) posts a marker into the 1000-member group:
    #    every client then holds a recent last id, as a browser does from the page it shows
    #    (otherwise ?after=0 would replay every earlier benchmark's messages).
    writer = Client(gen, -1, gen.users[0])
    await writer.connect()
    big = gen.data["group1000"]
    marker = await gen.send(writer, big["id"], gen.members(big), "marker", 0)
    assert marker is not None
    await gen.drain([marker], 60.0)
    print(f"  marker: {len(marker.got)}/{len(marker.expected)} clients have it", flush=True)
    # 1. The clients go away together (keeping the last id they saw).
    for c in clients:
        c.reconnect = False
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    # 2. The writer posts messages they all miss: M into the 1000-member group and one into
    #    every group of 10-50.
    missed: list[Sent] = []
    for k in range(args.missed):
        rec = await gen.send(writer, big["id"], tuple(i for i in gen.members(big)), "missed", k)
        assert rec is not None
        missed.append(rec)
    for g in gen.data["groups"]:
        member_clients = [gen.user_index[u] for u in g["members"] if gen.user_index[u] in gen.clients]
        if not member_clients:
            continue
        author = Client(gen, -2, gen.users[member_clients[0]])
        await author.connect()
        rec = await gen.send(author, g["id"], tuple(member_clients), "missed", 0)
        assert rec is not None
        missed.append(rec)
        while rec.ack is None and rec.error is None:
            await asyncio.sleep(0.005)
        author.reconnect = False
        await author.close()
    while any(r.ack is None and r.error is None for r in missed):
        await asyncio.sleep(0.01)
    writer.reconnect = False
    await writer.close()
    for rec in missed:
        rec.got.clear()  # the two authors' own echoes do not count
    # 3. Restart the server (SIGTERM, start again on the same ports).
    server = BenchServer.load(gen.instance)
    server.stop()
    t_restart = perf()
    server.start()
    server.process = None
    healthy = perf() - t_restart
    rss0 = gen.server_rss()
    pid = gen.worker_pid()
    cpu0 = cpu_seconds(pid) if pid else 0.0
    # 4. Everyone reconnects at the same moment and resumes.
    gen.stopping = False
    t0 = perf()
    for c in clients:
        c.reconnect = True
    results = await asyncio.gather(*(c.connect(after=c.last_id, timeout=args.timeout) for c in clients), return_exceptions=True)
    opened = perf() - t0
    failures = Counter(_describe(r) for r in results if isinstance(r, BaseException))
    deadline = t0 + args.deadline

    async def wait_synced(c: Client) -> None:
        await asyncio.wait_for(c.synced.wait(), timeout=max(0.01, deadline - perf()))

    await asyncio.gather(*(wait_synced(c) for c in clients), return_exceptions=True)
    # Failed connects are retried by the client's own reconnect loop; give them the rest.
    done_times = [c.sync_done_at - t0 for c in clients if c.sync_done_at is not None]
    server_cpu_s = (cpu_seconds(pid) - cpu0) if pid else None
    all_synced = len(done_times) == len(clients)
    expected = sum(len(r.expected) for r in missed)
    got = sum(len(r.got) for r in missed)
    dups = sum(r.dup for r in missed)
    res: dict[str, Any] = {
        "scenario": "reconnect", "env": before, "connect": conn, "clients": len(clients),
        "missed_messages": len(missed), "restart_until_healthy_s": round(healthy, 3),
        "reconnect_failures_first_try": dict(failures), "seconds_until_all_open": round(opened, 3),
        "synced": len(done_times), "all_synced": all_synced,
        "seconds_until_all_synced": round(max(done_times), 3) if all_synced else None,
        "sync_done": summary(done_times), "missed_deliveries_expected": expected, "missed_deliveries_got": got,
        "duplicates": dups, "server_rss_kib": [rss0, gen.server_rss()],
        "server_cpu_seconds_until_synced": round(server_cpu_s, 3) if server_cpu_s is not None else None,
        "closed_unexpectedly": {str(k): v for k, v in gen.closed_unexpectedly.items()},
    }
    print(f"  reconnect: restart healthy after {healthy:.2f} s; {len(done_times)}/{len(clients)} synced, "
          f"last at {res['seconds_until_all_synced']} s (p50 {res['sync_done']['p50_ms']} ms); "
          f"missed deliveries {got}/{expected}, dups {dups}; first-try failures {dict(failures)}")
    return res


def _print_rate(res: dict[str, Any]) -> None:
    lat = res["latency"]
    print(
        f"  rate {res.get('rate')}/s: {res['messages']} msgs, {res['deliveries']}/{res['deliveries_expected']} deliveries "
        f"({res['deliveries_per_s']}/s), p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms max {lat['max_ms']} ms; "
        f"lost {res['lost']} dup {res['duplicates']} sync {res['delivered_via_sync']}; ack p99 {res['ack_latency']['p99_ms']} ms; "
        f"cpu server {res.get('server_cpu')} = {res.get('server_cpu_ms_per_message')} ms/msg "
        f"(waiting for the core {res.get('server_runqueue_wait')}) "
        f"gen {res.get('generator_cpu')} (waiting {res.get('generator_runqueue_wait')}); lag p99 {res['schedule_lag']['p99_ms']} ms; "
        f"errors {res['send_errors']}",
        flush=True,
    )
    fs, ws = res.get("from_schedule"), res.get("worst_second")
    if fs and ws:
        ack, dlv = fs["ack"], fs["delivery"]
        print(
            f"    from the schedule: ack p50 {ack['p50_ms']} p99 {ack['p99_ms']} max {ack['max_ms']} ms; "
            f"delivery to all p50 {dlv['p50_ms']} p99 {dlv['p99_ms']} max {dlv['max_ms']} ms; "
            f"undelivered {fs['undelivered_messages']}, unacked {fs['unacked_messages']}\n"
            f"    worst second: ack p99 {ws['ack_p99_ms']} max {ws['ack_max_ms']} ms, delivery p99 {ws['delivery_p99_ms']} "
            f"max {ws['delivery_max_ms']} ms; seconds with p99 > 100 ms: ack {ws['seconds_ack_p99_over_100ms']}, "
            f"delivery {ws['seconds_delivery_p99_over_100ms']} of {ws['seconds']}; receipts sent {res.get('receipts_sent')} "
            f"({res.get('receipts_sent_per_s')}/s), receipt events received {res.get('receipt_events_received')}",
            flush=True,
        )


SCENARIOS = {
    "ward": scenario_ward, "capacity": scenario_capacity, "mixed": scenario_mixed, "fanout": scenario_fanout, "idle": scenario_idle,
    "commits": scenario_commits, "storm": scenario_storm, "reconnect": scenario_reconnect,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instance", type=Path, default=RESULTS / "instance-sqlite", help="instance folder (its server.json)")
    p.add_argument("--data", type=Path, default=None, help="default: bench/results/data-<instance name>.json")
    p.add_argument("--plain", action="store_true", help="ws:// on the insecure bind instead of wss:// (TLS)")
    p.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    p.add_argument("--batch", action=argparse.BooleanOptionalAction, default=None,
                   help="connect with ?batch=1 like the browser client (frames may arrive as JSON arrays); default: on for ward")
    p.add_argument("--receipts", action=argparse.BooleanOptionalAction, default=None,
                   help="answer messages with delivered/read receipts as the browser client does; default: on for ward")
    p.add_argument("--readers", type=float, default=0.0,
                   help="with receipts: share of clients looking at the chat (they send `read` after every message)")
    p.add_argument("--delivered-delay", type=float, default=1.0,
                   help="with receipts: the others batch `delivered` per conversation this long (app.js: 1 s); "
                        "0 = one frame per message, as a hidden tab with the conversation open")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--drain", type=float, default=10.0, help="seconds to wait for late deliveries")
    p.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/<scenario>[-<label>].json)")
    p.add_argument("--label", default="", help="suffix for the default result file name")
    p.add_argument("--settle-limit", type=float, default=300.0,
                   help="after connecting, wait at most this long for the server to go quiet (presence)")
    sub = p.add_subparsers(dest="scenario", required=True)
    s = sub.add_parser("ward", help="every member of a group connected and sending, Poisson, with receipts")
    s.add_argument("--members", type=int, default=100, help="group size: the smallest data group with this many members")
    s.add_argument("--rates", default="50,100,200", help="aggregate msg/s over all members, one run per rate")
    s.add_argument("--duration", type=float, default=30.0)
    s.add_argument("--warmup", type=float, default=2.0)
    s = sub.add_parser("capacity", help="Poisson sends into the 100-member group at each rate")
    s.add_argument("--rates", default="20,50,100,200,300")
    s.add_argument("--duration", type=float, default=20.0)
    s.add_argument("--warmup", type=float, default=2.0)
    s = sub.add_parser("mixed", help="N users connected, Poisson sends into their groups of 10-50")
    s.add_argument("--users", type=int, default=1000)
    s.add_argument("--rate", type=float, default=20.0)
    s.add_argument("--duration", type=float, default=30.0)
    s.add_argument("--warmup", type=float, default=2.0)
    s.add_argument("--direct-fraction", type=float, default=0.0, help="share of sends into direct chats")
    s = sub.add_parser("fanout", help="single messages into the 1000-member group")
    s.add_argument("--count", type=int, default=10)
    s.add_argument("--gap", type=float, default=1.0)
    s = sub.add_parser("idle", help="RSS per idle connection")
    s.add_argument("--users", type=int, default=1000)
    s.add_argument("--batch", type=int, default=50)
    s.add_argument("--settle", type=float, default=20.0, help="seconds to wait (and measure idle CPU) before reading RSS")
    s = sub.add_parser("commits", help="closed-loop concurrent senders: acks/s")
    s.add_argument("--senders", type=int, default=200)
    s.add_argument("--window", type=int, default=1, help="sends in flight per sender")
    s.add_argument("--duration", type=float, default=20.0)
    s.add_argument("--warmup", type=float, default=2.0)
    s = sub.add_parser("storm", help="N connections opened at once")
    s.add_argument("--users", type=int, default=1000)
    s.add_argument("--timeout", type=float, default=30.0)
    s.add_argument("--hold", type=float, default=10.0)
    s = sub.add_parser("reconnect", help="N clients reconnect together after a server restart")
    s.add_argument("--users", type=int, default=1000)
    s.add_argument("--missed", type=int, default=20, help="messages into the 1000-member group while away")
    s.add_argument("--timeout", type=float, default=30.0)
    s.add_argument("--deadline", type=float, default=30.0, help="give up waiting for sync after this")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    gen = Generator(args)
    gc.freeze()
    try:
        result = await SCENARIOS[args.scenario](gen, args)
    finally:
        await gen.close_all()
    result["env_after"] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    result["generator"] = {"foreign_messages": gen.foreign, "errors": dict(gen.errors),
                           "reconnects": gen.reconnects, "reconnect_failures": dict(gen.reconnect_failures)}
    result["command"] = " ".join(sys.argv)
    return result


def main() -> None:
    args = parse_args()
    result = asyncio.run(amain(args))
    out = args.out or RESULTS / f"{args.scenario}{'-' + args.label if args.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
