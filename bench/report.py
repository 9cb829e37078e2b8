"""Print the figures of bench/results/*-<label>.json against the issue's targets (markdown).

Open-loop runs (ward, capacity, mixed) also show their figures from the scheduled send time
and their worst one-second window; the ward's verdict is on the worst second (the issue's
targets must hold in every second of a run, not on average).

    .venv/bin/python bench/report.py [--label sqlite-wss]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def when(d: dict[str, Any]) -> str:
    env = d.get("env", {})
    load_avg = env.get("loadavg", ["?"])[0]
    after = d.get("env_after", {}).get("loadavg", ["?"])[0]
    return f"{env.get('when', '?')[11:16]}, load {load_avg}->{after}, {env.get('git', {}).get('commit', '?')}"


def verdict(ok: bool | None) -> str:
    return "?" if ok is None else ("met" if ok else "**missed**")


def seconds_text(r: dict[str, Any]) -> str:
    """The open-loop figures from the scheduled send time, over the run and its worst second."""
    fs, ws = r.get("from_schedule"), r.get("worst_second")
    if not fs or not ws:
        return ""  # a result file from before the per-second figures
    ack, dlv = fs["ack"], fs["delivery"]
    return (f"; from the schedule: ack p50 {ack['p50_ms']} / p99 {ack['p99_ms']} / max {ack['max_ms']} ms, "
            f"delivery to all p50 {dlv['p50_ms']} / p99 {dlv['p99_ms']} / max {dlv['max_ms']} ms; "
            f"worst second: ack p99 {ws['ack_p99_ms']} / max {ws['ack_max_ms']} ms, delivery p99 {ws['delivery_p99_ms']} / "
            f"max {ws['delivery_max_ms']} ms; seconds with p99 > 100 ms: ack {ws['seconds_ack_p99_over_100ms']}, "
            f"delivery {ws['seconds_delivery_p99_over_100ms']} of {ws['seconds']}; undelivered after the drain "
            f"{fs['undelivered_messages']}; receipts sent {r.get('receipts_sent_per_s', 0)}/s")


def every_second(r: dict[str, Any], limit_ms: float) -> bool | None:
    """p99 of acks and deliveries within ``limit_ms`` in every second, nothing undelivered."""
    fs, ws = r.get("from_schedule"), r.get("worst_second")
    if not fs or not ws or ws["delivery_p99_ms"] is None or ws["ack_p99_ms"] is None:
        return None
    return (ws["delivery_p99_ms"] <= limit_ms and ws["ack_p99_ms"] <= limit_ms
            and not fs["undelivered_messages"] and not fs["unacked_messages"])


def ward_rows(d: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    env = d.get("env", {})
    shape = (f"{d['members']} of {d['group_size']} members sending, receipts {'on' if env.get('receipts') else 'off'}"
             f" ({d.get('readers', 0)} reading), batch {env.get('batch')}")
    for r in d["runs"]:
        lat = r["latency"]
        text = (f"{shape}; {r['rate']:.0f} msg/s: {r['messages']} msgs, {r['deliveries_per_s']} deliveries/s; "
                f"server CPU {r['server_cpu']} ({r['server_cpu_ms_per_message']} ms/msg), waited for its core "
                f"{r['server_runqueue_wait']}; per recipient from the write p99 {lat['p99_ms']} ms" + seconds_text(r))
        if d["group_size"] >= 1000:
            target = f"{d['group_size']}-member group at {r['rate']:.0f} msg/s, every member able to send: p99 <= 100 ms in every second"
        else:
            target = f"{d['group_size']}-member group, every member sending, {r['rate']:.0f} msg/s: p99 <= 100 ms in every second, nothing lost"
        rows.append((target, text, when(d), verdict(every_second(r, 100))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", default="sqlite-wss")
    args = parser.parse_args()
    label = args.label
    rows: list[tuple[str, str, str, str]] = []

    for name in (f"ward-{label}", f"ward-{label}-1000"):
        ward = load(name)
        if ward:
            rows += ward_rows(ward)
    cap = load(f"capacity-{label}")
    if cap:
        for r in cap["runs"]:
            lat = r["latency"]
            late = r["lost"]
            text = (f"{r['rate']:.0f} msg/s: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms; "
                    f"{r['deliveries_per_s']} deliveries/s; not delivered within 10 s: {late}; dups {r['duplicates']}; "
                    f"server CPU {r['server_cpu']} ({r['server_cpu_ms_per_message']} ms/msg), waited for its core {r['server_runqueue_wait']}"
                    + seconds_text(r))
            if r["rate"] == 20:
                rows.append(("100-member group, 20 msg/s: p99 <= 25 ms", text, when(cap), verdict(lat["p99_ms"] is not None and lat["p99_ms"] <= 25 and not late)))
            elif r["rate"] >= 200:
                rows.append((f"100-member group, {r['rate']:.0f} msg/s: p99 <= 100 ms, nothing lost", text, when(cap),
                             verdict(lat["p99_ms"] is not None and lat["p99_ms"] <= 100 and not late)))
            else:
                rows.append((f"100-member group, {r['rate']:.0f} msg/s (curve)", text, when(cap), ""))
    for name in (f"mixed-{label}", f"mixed-{label}-receipts"):
        mixed = load(name)
        if not mixed:
            continue
        r = mixed["result"]
        lat = r["latency"]
        receipts = mixed.get("env", {}).get("receipts")
        rows.append((f"1000 users connected, 20 msg/s into groups of 10-50: p99 <= 30 ms (receipts {'on' if receipts else 'off'})",
                     f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms; not delivered within 10 s: {r['lost']}; "
                     f"server CPU {r['server_cpu']}, waited {r['server_runqueue_wait']}" + seconds_text(r), when(mixed),
                     verdict(lat["p99_ms"] is not None and lat["p99_ms"] <= 30 and not r["lost"])))
    fan = load(f"fanout-{label}")
    if fan:
        r = fan["result"]
        full = [x for x in r["per_message_full_ms"] if x is not None]
        rows.append(("one message to a 1000-member group fully delivered <= 100 ms",
                     f"{len(full)} messages: full delivery median {sorted(full)[len(full) // 2]} ms, min {min(full)}, max {max(full)} ms; "
                     f"fan-out spread (last - first recipient) p50 {r['spread']['p50_ms']} ms; all complete: {all(r['per_message_complete'])}",
                     when(fan), verdict(max(full) <= 100 and all(r["per_message_complete"]))))
    idle = load(f"idle-{label}")
    if idle:
        rows.append(("idle memory <= 50 KiB per connection (client offers compression)",
                     f"{idle['kib_per_connection']} KiB/connection (RSS {idle['rss_before_kib']} -> {idle['rss_connected_kib']} KiB for "
                     f"{idle['connect']['connected']} sockets); negotiated extensions {idle['negotiated_extensions']}",
                     when(idle), verdict(idle["kib_per_connection"] <= 50)))
    com = load(f"commits-{label}")
    if com:
        r = com["result"]
        rows.append((">= 2000 durably committed messages/s; a busy database never drops a sender",
                     f"{r['acks_per_s']} acks/s from {com['senders']} closed-loop senders; ack p50 {r['ack_latency']['p50_ms']} ms, "
                     f"p99 {r['ack_latency']['p99_ms']} ms; errors {r['send_errors']}; closed sockets {com['closed_unexpectedly']}; "
                     f"server CPU {r['server_cpu']} ({r['server_cpu_ms_per_ack']} ms/ack), waited {r['server_runqueue_wait']}",
                     when(com), verdict(r["acks_per_s"] >= 2000 and not r["send_errors"] and not com["closed_unexpectedly"])))
    storm = load(f"storm-{label}")
    if storm:
        ok = storm["opened"] == storm["attempted"] and not storm["dropped_during_hold"] and not storm["without_hello"]
        rows.append(("1000 connections opened at once: none refused or dropped",
                     f"{storm['opened']}/{storm['attempted']} opened, failed {storm['refused_or_failed']}, dropped {storm['dropped_during_hold']}; "
                     f"all open after {storm['seconds_until_all_open']} s (handshake p50 {storm['handshake']['p50_ms']} ms, "
                     f"p99 {storm['handshake']['p99_ms']} ms)", when(storm), verdict(ok)))
    rec = load(f"reconnect-{label}")
    if rec:
        ok = rec["all_synced"] and rec["seconds_until_all_synced"] is not None and rec["seconds_until_all_synced"] <= 5
        rows.append(("1000 clients reconnecting after a restart all caught up within 5 s",
                     f"{rec['synced']}/{rec['clients']} synced; last after {rec['seconds_until_all_synced']} s "
                     f"(p50 {rec['sync_done']['p50_ms']} ms); missed messages delivered {rec['missed_deliveries_got']}/"
                     f"{rec['missed_deliveries_expected']}, dups {rec['duplicates']}; server healthy {rec['restart_until_healthy_s']} s after the restart",
                     when(rec), verdict(ok)))
    print(f"| target | measured ({label}) | when, load avg (1 min) before->after, commit | verdict |")
    print("| --- | --- | --- | --- |")
    for target, text, at, v in rows:
        print(f"| {target} | {text} | {at} | {v} |")


if __name__ == "__main__":
    main()
