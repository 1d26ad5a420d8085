#!/usr/bin/env python3
"""bench_report.py DIR [--page]: the summary of a `scripts/loadtest` run.

Reads DIR/{meta,cold,hot,herd,instructions}.tsv, writes DIR/summary.tsv (one
row per system) and prints the tables as markdown; with --page, prints the
whole of BENCHMARKS.md instead. Every figure comes from those TSVs: medians
over the repetitions, and ratios to the bare handler as the median of the
per-repetition ratios (the bare handler measured in the same repetition at
the same concurrency). Standard library only.
"""
import csv
import os
import statistics
import sys

DIR = sys.argv[1]
PAGE = "--page" in sys.argv[2:]
PEERS = ("axum-response-cache", "tower-http-cache", "hitbox", "http-cache-tower-server")
# Backends whose work partly happens in another process (callgrind counts the
# demo's process only).
REMOTE = ("redis", "memcached", "tiered")


def rows(name):
    path = os.path.join(DIR, name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


meta = {r["key"]: r["value"] for r in rows("meta.tsv")}
systems = meta.get("systems", "").split()
cold = {r["system"]: r for r in rows("cold.tsv")}
hot = rows("hot.tsv")
herd = rows("herd.tsv")
instructions = {r["system"]: num(r["instructions_per_request"]) for r in rows("instructions.tsv")}
reps = sorted({int(r["rep"]) for r in hot})
load1 = [num(r["load1"]) for r in rows("load.tsv") if num(r.get("load1")) is not None]


def load_text():
    """The load average: at the start and the end, and sampled during the run."""
    text = f"{meta.get('load_start', '?')} at the start, {meta.get('load_end', '?')} at the end"
    if load1:
        text += (
            f"; the 1-minute figure, sampled every 10 s during the run ({len(load1)} samples): "
            f"min {min(load1):.2f}, median {statistics.median(load1):.2f}, max {max(load1):.2f}"
        )
    return text


def nice_text():
    nice = meta.get("nice", "0")
    if nice and nice != "0":
        return f" The run's processes (wrk, the servers, the builds) ran with niceness {nice} (`nice -n {nice}`), below the machine's other work."
    return ""


# The handlers without a cache.
BARE = ("bare", "bare-headers")


def label(system):
    version = lambda crate: meta.get(f"version_{crate}", "")  # noqa: E731
    cache_url = meta.get("cache_url", "memory://")
    return {
        "bare": "bare Axum handler (the ceiling)",
        "bare-headers": "bare Axum handler with a hit's header fields",
        "demo": "tower-cache, memory, with the demo's timing log",
        "memory": "tower-cache, memory" + ("" if cache_url == "memory://" else f" ({cache_url})"),
        "redis": "tower-cache, Redis",
        "memcached": "tower-cache, memcached",
        "sqlite": "tower-cache, SQLite",
        "file": "tower-cache, files",
        "tiered": "tower-cache, Redis + 64 MiB L1",
        "axum-response-cache": f"axum-response-cache {version('axum-response-cache')}",
        "tower-http-cache": f"tower-http-cache {version('tower-http-cache')}",
        "hitbox": f"hitbox {version('hitbox')} (herd protection on)",
        "http-cache-tower-server": f"http-cache-tower-server {version('http-cache-tower-server')}",
    }.get(system, system)


def hot_values(system, c, field):
    return [num(r[field]) for r in hot if r["system"] == system and int(r["connections"]) == c and num(r[field]) is not None]


def per_rep_ratios(system, c, base="bare", field="rps"):
    """WHO/BASE per repetition, at concurrency C."""
    out = []
    for rep in reps:
        a = [num(r[field]) for r in hot if r["system"] == system and int(r["rep"]) == rep and int(r["connections"]) == c]
        b = [num(r[field]) for r in hot if r["system"] == base and int(r["rep"]) == rep and int(r["connections"]) == c]
        if a and b and a[0] is not None and b[0]:
            out.append(a[0] / b[0])
    return out


def median(values):
    return statistics.median(values) if values else None


def herd_row(system, processes=1):
    for r in herd:
        if r["system"] == system and int(r["processes"]) == processes:
            return r
    return None


summary = []
for s in systems:
    row = {"system": s, "label": label(s)}
    c = cold.get(s, {})
    row["cold_rps"] = num(c.get("ab_rps"))
    row["cold_failed"] = num(c.get("failed"))
    row["cold_upstream_calls"] = num(c.get("upstream_calls"))
    for conc in (10, 50):
        rps = hot_values(s, conc, "rps")
        row[f"rps_c{conc}"] = median(rps)
        row[f"rps_c{conc}_min"] = min(rps) if rps else None
        row[f"rps_c{conc}_max"] = max(rps) if rps else None
        row[f"p50_ms_c{conc}"] = median(hot_values(s, conc, "p50_ms"))
        row[f"p99_ms_c{conc}"] = median(hot_values(s, conc, "p99_ms"))
        ratios = per_rep_ratios(s, conc) if "bare" in systems else []
        row[f"ratio_c{conc}"] = median(ratios)
        row[f"ratio_c{conc}_min"] = min(ratios) if ratios else None
        row[f"ratio_c{conc}_max"] = max(ratios) if ratios else None
        p99r = per_rep_ratios(s, conc, field="p99_ms") if "bare" in systems else []
        row[f"p99_ratio_c{conc}"] = median(p99r)
        row[f"errors_c{conc}"] = sum(hot_values(s, conc, "errors"))
        row[f"hot_upstream_calls_c{conc}"] = sum(hot_values(s, conc, "upstream_calls"))
    h = herd_row(s)
    row["herd_upstream_calls"] = num(h["upstream_calls"]) if h else None
    row["herd_wall_s"] = num(h["wall_s"]) if h else None
    row["herd_ok"] = num(h["ok"]) if h else None
    row["instructions"] = instructions.get(s)
    bare_ir = instructions.get("bare")
    row["instructions_ratio"] = row["instructions"] / bare_ir if row["instructions"] and bare_ir else None
    summary.append(row)

FIELDS = list(summary[0].keys()) if summary else ["system"]
with open(os.path.join(DIR, "summary.tsv"), "w", newline="") as f:
    w = csv.writer(f, delimiter="\t", lineterminator="\n")
    w.writerow(FIELDS)
    for row in summary:
        w.writerow(["" if row[k] is None else (f"{row[k]:g}" if isinstance(row[k], float) else row[k]) for k in FIELDS])


# ---- formatting --------------------------------------------------------------
def n0(v):
    return "" if v is None else f"{v:,.0f}"


def n2(v):
    return "" if v is None else f"{v:.2f}"


def rate(v):
    """Requests/s: two decimals below 1,000, whole with separators above."""
    return "" if v is None else (f"{v:,.0f}" if v >= 1000 else f"{v:.2f}")


def x2(v):
    return "" if v is None else f"{v:.2f}x"


def cell_ir(row):
    if row["instructions"] is None:
        return "", ""
    note = " (app process only)" if row["system"] in REMOTE else ""
    return n0(row["instructions"]) + note, x2(row["instructions_ratio"])


def herd_cell(row):
    if row["system"] in BARE:
        return "-"
    if row["herd_upstream_calls"] is None:
        return ""
    return n0(row["herd_upstream_calls"])


def side_by_side():
    out = [
        "| system | hot rps c10 | c10 / bare | hot rps c50 | c50 / bare | p99 ms c10 | p99 ms c50 | herd of 50: upstream calls | instructions / request | / bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary:
        ir, irr = cell_ir(r)
        out.append(
            f"| {r['label']} | {n0(r['rps_c10'])} | {x2(r['ratio_c10'])} | {n0(r['rps_c50'])} | {x2(r['ratio_c50'])} "
            f"| {n2(r['p99_ms_c10'])} | {n2(r['p99_ms_c50'])} | {herd_cell(r)} | {ir} | {irr} |"
        )
    return "\n".join(out)


def details():
    out = [
        "| system | cold ab rps | cold upstream calls | p50 ms c10 | p50 ms c50 | per-rep c10 / bare | per-rep c50 / bare | rps c10 min-max | rps c50 min-max | herd wall s |",
        "|---|---:|---:|---:|---:|---|---|---|---|---:|",
    ]
    for r in summary:
        rng = lambda a, b, f: "" if r[a] is None else f"{f(r[a])}-{f(r[b])}"  # noqa: E731
        out.append(
            f"| {r['label']} | {rate(r['cold_rps'])} | {n0(r['cold_upstream_calls'])} | {n2(r['p50_ms_c10'])} | {n2(r['p50_ms_c50'])} "
            f"| {rng('ratio_c10_min', 'ratio_c10_max', n2)} | {rng('ratio_c50_min', 'ratio_c50_max', n2)} "
            f"| {rng('rps_c10_min', 'rps_c10_max', n0)} | {rng('rps_c50_min', 'rps_c50_max', n0)} "
            f"| {'-' if r['system'] in BARE else n2(r['herd_wall_s'])} |"
        )
    return "\n".join(out)


def herd_two():
    h = herd_row("redis", 2)
    if not h:
        return None
    return (
        f"Herd of 50 split over two demo processes sharing one Redis (one `Host`, as behind a load balancer): "
        f"**{h['upstream_calls']}** upstream call(s), {h['ok']} of {h['n']} answered 200, wall {h['wall_s']} s."
    )


def by(system):
    for r in summary:
        if r["system"] == system:
            return r
    return None


def goals():
    """Issue 16's goals, against this run's figures."""
    mem, bare = by("memory"), by("bare")
    if not mem or not bare:
        return None
    lines = ["| goal (issue 16) | measured in this run | met? |", "|---|---|---|"]

    def line(goal, measured, ok):
        lines.append(f"| {goal} | {measured} | {'' if ok is None else ('yes' if ok else 'no')} |")

    ir = mem["instructions_ratio"]
    arc = by("axum-response-cache")
    line("memory hit: instructions per request <= 1.10x bare (and below axum-response-cache's)",
         f"{x2(ir)}" + (f" (axum-response-cache {x2(arc['instructions_ratio'])})" if arc and arc["instructions_ratio"] else ""),
         None if ir is None else ir <= 1.10 and (not arc or not arc["instructions_ratio"] or ir < arc["instructions_ratio"]))
    headers = by("bare-headers")
    if headers and headers["instructions"] and mem["instructions"]:
        line("(context, not a goal) memory hit: instructions per request vs the bare handler sending the same "
             "header fields", x2(mem["instructions"] / headers["instructions"]), None)
    r10, r50 = mem["ratio_c10"], mem["ratio_c50"]
    line("memory hit >= 0.95x bare at c10 and c50 (wrk, >= 4 alternating reps)",
         f"c10 {x2(r10)}, c50 {x2(r50)} ({len(reps)} reps)",
         None if r10 is None or r50 is None else r10 >= 0.95 and r50 >= 0.95 and len(reps) >= 4)
    p10, p50 = mem["p99_ratio_c10"], mem["p99_ratio_c50"]
    if headers:
        h10 = median(per_rep_ratios("memory", 10, base="bare-headers"))
        h50 = median(per_rep_ratios("memory", 50, base="bare-headers"))
        if h10 is not None and h50 is not None:
            line("(context, not a goal) memory hit vs the bare handler sending the same header fields (wrk)",
                 f"c10 {x2(h10)}, c50 {x2(h50)}", None)
    line("memory p99 <= 1.3x bare's", f"c10 {x2(p10)}, c50 {x2(p50)}",
         None if p10 is None or p50 is None else p10 <= 1.3 and p50 <= 1.3)
    for system, goal in (("redis", 0.5), ("memcached", 0.45)):
        r = by(system)
        if r and r["ratio_c10"] is not None:
            line(f"{system} hit >= {goal}x bare", f"c10 {x2(r['ratio_c10'])}, c50 {x2(r['ratio_c50'])}",
                 r["ratio_c10"] >= goal and r["ratio_c50"] >= goal)
    if by("tiered"):
        t10 = median(per_rep_ratios("tiered", 10, base="memory"))
        t50 = median(per_rep_ratios("tiered", 50, base="memory"))
        if t10 is not None and t50 is not None:
            line("tiered (Redis + L1) within 5% of memory", f"c10 {x2(t10)}, c50 {x2(t50)} of memory",
                 abs(t10 - 1) <= 0.05 and abs(t50 - 1) <= 0.05)
    return "\n".join(lines)


def checks():
    hot_up = sum(r["hot_upstream_calls_c10"] + r["hot_upstream_calls_c50"] for r in summary)
    errors = sum(r["errors_c10"] + r["errors_c50"] for r in summary)
    failed = sum(r["cold_failed"] or 0 for r in summary)
    return hot_up, errors, failed


def noise():
    bare = by("bare")
    out = []
    if bare and bare["rps_c10_min"] and len(reps) > 1:
        out.append(
            f"- The bare handler alone, the same binary serving the same bytes, measured "
            f"{n0(bare['rps_c10_min'])}-{n0(bare['rps_c10_max'])} rps at c10 "
            f"({(bare['rps_c10_max'] / bare['rps_c10_min'] - 1) * 100:.0f}% apart) and "
            f"{n0(bare['rps_c50_min'])}-{n0(bare['rps_c50_max'])} at c50 "
            f"({(bare['rps_c50_max'] / bare['rps_c50_min'] - 1) * 100:.0f}% apart) over the {len(reps)} repetitions."
        )
    widths = [
        (r["ratio_c10_max"] - r["ratio_c10_min"], r["label"])
        for r in summary
        if r["system"] != "bare" and r["ratio_c10_min"] is not None
    ] + [
        (r["ratio_c50_max"] - r["ratio_c50_min"], r["label"])
        for r in summary
        if r["system"] != "bare" and r["ratio_c50_min"] is not None
    ]
    if widths and len(reps) > 1:
        widest = max(widths)
        out.append(
            f"- The per-repetition ratios to the bare handler spread by up to {widest[0]:.2f} "
            f"({widest[1]}); the ranges are in the details table. Read a difference in the ratio "
            f"columns smaller than that spread as noise."
        )
    out.append(
        f"- Load average (1, 5, 15 min): {load_text()}. wrk (2 threads) runs on the same "
        f"{meta.get('cores', '?')} cores as the server it measures, and the machine is shared (other builds "
        f"may run): absolute requests/s are lower than on a quiet or bigger machine; the ratios taken in the "
        f"same repetition are what to compare." + nice_text()
    )
    out.append(
        "- p99 on 2 shared cores is mostly scheduling: a request that waits for a time slice. It moves more "
        "than the medians from one repetition to the next."
    )
    out.append(
        "- Instructions per request (callgrind) do not depend on the load: one tokio worker, one keep-alive "
        "connection, the counters zeroed after the warm-up and dumped after the measured requests. They count "
        "the server's process "
        "only: for Redis, memcached and the tiered cache, the cache server's own work is not in the figure, "
        "and a SQLite or file hit's system calls count as the instructions around them, not the kernel's."
    )
    out.append(
        "- cold ab is about 100 / (the upstream delay + a little) for a cache that stores the page at once: "
        "ab sends its first request alone, so that one fills the cache before the other 99 start. It does not "
        "test coalescing (the herd does)."
    )
    twice = [r for r in summary if (r["cold_upstream_calls"] or 0) > 1]
    if twice:
        names = ", ".join(f"{r['label']} ({n0(r['cold_upstream_calls'])} calls)" for r in twice)
        herd_once = all((r["herd_upstream_calls"] or 0) == 1 for r in twice)
        out.append(
            f"- In the cold phase the upstream was called more than once by: {names}. The first request, "
            f"alone, had been answered; a request after it still missed and went upstream again"
            + (", although a herd of 50 simultaneous requests against a fresh process of the same system "
               "called it once." if herd_once else ".")
        )
    return "\n".join(out)


def systems_text():
    v = lambda crate: meta.get(f"version_{crate}", "?")  # noqa: E731
    return "\n".join([
        "- **bare Axum handler**: `examples/bare_page.rs`, no cache, serving the bytes the demo caches: the ceiling.",
        "- **bare Axum handler with a hit's header fields**: the same, also sending the five fields a demo's hit "
        "adds to the bare handler's (`Expires`, `Cache-Control`, `ETag`, `Age`, `Cache-Status`), fixed values of "
        "their length: what writing them costs the server, which no cache that serves them can save.",
        "- **tower-cache, ...**: the tutorial demo (`examples/httpbin.rs`, `cache_page` with 300 s, `--quiet`: no "
        "per-request timing log) on `memory://`, `redis://...`, `memcached://...`, `sqlite:///...`, `file:///...`, "
        "and `redis://...?l1_max_bytes=64MiB` (the two-tier cache); each process on a shared backend has a key "
        "prefix of its own. The row with the timing log is the demo as the tutorial has it.",
        f"- **axum-response-cache {v('axum-response-cache')}**: `CacheLayer::with_lifespan(300 s)`; any 2xx is "
        "stored, keyed by method and URI, no Cache-Control handling, no coalescing.",
        f"- **tower-http-cache {v('tower-http-cache')}**: `CacheLayer` on `InMemoryBackend` (moka), TTL 300 s, "
        "defaults otherwise (Cache-Control honoured, per-key lock); the view is a `service_fn` answering "
        "`Full<Bytes>` (the layer wants a `Sync` body).",
        f"- **hitbox {v('hitbox')}** (hitbox-tower {v('hitbox-tower')}, hitbox-moka {v('hitbox-moka')}): GET and "
        "200 predicates, method + path key, TTL 300 s, `BroadcastConcurrencyManager` with a concurrency of 1 "
        "(its herd protection, off by default); no HTTP caching rules.",
        f"- **http-cache-tower-server {v('http-cache-tower-server')}** (http-cache {v('http-cache')}, "
        "`MokaManager`): `cache_by_default` with 300 s as default and longest TTL (the view sends no "
        "Cache-Control).",
        f"- Every peer is an Axum {v('axum')} app in `benches/peers/` (its own workspace and Cargo.lock; release "
        "profile thin LTO, one codegen unit, as the examples are built); `GET /` calls the upstream's `/delay/N` "
        "on a miss, then answers the page file as `text/html; charset=utf-8`.",
    ])


hot_up, errors, failed = checks()
status = (
    f"Upstream calls during the hot phase: {n0(hot_up)} (must be 0). wrk socket errors and non-2xx answers: "
    f"{n0(errors)}. Failed cold requests: {n0(failed)}."
)

if not PAGE:
    print(f"Load test, {meta.get('date')}, {meta.get('cores')} cores ({meta.get('cpu')}), Linux {meta.get('kernel')}, "
          f"loopback; upstream delay {meta.get('delay')} s; hot figures: medians of {len(reps)} x wrk {meta.get('wrk_d')}.")
    print()
    print(side_by_side())
    print()
    print(details())
    print()
    g = goals()
    if g:
        print(g)
        print()
    h2 = herd_two()
    if h2:
        print(h2)
    print(status)
    sys.exit(0)

# ---- BENCHMARKS.md -------------------------------------------------------------
h2 = herd_two()
g = goals()
print(f"""# Benchmarks

<!-- Generated by `scripts/loadtest --write` (scripts/lib/bench_report.py): edit those, not this file. -->

tower-cache's cached page next to a bare Axum handler and to the other Rust
response caches, all serving the same {meta.get('page_bytes', '?')}-byte page on loopback, measured in
**one run on {meta.get('date')}** (commit `{meta.get('commit')}`). Every figure on this page comes from
that run; its TSVs are in [docs/bench/](docs/bench/).

## Machine

- {meta.get('cores')} cores, {meta.get('cpu')}, {meta.get('memory')}; Linux {meta.get('kernel')}; everything on loopback.
- Load average (1, 5, 15 min): {load_text()}.
- {meta.get('rustc')}; {meta.get('wrk')}; ApacheBench {meta.get('ab')}; {meta.get('valgrind')}; Redis {meta.get('redis')}; memcached {meta.get('memcached')}.

## Command

```sh
{meta.get('command')}
```

`scripts/loadtest` builds the demo, the bare handler and the peers in release
mode, starts Redis and memcached with `./scripts/test --serve`, and the
bundled upstream (`httpbin --serve-upstream`, whose `/delay/{meta.get('delay')}` every cache
calls on a miss and which counts its calls). Then, for every system:

- **cold**: a fresh process, `ab -n 100 -c 10` (the tutorial's test): requests/s and upstream calls;
- **hot**: `wrk -t2 -c10` and `wrk -t2 -c50`, {meta.get('wrk_d')} each, {len(reps)} repetition(s); in each
  repetition every system runs in turn, the rotation starting one system later each time; medians, and
  the ratio to the bare handler as the median of the per-repetition ratios (same repetition, same
  concurrency); a system whose page would expire (TTL {meta.get('ttl')} s) during its next run is
  restarted and warmed up first, so the hot phase sees hits only;
- **herd**: 50 requests written at the same instant (`scripts/herd.py`) against a fresh process: how
  many reach the upstream;
- **instructions per request**: the server under callgrind with one tokio worker; after 10 warm-up
  requests its counters are zeroed, {meta.get('cg_n')} sequential hits are sent on one keep-alive connection,
  and the counters dumped: the dump's total / {meta.get('cg_n')}.

## Side by side

{side_by_side()}

{status}

![requests/s per system at c10 and c50](docs/bench-rps.png)

![p99 latency per system at c10 and c50](docs/bench-p99.png)

![instructions per request per system](docs/bench-instructions.png)

## Details: cold, p50, spread, herd

{details()}
""")
if h2:
    print(h2)
    print()
if g:
    print("## Against the goals of issue 16\n")
    print(g)
    print()
print(f"""## Noise: how to read these numbers

{noise()}

## The systems

{systems_text()}""")
