#!/usr/bin/python3
"""compare.py WANT.csv GOT.csv [REL]: the same rows in the same order, every cell but score equal,
scores within relative error REL (default 1e-4). Plain csv module: no numpy needed."""
import csv, sys

want = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
got = list(csv.reader(open(sys.argv[2], encoding="utf-8")))
rel = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
bad = []
if want[0] != got[0]:
    bad.append(f"header {got[0]} != {want[0]}")
elif len(want) != len(got):
    bad.append(f"{len(got) - 1} rows, want {len(want) - 1}")
else:
    s = want[0].index("score")
    worst = 0.0
    for i, (w, g) in enumerate(zip(want[1:], got[1:]), 2):
        if w[:s] + w[s + 1:] != g[:s] + g[s + 1:]:
            bad.append(f"line {i}: {g} != {w}")
            continue
        err = abs(float(g[s]) - float(w[s])) / max(abs(float(w[s])), 1e-30)
        worst = max(worst, err)
        if err > rel:
            bad.append(f"line {i}: score {g[s]} vs {w[s]} (rel err {err:.2e} > {rel})")
for b in bad[:5]:
    print(f"{sys.argv[2]}: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
