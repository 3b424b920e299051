#!/usr/bin/python3
"""Reference outputs of pybioclip 2.1.6's own code for tests/parity/test_predict_pybioclip.sh.
Run once (not at test time) with Debian's torch/torchvision/pandas and pybioclip + open_clip
2.32 (no deps) on the path:
    cd ../shared/fixtures && PYTHONPATH=/work/pyref python3 $SRC/tests/parity/predict/gen_pybioclip_ref.py
The model is the fixtures' tiny-hub (open_clip weights, QuickGELU) with the synthetic label set
of make_label_set.py in its embeddings/ folder. pybioclip is pointed at them by patching only its
downloads (the hub model and the TreeOfLife data files) and torch.compile (absent from torch
1.13); the model string stays hf-hub:imageomics/bioclip so pybioclip picks its own transform for
BioCLIP (preprocess_img, "squash"). Each case writes pybioclip's CSV through its own
commands.write_results, so the files are what `bioclip predict` prints."""
import json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.getcwd()
REF = os.path.join(HERE, "ref")
IMAGES = sorted("images/" + f for f in os.listdir(os.path.join(FIX, "images")) if f.endswith((".jpg", ".png")))

model_dir = tempfile.mkdtemp(prefix="clade_predict_ref_")
for f in os.listdir(os.path.join(FIX, "tiny-hub")):
    os.symlink(os.path.join(FIX, "tiny-hub", f), os.path.join(model_dir, f))
subprocess.check_call([sys.executable, os.path.join(HERE, "make_label_set.py"), model_dir])

import torch  # noqa: E402
torch.compile = lambda m, *a, **k: m
import open_clip as oc  # noqa: E402
from open_clip import factory  # noqa: E402
cfg = json.load(open(os.path.join(FIX, "tiny-hub", "open_clip_config.json")))["model_cfg"]
factory._MODEL_CONFIGS["clade-tiny"] = cfg
_create, _tok = oc.create_model_from_pretrained, oc.get_tokenizer
oc.list_pretrained_tags_by_model = lambda name: []
oc.create_model_from_pretrained = lambda model_str, pretrained=None, device="cpu", return_transform=True: _create(
    "clade-tiny", pretrained=os.path.join(model_dir, "open_clip_pytorch_model.bin"), device=device,
    return_transform=return_transform)
oc.get_tokenizer = lambda model_name="", **kw: _tok("clade-tiny")
sys.modules.setdefault("prettytable", __import__("types").ModuleType("prettytable"))  # only --format table uses it
import bioclip.predict as bp  # noqa: E402
from bioclip import commands  # noqa: E402
from bioclip._constants import Rank  # noqa: E402
bp.BaseClassifier.get_cached_datafile = lambda self, filename: os.path.join(model_dir, filename)
MODEL = "hf-hub:imageomics/bioclip"

os.makedirs(REF, exist_ok=True)
cases = []


def save(name, preds, args):
    commands.write_results(preds, "csv", os.path.join(REF, name + ".csv"))
    cases.append({"name": name, "args": args})


tol = bp.TreeOfLifeClassifier(model_str=MODEL)
assert tol.preprocess is bp.preprocess_img  # pybioclip's squash path
for rank in Rank:
    save("tol_" + rank.get_label(), tol.predict(IMAGES, rank, k=5), ["--rank", rank.get_label()])
save("tol_kingdom_k9", tol.predict(IMAGES, Rank.KINGDOM, k=9), ["--rank", "kingdom", "--k", "9"])
save("tol_genus_k12", tol.predict(IMAGES, Rank.GENUS, k=12), ["--rank", "genus", "--k", "12"])

# subsets: genera (Morus is in two kingdoms), a class, species names (one with an empty epithet)
names = json.load(open(os.path.join(model_dir, "embeddings", "txt_emb_species.json")))
genera = ["Morus", names[40][0][5], names[700][0][5]]
classes = [names[1500][0][2]]
species = [names[5][0][5] + " " + names[5][0][6], names[0][0][5] + " " + names[0][0][6], "Morus alba"]
subsets = {"genus": genera, "class": classes, "species": species}
for col, vals in subsets.items():
    path = os.path.join(REF, f"subset_{col}.csv")
    with open(path, "w") as f:
        f.write(col + "\n" + "".join(v + "\n" for v in vals))
    for rank in (Rank.SPECIES, Rank.GENUS, Rank.FAMILY):
        c = bp.TreeOfLifeClassifier(model_str=MODEL)
        c.apply_filter(c.create_taxa_filter_from_csv(path))
        save(f"subset_{col}_{rank.get_label()}", c.predict(IMAGES, rank, k=5),
             ["--subset", f"subset_{col}.csv", "--rank", rank.get_label()])

# --cls is split on commas (a file's lines are joined with commas first), so no label holds one
labels = ["cat", "raccoon", "human", "palette", "Morus alba", "a bird maybe"]
cl = bp.CustomLabelsClassifier(cls_ary=labels, model_str=MODEL)
save("cls_all", cl.predict(IMAGES), ["--cls", ",".join(labels)])
save("cls_k2", cl.predict(IMAGES, k=2), ["--cls", ",".join(labels), "--k", "2"])
with open(os.path.join(REF, "labels.txt"), "w") as f:
    f.write("".join(" " + v + " \n" for v in labels[::-1]))  # stripped, as pybioclip strips
cl = bp.CustomLabelsClassifier(cls_ary=commands.create_classes_str(os.path.join(REF, "labels.txt")).split(","),
                               model_str=MODEL)
save("cls_file_k3", cl.predict(IMAGES, k=3), ["--cls", "labels.txt", "--k", "3"])
bins = {"cat": "mammal", "raccoon": "mammal", "human": "mammal", "palette": "other", "Morus alba": "plant",
        "a bird, maybe": "bird"}
with open(os.path.join(REF, "bins.csv"), "w") as f:
    f.write("class,bin\n" + "".join(f'"{k}",{v}\n' for k, v in bins.items()))
bc = bp.CustomLabelsBinningClassifier(cls_to_bin=commands.parse_bins_csv(os.path.join(REF, "bins.csv")),
                                      model_str=MODEL)
save("bins_all", bc.predict(IMAGES), ["--bins", "bins.csv"])
save("bins_k2", bc.predict(IMAGES, k=2), ["--bins", "bins.csv", "--k", "2"])

# the squash transform itself (pybioclip's preprocess_img after convert("RGB")): every 97th value
# of each image's [3, 224, 224] tensor, and the whole tensor's sum and sum of squares
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
pix = np.stack([bp.preprocess_img(Image.open(os.path.join(FIX, p)).convert("RGB")).numpy() for p in IMAGES])
np.save(os.path.join(REF, "squash_every97.npy"), pix.reshape(len(IMAGES), -1)[:, ::97].copy())
np.save(os.path.join(REF, "squash_moments.npy"),
        np.stack([pix.reshape(len(IMAGES), -1).astype(np.float64).sum(1),
                  (pix.reshape(len(IMAGES), -1).astype(np.float64) ** 2).sum(1)], axis=1))

with open(os.path.join(REF, "cases.json"), "w") as f:
    json.dump({"images": IMAGES, "generator": "pybioclip 2.1.6, open_clip 2.32.0, torch " + torch.__version__,
               "cases": cases}, f, indent=1)
print(f"{len(cases)} cases in {REF}", file=sys.stderr)
