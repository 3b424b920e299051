"""BioCLIP's few-shot evaluation (SimpleShot with CL2N, Python's random for the supports),
reimplemented in numpy as the reference clade's Lua protocol must match to the last digit.

Usage: fewshot_reference.py OUTDIR SEED
Writes OUTDIR/features.safetensors (image_embeddings [N,D]), OUTDIR/metadata.csv, and
OUTDIR/expected.csv (shots,trial,top1 with repr() precision) for shots 1 then 5, 5 trials.
"""
import os, random, sys
import numpy as np

sys.path.insert(0, os.path.join(os.environ["CLADE_FIXTURES"], "tools"))
import st  # the fixtures' safetensors writer

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
C, D = 7, 24
sizes = [int(x) for x in rng.integers(6, 14, size=C)]
centers = rng.standard_normal((C, D)).astype(np.float32)
labels = np.concatenate([[c] * n for c, n in enumerate(sizes)])
rng.shuffle(labels)  # classes interleave in the manifest
feats = (centers[labels] * 0.8 + rng.standard_normal((len(labels), D)).astype(np.float32)).astype(np.float32)
feats *= rng.uniform(0.5, 3.0, size=(len(labels), 1)).astype(np.float32)  # raw, unnormalised
st.save(os.path.join(out, "features.safetensors"), {"image_embeddings": feats})
names = [f"Genus{c} species{c}" for c in range(C)]
with open(os.path.join(out, "metadata.csv"), "w") as f:
    f.write("filepath,class\n")
    for i, y in enumerate(labels):
        f.write(f"img{i:04d}.jpg,{names[y]}\n")

# classes in order of first appearance, each list in manifest order
order = []
for y in labels:
    if y not in order:
        order.append(y)
lists = {c: [i for i in range(len(labels)) if labels[i] == c] for c in order}
x = feats.astype(np.float64)
x /= np.linalg.norm(x, axis=1, keepdims=True)
rows = []
for k in (1, 5):
    for trial in range(5):
        random.seed(trial)
        for c in order:
            random.shuffle(lists[c])  # in place, cumulative across trials and shot counts
        sup = [(i, c) for c in order for i in lists[c][:k]]
        qry = [(i, c) for c in order for i in lists[c][k:]]
        S = x[[i for i, _ in sup]]
        Q = x[[i for i, _ in qry]]
        mu = S.mean(axis=0)
        S = S - mu
        S /= np.linalg.norm(S, axis=1, keepdims=True)
        Q = Q - mu
        Q /= np.linalg.norm(Q, axis=1, keepdims=True)
        cents = np.stack([S[[j for j, (_, cc) in enumerate(sup) if cc == c]].mean(axis=0) for c in order])
        d = np.linalg.norm(Q[:, None, :] - cents[None, :, :], axis=2)
        pred = [order[j] for j in d.argmin(axis=1)]
        acc = sum(int(p == c) for p, (_, c) in zip(pred, qry)) / len(qry)
        rows.append((k, trial, acc))
with open(os.path.join(out, "expected.csv"), "w") as f:
    for k, t, a in rows:
        f.write(f"{k},{t},{a!r}\n")
    for k in (1, 5):
        accs = np.array([a for kk, _, a in rows if kk == k])
        f.write(f"{k},all,{accs.mean()!r},{accs.std()!r}\n")
