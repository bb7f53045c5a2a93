#!/usr/bin/env python3
"""Summarise one sipp UAC step of Benchmarks/calls.sh. Reads, in the step folder, the
-trace_stat CSV (its last row) and the -trace_rtt CSV of uac-call.xml, and prints

  created ok failed retransmissions achieved_per_s setup_p50_ms setup_p99_ms

achieved: calls completed per second, from the end times of the calls (rtd 2, the 200
for BYE; ms since sipp started): k / t_k for the k = 99 % earliest-ending call, so one
late straggler (a lost datagram retransmitted after 500 ms) does not decide it.
setup p50/p99: nearest-rank percentiles of INVITE sent -> 200 received (rtd 1; sipp's
clock, 1 ms resolution). -1 when there is no sample."""
import csv, glob, math, sys

d = sys.argv[1]
created = ok = failed = retrans = 0
stat = sorted(glob.glob(f"{d}/*_.csv"))
if stat:
    rows = [r for r in csv.reader(open(stat[0]), delimiter=";") if r]
    if len(rows) > 1:
        h = dict(zip(rows[0], rows[-1]))
        num = lambda k: int(float(h.get(k, 0) or 0))
        created, ok, failed = num("TotalCallCreated"), num("SuccessfulCall(C)"), num("FailedCall(C)")
        retrans = num("Retransmissions(C)")
setup, ends = [], []
for f in glob.glob(f"{d}/*_rtt.csv"):
    with open(f) as fh:
        next(fh, None)
        for line in fh:
            p = line.strip().split(";")
            if len(p) < 3:
                continue
            try:
                t, v = float(p[0]), float(p[1])
            except ValueError:
                continue
            if p[2] == "1":
                setup.append(v)
            elif p[2] == "2":
                ends.append(t)
setup.sort()
ends.sort()


def pct(q):
    if not setup:
        return -1
    return setup[min(len(setup) - 1, max(0, math.ceil(q * len(setup)) - 1))]


achieved = 0.0
if ends:
    k = max(1, math.floor(0.99 * len(ends)))
    t = ends[k - 1] / 1000.0
    achieved = k / t if t > 0 else 0.0
print(created, ok, failed, retrans, f"{achieved:.0f}", f"{pct(0.50):g}", f"{pct(0.99):g}")
