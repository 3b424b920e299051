"""The ties of biobench's report, shared by the bootstrap references (bootstrap_reference.py,
retrieval_bootstrap_reference.py): per group of entries scored on the same examples, best =
the largest mean resample (the first on equality), p_j = the share of resamples with
s_j >= s_best, tied = not rejected by statsmodels' multipletests(p, alpha=0.05, method="holm")."""
import numpy as np
from statsmodels.stats.multitest import multipletests


def ties(groups, ident, B):
    """groups: {key: [(eval, resamples)]} (key's last item names the metric); ident: {eval:
    the examples it was scored on}. Returns {(eval, key[-1]): "best" | "tied" | "worse"}."""
    out = {}
    for key, entries in groups.items():
        if any(ident[ev] != ident[entries[0][0]] for ev, _ in entries):
            continue
        s = np.array([acc for _, acc in entries])  # (m, B)
        means = [sum(a) / B for _, a in entries]
        best = max(range(len(entries)), key=lambda j: (means[j], -j))
        p = [float(np.mean(s[j] >= s[best])) for j in range(len(entries))]
        reject = multipletests(p, alpha=0.05, method="holm")[0]
        for j, (ev, _) in enumerate(entries):
            out[(ev, key[-1])] = "best" if j == best else ("worse" if reject[j] else "tied")
    return out
