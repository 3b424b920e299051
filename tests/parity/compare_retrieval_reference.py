"""Reference for `clade compare` on retrieval cells, written from the definitions and
independently of what clade stored per query: each query's outcome is recomputed from its
retrieved key rows (`clade predictions --format json`) and the labels of those rows at the
cell's rank (the manifest).
Usage: compare_retrieval_reference.py MANIFEST.csv PREDICTIONS.json COMPARE.json RESAMPLES SEED

Pairs: a base query and a head query with the same file path, the k-th of a path with the k-th
(by example), in the order of (file path as bytes, example). micro_top{k} (and top1): exact
McNemar on "the query's label among the first k retrieved keys' labels": b = right in base
only, c = right in head only, p = min(1, 2 P[X <= min(b, c)]), X ~ Bin(b + c, 1/2).
macro_top{k}: paired bootstrap: random.Random(SEED), B times n draws randrange(n) of the n
pairs, both sides scored on the same drawn pairs as CLIBD's macro (per query label present in
the draw, the share right, summed in order of first appearance, over the labels present);
d = head - base; p = min(1, 2 (min(#{d <= 0}, #{d >= 0}) + 1) / (B + 1))."""
import csv, json, os, random, sys
from math import comb

sys.dont_write_bytecode = True  # nothing written beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clibd_retrieval_score import score  # noqa: E402

rows = list(csv.DictReader(open(sys.argv[1])))
preds, cmp = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
B, SEED = int(sys.argv[4]), int(sys.argv[5])
AXES = ("model", "query", "key", "split", "rank")

cells = {}  # (run, axes...) -> [(filepath, example, label, retrieved labels)]
for p in preds:
    if p.get("retrieved") is None:
        continue
    label = rows[p["example"]][p["rank"]]
    got = [rows[r][p["rank"]] for r in p["retrieved"]]
    cells.setdefault((p["run"],) + tuple(p[a] for a in AXES), []).append((p["filepath"], p["example"], label, got))


def pairs(base, head):
    def keyed(q):
        out, seen = {}, {}
        for fp, ex, y, got in sorted(q, key=lambda t: (t[0].encode(), t[1])):
            n = seen.get(fp, 0)
            seen[fp] = n + 1
            out[(fp, n)] = (y, got)
        return out
    b, h = keyed(base), keyed(head)
    ks = sorted(set(b) & set(h), key=lambda t: (t[0].encode(), t[1]))
    return [(b[x], h[x]) for x in ks]


def kind_k(m):
    if m.startswith("top"):
        return "micro", int(m[3:])
    return m[:5], int(m[9:])


tested = regressed = 0
for r in cmp:
    if r["verdict"] in ("added", "removed") or not r["query"]:
        continue
    ax = tuple(r[a] for a in AXES)
    pr = pairs(cells[(r["base_run"],) + ax], cells[(r["head_run"],) + ax])
    kind, k = kind_k(r["metric"])
    assert r["n_pairs"] == len(pr) > 0, (r, len(pr))
    if kind == "micro":
        b = sum(1 for (y, g), (y2, g2) in pr if y in g[:k] and y2 not in g2[:k])
        c = sum(1 for (y, g), (y2, g2) in pr if y not in g[:k] and y2 in g2[:k])
        n = b + c
        p = 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n)
        assert r["test"] == "mcnemar", r
        assert (r["base_only_correct"], r["head_only_correct"]) == (b, c), (r, b, c)
    else:
        rng = random.Random(SEED)
        n, le, ge = len(pr), 0, 0
        for _ in range(B):
            idx = [rng.randrange(n) for _ in range(n)]
            d = score([pr[i][1] for i in idx], "macro", k) - score([pr[i][0] for i in idx], "macro", k)
            le += d <= 1e-9
            ge += d >= -1e-9
        p = min(1.0, 2 * (min(le, ge) + 1) / (B + 1))
        assert r["test"] == "paired_bootstrap", r
    assert abs(r["p_value"] - p) <= 1e-12 * max(1.0, p), (r, p)
    tested += 1
    regressed += r["verdict"] == "regressed"
print(f"{tested} retrieval cells tested as the reference does, {regressed} regressed")
assert tested > 0
