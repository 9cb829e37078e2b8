"""Plot latency percentiles against send rate from bench/results/capacity-*.json.

    .venv/bin/python bench/plot.py [--out docs/performance-latency.png] [files...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance-latency.png")
    args = parser.parse_args()
    files = args.files or sorted((ROOT / "bench" / "results").glob("capacity-*.json"))
    files = [f for f in files if "dev" not in f.stem and "prof" not in f.stem]
    if not files:
        raise SystemExit("no bench/results/capacity-*.json yet: run bench/run.sh")
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    styles = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"])
    for f in files:
        data = json.loads(f.read_text())
        runs = [r for r in data["runs"] if r["latency"]["n"]]
        label = f.stem.removeprefix("capacity-")
        waits = [r.get("server_runqueue_wait") for r in runs if r.get("server_runqueue_wait") is not None]
        if waits:
            label += f" (server waited for its core {min(waits):.0%}-{max(waits):.0%})"
        rates = [r["rate"] for r in runs]
        color = next(styles)
        ax.plot(rates, [r["latency"]["p50_ms"] for r in runs], "o--", color=color, label=f"{label} p50")
        ax.plot(rates, [r["latency"]["p99_ms"] for r in runs], "s-", color=color, label=f"{label} p99")
        for r in runs:
            if r["lost"]:
                share = r["lost"] / max(1, r["deliveries_expected"])
                ax.annotate(f"{share:.0%} late >10 s", (r["rate"], r["latency"]["p99_ms"]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
    ax.axhline(100, color="grey", lw=0.8, ls=":")
    ax.text(ax.get_xlim()[0], 100, " target p99 100 ms (at 200 msg/s)", fontsize=7, va="bottom", color="grey")
    ax.axhline(25, color="grey", lw=0.8, ls=":")
    ax.text(ax.get_xlim()[0], 25, " target p99 25 ms (at 20 msg/s)", fontsize=7, va="bottom", color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("send rate into one 100-member group (messages/s, Poisson)")
    ax.set_ylabel("send -> delivery latency at each member (ms, log)")
    ax.set_title("MedChat /ws: end-to-end latency against load (server on 1 core)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
