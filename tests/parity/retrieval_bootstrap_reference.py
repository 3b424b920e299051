"""Reference for the confidence intervals and ties of clade's retrieval metrics (CLIBD's micro
and macro top-k accuracy), written from their definitions with Python's random module,
numpy.percentile and statsmodels' Holm, independently of what clade stored per query: each
query's outcome is recomputed here from its retrieved key rows (`clade predictions --format
json`) and the labels of those rows at the cell's rank (the manifest).
Usage: retrieval_bootstrap_reference.py MANIFEST.csv PREDICTIONS.json RESULTS.json RESAMPLES SEED

Resamples (seeded once per cell with random.seed(SEED), drawn in order): n draws randrange(n)
of the cell's n queries (in stored order); for each drawn list, CLIBD's definitions applied to
it as if it were the query set:
  micro_top{k} = share of drawn queries whose label is among their first k retrieved keys' labels;
  macro_top{k} = that share per query label present in the draw, summed in order of first
                 appearance in the draw, divided by the number of labels present. A label no
                 draw picked is absent from that resample: it does not count (CLIBD's macro
                 averages the labels among the queries).
Interval: numpy.percentile(resamples, [2.5, 97.5]). Ties per (dataset, protocol, shots,
query, key, split, rank, metric) over entries scored on the same queries: best = the largest
mean resample; p_j = share of resamples with s_j >= s_best; tied = not rejected by
multipletests(p, alpha=0.05, method="holm")."""
import csv, json, os, random, sys
from collections import OrderedDict

import numpy as np

sys.dont_write_bytecode = True  # nothing written beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bootstrap_ties  # noqa: E402
from clibd_retrieval_score import score  # noqa: E402

rows = list(csv.DictReader(open(sys.argv[1])))
preds, results = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
B, SEED = int(sys.argv[4]), int(sys.argv[5])

cells = OrderedDict()  # eval -> [(label, retrieved labels)] in stored order
ident = {}
for p in preds:
    if p.get("retrieved") is None:
        continue
    label = rows[p["example"]][p["rank"]]
    assert label == p["label"], (p["eval"], p["example"], label, p["label"])
    got = [rows[r][p["rank"]] for r in p["retrieved"]]
    cells.setdefault(p["eval"], []).append((label, got))
    ident.setdefault(p["eval"], []).append(p["example"])


def metric_k(m):
    if m[:6] in ("micro_", "macro_") and m[6:9] == "top" and m[9:].isdigit():
        return m[:5], int(m[9:])
    return None, 0


def resample(queries, kind, k):
    rng = random.Random(SEED)
    n, out = len(queries), []
    for _ in range(B):
        idx = [rng.randrange(n) for _ in range(n)]
        out.append(score([queries[i] for i in idx], kind, k))
    return out


want, groups = {}, OrderedDict()
for r in results:
    kind, k = metric_k(r["metric"])
    if not k or r["eval"] not in cells or r["trial"] != "all":
        continue
    q = cells[r["eval"]]
    point = score(q, kind, k)
    assert abs(point - r["value"]) <= 1e-12, ("the retrieved keys do not give the stored value", r, point)
    acc = resample(q, kind, k)
    lo, hi = np.percentile(acc, [2.5, 97.5])
    want[(r["eval"], r["metric"])] = (float(lo), float(hi))
    key = (r["dataset"], r["protocol"], r["shots"], r["query"], r["key"], r["split"], r["rank"], r["metric"])
    groups.setdefault(key, []).append((r["eval"], acc))

ties = bootstrap_ties.ties(groups, ident, B)

bad = checked = 0
for r in results:
    kind, k = metric_k(r["metric"])
    if not k:
        continue
    w, got = want.get((r["eval"], r["metric"])), r.get("ci")
    if w is None or got is None:
        print("cell %s %s: clade %s, reference %s" % (r["eval"], r["metric"], got, w)); bad += 1
        continue
    checked += 1
    if (got["low"], got["high"]) != w or got["resamples"] != B or got["seed"] != SEED:
        print("cell %s %s: clade [%r, %r], reference [%r, %r]" % (r["eval"], r["metric"], got["low"], got["high"], *w))
        bad += 1
    if r.get("tie") != ties.get((r["eval"], r["metric"])):
        print("cell %s %s: clade tie %s, reference %s" % (r["eval"], r["metric"], r.get("tie"), ties.get((r["eval"], r["metric"]))))
        bad += 1
n_ties = {v: list(ties.values()).count(v) for v in ("best", "tied", "worse")}
wide = sum(1 for lo, hi in want.values() if hi > lo)
print("retrieval bootstrap reference: %d intervals checked (%d of nonzero width), ties %s, %d mismatches"
      % (checked, wide, n_ties, bad))
sys.exit(1 if bad or not checked else 0)
