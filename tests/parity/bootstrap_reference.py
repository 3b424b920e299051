"""Reference for clade's confidence intervals and ties (clade results --ci bootstrap), written
from their definitions with Python's own random module, numpy.percentile and statsmodels' Holm
(biobench's report method): reads `clade predictions --format json` and `clade results --format
json` of one run and checks every interval and tie clade printed, exactly.
Usage: bootstrap_reference.py PREDICTIONS.json RESULTS.json RESAMPLES SEED
Resamples (seeded once with random.seed(SEED), drawn in order, the same for every cell):
  one trial: n draws randrange(n) of its examples; the accuracy of the draw;
  T trials:  T draws randrange(T) of trials, then each drawn trial's n_t draws randrange(n_t);
             the mean of the drawn trials' accuracies.
Outcomes: top1 = the prediction's `correct`; topK = its `hit` (the true label's rank) <= K.
Interval: numpy.percentile(resamples, [2.5, 97.5]). Ties per (dataset, protocol, shots, metric):
best = the largest mean resampled accuracy; p_j = share of resamples with s_j >= s_best;
tied = not rejected by multipletests(p, alpha=0.05, method="holm")."""
import json, os, random, sys
from collections import OrderedDict

import numpy as np

sys.dont_write_bytecode = True  # nothing written beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bootstrap_ties  # noqa: E402

preds, results = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
B, SEED = int(sys.argv[3]), int(sys.argv[4])


def resample(trials):
    rng = random.Random(SEED)
    T, out = len(trials), []
    for _ in range(B):
        picks = [rng.randrange(T) for _ in range(T)] if T > 1 else [0]
        accs = []
        for t in picks:
            x = trials[t]
            accs.append(sum(x[rng.randrange(len(x))] for _ in range(len(x))) / len(x))
        out.append(sum(accs) / T)
    return out


def point(trials):
    return sum(sum(x) / len(x) for x in trials) / len(trials)


# predictions per evaluation: {trial: [(correct, hit)...]} in stored order, and the examples' identity
outcomes, ident = OrderedDict(), {}
for p in preds:
    if p.get("retrieved") is not None:
        continue
    t = -1 if p["trial"] == "all" else p["trial"]
    outcomes.setdefault(p["eval"], OrderedDict()).setdefault(t, []).append((p["correct"], p["hit"]))
    ident.setdefault(p["eval"], []).append((t, p["example"]))


def topk(k):
    return int(k[3:]) if k.startswith("top") and k[3:].isdigit() and int(k[3:]) >= 1 else 0


def outcome(c, h, k):
    return (1 if c else 0) if k == 1 else (1 if h is not None and 1 <= h <= k else 0)


cells, groups, checked = {}, OrderedDict(), 0
for r in results:
    ev, trial, k = r["eval"], r["trial"], topk(r["metric"])
    if not k or r["value"] is None or ev not in outcomes:
        continue
    by_trial = outcomes[ev]
    chosen = list(by_trial.values()) if trial == "all" else [by_trial.get(trial, [])]
    trials = [[outcome(c, h, k) for c, h in x] for x in chosen]
    if not trials[0] or abs(point(trials) - r["value"]) > 1e-9:
        continue
    acc = resample(trials)
    lo, hi = np.percentile(acc, [2.5, 97.5])
    cells[(ev, trial, r["metric"])] = (float(lo), float(hi))
    if trial == "all":
        key = (r["dataset"], r["protocol"], r["shots"], r["query"], r["key"], r["split"], r["rank"], k)
        groups.setdefault(key, []).append((ev, acc))

ties = bootstrap_ties.ties(groups, ident, B)

bad = 0
for r in results:
    k = (r["eval"], r["trial"], r["metric"])
    want = cells.get(k)
    got = r.get("ci")
    if (want is None) != (got is None):
        print("cell %s %s: clade %s, reference %s" % (k, r["metric"], got, want)); bad += 1
        continue
    if want is None:
        continue
    checked += 1
    if (got["low"], got["high"]) != want or got["resamples"] != B or got["seed"] != SEED:
        print("cell %s: clade [%r, %r], reference [%r, %r]" % (k, got["low"], got["high"], *want)); bad += 1
    want_tie = ties.get((r["eval"], topk(r["metric"])))
    if r["trial"] == "all" and r.get("tie") != want_tie:
        print("cell %s: clade tie %s, reference %s" % (k, r.get("tie"), want_tie)); bad += 1
n_ties = {v: list(ties.values()).count(v) for v in ("best", "tied", "worse")}
metrics = sorted({m for _, _, m in cells})
print("bootstrap reference: %d intervals checked (%s), ties %s, %d mismatches" % (checked, " ".join(metrics), n_ties, bad))
sys.exit(1 if bad or not checked else 0)
