#!/usr/bin/env python3
"""bench_plot.py DIR PLOTS: the plots of a `scripts/loadtest` run, from
DIR/summary.tsv (written by bench_report.py) and DIR/meta.tsv, as PNG files
in PLOTS: bench-rps.png (requests/s at c10 and c50, medians with the
repetitions' range), bench-p99.png (p99 at c10 and c50, medians) and
bench-instructions.png (instructions per request). Needs matplotlib (the
script runs it from a venv: plot_python in scripts/lib/load.sh)."""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

DIR, PLOTS = sys.argv[1], sys.argv[2]
with open(os.path.join(DIR, "summary.tsv"), newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
with open(os.path.join(DIR, "meta.tsv"), newline="") as f:
    meta = {r["key"]: r["value"] for r in csv.DictReader(f, delimiter="\t")}
PEERS = ("axum-response-cache", "tower-http-cache", "hitbox", "http-cache-tower-server")
REMOTE = ("redis", "memcached", "tiered")
SUBTITLE = (
    f"{meta.get('date')}, {meta.get('cores')} cores ({meta.get('cpu')}), loopback; "
    f"medians of {meta.get('reps')} x wrk {meta.get('wrk_d')}"
)


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# The legend: what the colours and the hatching mean.
KINDS = [
    Patch(facecolor="tab:grey", label="bare handler"),
    Patch(facecolor="tab:blue", label="tower-cache"),
    Patch(facecolor="tab:orange", label="Rust peers"),
]


def colour(system):
    if system in ("bare", "bare-headers"):
        return "tab:grey"
    if system in PEERS:
        return "tab:orange"
    return "tab:blue"


# Top to bottom in the run's order.
rows = rows[::-1]
labels = [r["label"] for r in rows]
y = list(range(len(rows)))
height = 0.38


def grouped(field, title, xlabel, path, whiskers=False, log=False):
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.6))
    for i, (conc, hatch, offset) in enumerate(((10, "", height / 2), (50, "//", -height / 2))):
        values = [num(r[f"{field}_c{conc}"]) or 0 for r in rows]
        xerr = None
        if whiskers:
            lo = [max(0.0, v - (num(r[f"{field}_c{conc}_min"]) or v)) for v, r in zip(values, rows)]
            hi = [max(0.0, (num(r[f"{field}_c{conc}_max"]) or v) - v) for v, r in zip(values, rows)]
            xerr = [lo, hi]
        ax.barh(
            [p + offset for p in y], values, height=height, xerr=xerr, capsize=2,
            color=[colour(r["system"]) for r in rows], alpha=1.0 if conc == 10 else 0.6,
            hatch=hatch, edgecolor="white",
        )
        for p, v, r in zip(y, values, rows):
            if not v:
                continue
            text = f" {v:,.0f}" if v >= 100 else f" {v:.2f}"
            ratio = num(r.get(f"ratio_c{conc}")) if whiskers else None
            if ratio is not None and r["system"] != "bare":
                text += f" ({ratio:.2f}x bare)"
            end = v + (xerr[1][p] if xerr else 0)
            ax.text(end, p + offset, text, va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(xlabel)
    if log:
        ax.set_xscale("log")
    ax.set_title(f"{title}\n{SUBTITLE}", fontsize=10)
    ax.legend(handles=KINDS + [
        Patch(facecolor="white", edgecolor="black", label="c10 (upper bar)"),
        Patch(facecolor="white", edgecolor="black", hatch="//", label="c50 (lower bar)"),
    ], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    ax.margins(x=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


grouped("rps", "Cached page: requests/s (wrk -t2; bars: median, whiskers: the repetitions' range;\n"
        "in brackets: the median of the per-repetition ratios to the bare handler)",
        "requests/s", os.path.join(PLOTS, "bench-rps.png"), whiskers=True)
p99 = [num(r[f"p99_ms_c{c}"]) for r in rows for c in (10, 50) if num(r[f"p99_ms_c{c}"])]
grouped("p99_ms", "Cached page: p99 latency (wrk -t2 --latency; median of the repetitions)", "p99, ms",
        os.path.join(PLOTS, "bench-p99.png"), log=bool(p99) and max(p99) / min(p99) > 30)

fig, ax = plt.subplots(figsize=(10, 0.4 * len(rows) + 1.6))
values = [num(r["instructions"]) or 0 for r in rows]
ax.barh(y, values, color=[colour(r["system"]) for r in rows], height=0.6)
for p, v, r in zip(y, values, rows):
    if v:
        ratio = num(r["instructions_ratio"])
        note = " (app process only)" if r["system"] in REMOTE else ""
        ax.text(v, p, f" {v:,.0f}" + (f" ({ratio:.2f}x bare)" if ratio else "") + note, va="center", fontsize=7)
ax.set_yticks(y)
ax.set_yticklabels(labels, fontsize=8)
ax.set_xscale("log")
ax.legend(handles=KINDS, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
ax.set_xlabel("instructions per request (callgrind, log scale)")
ax.set_title(
    f"Cached page: instructions per request of a hit (one tokio worker, {meta.get('cg_n')} sequential keep-alive "
    f"requests)\n{meta.get('date')}, commit {meta.get('commit')}", fontsize=10)
ax.margins(x=0.35)
fig.tight_layout()
fig.savefig(os.path.join(PLOTS, "bench-instructions.png"), dpi=90, bbox_inches="tight")
plt.close(fig)
