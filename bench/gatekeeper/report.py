#!/usr/bin/env python3
"""Renders bench/gatekeeper/run.sh's measurements (one TSV-ish file) as markdown tables.

Lines: `meta k v k v ...`, `workload NAME WORKERS DESCRIPTION...`,
`hs WORKLOAD SERVER ROUND CPU_US HS_PER_S BUSY TRIES ok|low [LG_BUSY]`, `lat SERVER ROUND P50 P99`,
`ka SERVER ROUND REQ_PER_S CPU_US P99 [BUSY TRIES ok|low LG_BUSY]`, `idle SERVER BYTES FDS OPEN FAILED`.
BUSY is the server's CPU time over its CPU budget for the load's seconds, LG_BUSY the load
generator's own CPU time during the load over those seconds.
The statistic is fixed before the run: the median over rounds, with the interquartile range;
ratios are of medians, with the IQR of the per-round ratios beside them.
"""
import statistics
import sys
from collections import defaultdict


def quart(v):
    v = sorted(v)
    if len(v) == 1:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], statistics.median(v), q[2]


def cell(v, fmt="{:.0f}"):
    if not v:
        return "—"
    lo, m, hi = quart(v)
    return f"{fmt.format(m)} [{fmt.format(lo)}–{fmt.format(hi)}]"


def ratio(num, den):
    """Ratio of medians, and the IQR of the per-round ratios (rounds paired by index)."""
    if not num or not den:
        return "—"
    lo, _, hi = quart([a / b for a, b in zip(num, den)])
    return f"{statistics.median(num) / statistics.median(den):.2f} ({lo:.2f}–{hi:.2f})"


def lg_max(v):
    v = [x for x in v if x is not None]
    return f"{max(v):.2f}" if v else "—"


def busy_min(v):
    v = [x[3] for x in v if x[3] is not None]
    return f"{min(v):.2f}" if v else "—"


def kept(n, g):
    low = [f"{s} round {i + 1}" for s, v in (("nginx", n), ("gatekeeper", g)) for i, x in enumerate(v) if x[4]]
    return "; kept below 95 % after three tries: " + ", ".join(low) if low else ""


