"""clade's linear_probe against scikit-learn's ridge classifier, on the same features and the
same support sets: BioCLIP's sampler (random.seed(trial), then each class's list shuffled in
place, cumulative across trials and shot counts) and clade's "fresh" one (each trial from
manifest order, random.seed(seed + trial)). The classifier is sklearn's RidgeClassifier
(targets in {-1, +1}, its own centring by fit_intercept) on L2-normalised features.

Usage: linear_probe_reference.py OUTDIR SEED LAMBDA
Writes OUTDIR/features.safetensors (image_embeddings [N,D]), OUTDIR/metadata.csv, and
OUTDIR/expected.csv: sampler,shots,trial,filepath,prediction per query, then
sampler,shots,trial,,top1 (repr() precision) per trial.
"""
import os, random, sys
import numpy as np
from sklearn.linear_model import RidgeClassifier

sys.path.insert(0, os.path.join(os.environ["CLADE_FIXTURES"], "tools"))
import st  # the fixtures' safetensors writer

out, seed, lam = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = np.random.default_rng(100 + seed)
n_cls, dim = 6, 32
counts = rng.integers(7, 12, size=n_cls)
y = rng.permutation(np.repeat(np.arange(n_cls), counts))  # classes interleave in the manifest
means = rng.standard_normal((n_cls, dim))
feats = (0.6 * means[y] + rng.standard_normal((y.size, dim))).astype(np.float32)
st.save(os.path.join(out, "features.safetensors"), {"image_embeddings": feats})
names = ["Taxon%c probus" % (ord("A") + c) for c in range(n_cls)]
paths = ["x/%03d.jpg" % i for i in range(y.size)]
with open(os.path.join(out, "metadata.csv"), "w") as f:
    f.write("filepath,class\n")
    f.writelines("%s,%s\n" % (p, names[c]) for p, c in zip(paths, y))

first_seen = list(dict.fromkeys(y.tolist()))
x = feats.astype(np.float64)
x /= np.linalg.norm(x, axis=1, keepdims=True)


def trials_of(sampler):
    kept = {c: [i for i in range(y.size) if y[i] == c] for c in first_seen}
    for k in (1, 4):
        for t in range(4):
            if sampler == "bioclip":
                random.seed(t)
                lists = kept
            else:
                random.seed(seed + t)
                lists = {c: [i for i in range(y.size) if y[i] == c] for c in first_seen}
            for c in first_seen:
                random.shuffle(lists[c])
            sup = [i for c in first_seen for i in lists[c][:k]]
            qry = [i for c in first_seen for i in lists[c][k:]]
            yield k, t, sup, qry


with open(os.path.join(out, "expected.csv"), "w") as f:
    for sampler in ("bioclip", "fresh"):
        for k, t, sup, qry in trials_of(sampler):
            clf = RidgeClassifier(alpha=lam, fit_intercept=True, solver="cholesky").fit(x[sup], y[sup])
            pred = clf.predict(x[qry])
            for i, p in zip(qry, pred):
                f.write("%s,%d,%d,%s,%s\n" % (sampler, k, t, paths[i], names[p]))
            f.write("%s,%d,%d,,%r\n" % (sampler, k, t, float(np.mean(pred == y[qry]))))
