"""CLIBD's retrieval accuracy of a list of queries, shared by the references
(retrieval_bootstrap_reference.py, compare_retrieval_reference.py): queries are
(label, retrieved keys' labels best first); micro_top{k} = the share whose label is among the
first k; macro_top{k} = that share per label, summed in order of first appearance, over the
number of labels present."""
from collections import OrderedDict


def score(queries, kind, k):
    if kind == "micro":
        return sum(1 for y, got in queries if y in got[:k]) / len(queries)
    per = OrderedDict()
    for y, got in queries:
        c = per.setdefault(y, [0, 0])
        c[0] += 1
        c[1] += 1 if y in got[:k] else 0
    s = 0.0
    for n, h in per.values():
        s = s + h / n
    return s / len(per)