def main(path):
    meta, workloads = {}, []
    hs = defaultdict(lambda: defaultdict(dict))  # workload -> server -> round -> (cpu, rate, busy, low)
    lat, ka, idle = defaultdict(list), defaultdict(list), {}
    for line in open(path, encoding="utf-8"):
        f = line.split()
        if not f:
            continue
        if f[0] == "meta":
            meta.update(zip(f[1::2], f[2::2]))
        elif f[0] == "workload":
            workloads.append((f[1], int(f[2]), " ".join(f[3:])))
        elif f[0] == "hs":
            hs[f[1]][f[2]][int(f[3])] = (float(f[4]), float(f[5]), float(f[6]), f[8] == "low",
                                         float(f[9]) if len(f) > 9 else None)
        elif f[0] == "lat":
            lat[f[1]].append((float(f[3]), float(f[4])))
        elif f[0] == "ka":
            ka[f[1]].append((float(f[3]), float(f[4]), float(f[5]), float(f[6]) if len(f) > 8 else None,
                             f[8] == "low" if len(f) > 8 else False, float(f[9]) if len(f) > 9 else None))
        elif f[0] == "idle":
            idle[f[1]] = (int(f[2]), float(f[3]), int(f[4]), int(f[5]))

    def series(w, s, i):
        rounds = hs[w][s]
        return [rounds[r][i] for r in sorted(rounds)]

    budget = meta.get("server_cpu", "1")
    if hs:
        print(f"""
Full handshakes (no resumption), {meta['rounds']} rounds × {meta['secs']} s per phase, server
orders alternating. Server CPU µs per accepted handshake, median [IQR]; ratio = nginx's median /
the gatekeeper's (> 1: the gatekeeper spends less CPU per handshake), with the IQR of the
per-round ratios. "No cache": the gatekeeper with `verdict_cache_entries = 0`. Defaults as
shipped: nginx sends {meta['nst_ngx']} NewSessionTickets per TLS 1.3 handshake, the gatekeeper
{meta['nst_gk']}; everywhere else neither sends any (checked before the run). Each server had a
CPU budget of {budget} CPU per worker on a CPU of its own; "server busy" is its CPU time over that
budget (a phase below 0.95 was run again), "load generator busy" its CPU time during the load
over the load's seconds (below 1.00 in the pinned rows: it had CPU to spare, so it was not the
bottleneck).

| workload | nginx µs/hs | gatekeeper µs/hs | ratio | gatekeeper no cache µs/hs | ratio, no cache | hs/s nginx / gk / gk no cache (medians) | server busy, min (nginx / gk / no cache) | load generator busy, max |
|---|---|---|---|---|---|---|---|---|""")
        low = []
        for name, nw, desc in workloads:
            n, g, g0 = series(name, "ngx", 0), series(name, "gk", 0), series(name, "gk0", 0)
            rates = " / ".join(f"{statistics.median(series(name, s, 1)):.0f}" if series(name, s, 1) else "—"
                               for s in ("ngx", "gk", "gk0"))
            busy = " / ".join(f"{min(series(name, s, 2)):.2f}" if series(name, s, 2) else "—" for s in ("ngx", "gk", "gk0"))
            for s in ("ngx", "gk", "gk0"):
                low += [f"{name}/{s} round {r}" for r, v in hs[name][s].items() if v[3]]
            print(f"| {desc} | {cell(n)} | {cell(g)} | {ratio(n, g)} | {cell(g0)} | {ratio(n, g0) if g0 else '—'} "
                  f"| {rates} | {busy} | {lg_max([v[4] for s in ('ngx', 'gk', 'gk0') for v in hs[name][s].values()])} |")
        if meta.get("pinned") != "1":
            print("\nThe servers were not pinned (fewer than two CPUs): the 95 % busy rule was not applied.")
        if low:
            print("\nKept although the server was below 95 % busy after three tries: " + ", ".join(low))
        if budget == "1":
            print("\nTwo-worker rows: both servers and the load generator share the CPUs (not pinned), so"
                  " the 95 % rule does not apply there; CPU per handshake is still the server's own.")
        else:
            print(f"\nTwo-worker rows: not pinned; each server's budget is {2 * float(budget):g} CPU across"
                  f" both CPUs, which leaves the load generator {2 - 2 * float(budget):g} CPU.")

    if lat:
        print(f"""
Handshake latency at a fixed offered load of {meta['rate']}/s (a quarter of nginx's capacity on one
whole CPU: 1 s over its median CPU time per handshake on the first workload; no CPU budget here;
open loop: from each connection's scheduled start to the server's acceptance), µs, median [IQR]
over rounds:

| | nginx | gatekeeper |
|---|---|---|
| p50 | {cell([x[0] for x in lat['ngx']])} | {cell([x[0] for x in lat['gk']])} |
| p99 | {cell([x[1] for x in lat['ngx']])} | {cell([x[1] for x in lat['gk']])} |""")

    if ka:
        n, g = ka["ngx"], ka["gk"]
        print(f"""
Keep-alive GET requests through to the upstream, 16 connections, pinned, {meta['rounds']} rounds,
the same CPU budget and 95 % rule as above (server busy, min: nginx {busy_min(n)}, gatekeeper
{busy_min(g)}; load generator busy, max: {lg_max([x[5] for x in n + g])}{kept(n, g)}):

| | nginx | gatekeeper | ratio |
|---|---|---|---|
| req/s | {cell([x[0] for x in n])} | {cell([x[0] for x in g])} | {ratio([x[0] for x in g], [x[0] for x in n])} |
| server CPU µs per request | {cell([x[1] for x in n], '{:.1f}')} | {cell([x[1] for x in g], '{:.1f}')} | {ratio([x[1] for x in n], [x[1] for x in g])} |
| request latency p99, µs | {cell([x[2] for x in n])} | {cell([x[2] for x in g])} | |""")

    if idle:
        n, g = idle["ngx"], idle["gk"]
        print(f"""
Idle mTLS connections after one request each, {meta['idle']} opened on the fresh processes
(held: nginx {n[2]}, failed {n[3]}; gatekeeper {g[2]}, failed {g[3]}):

| | nginx | gatekeeper | ratio |
|---|---|---|---|
| RSS per idle connection, bytes | {n[0]} | {g[0]} | {g[0] / n[0]:.2f} |
| server file descriptors per idle connection | {n[1]:.2f} | {g[1]:.2f} | |""")


if __name__ == "__main__":
    main(sys.argv[1])
