"""Does open_clip itself load a folder that `clade train` (or a `train` declaration) wrote?
Not a CI test (CI has no torch): run by hand with Debian's torch and open_clip 2.32 on the path,
  PYTHONPATH=/work/pyref /usr/bin/python3 tests/tools/check_openclip_load.py DIR CLADE IMAGE...
open_clip 2.32 has no local-folder loader, so its Hugging Face hub path is used with the two
downloads pointed at DIR: create_model_and_transforms('hf-hub:...') reads DIR's
open_clip_config.json (model_cfg, quick_gelu, preprocess_cfg) and loads
open_clip_model.safetensors with load_checkpoint, strictly, as it would from the hub. Then
open_clip's embeddings of the images (its preprocess_val) and of a few captions (its tokenizer)
must equal `clade embed`'s of the same folder within fp32 rounding, and logit_scale must be the
stored one: the weights, the config and the activation were read as clade meant them."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import open_clip
import open_clip.factory as factory
import torch
from PIL import Image

folder, clade, images = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:]
assert images, "give some images"


def local(model_id, filename=None, **_):
    name = filename or "open_clip_model.safetensors"
    if name.endswith(".bin"):
        name = "open_clip_model.safetensors"
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    return path


factory.download_pretrained_from_hf = local
model, _, preprocess = open_clip.create_model_and_transforms("hf-hub:clade/local")
tokenizer = open_clip.get_tokenizer("hf-hub:clade/local")
model.eval()
cfg = json.load(open(os.path.join(folder, "open_clip_config.json")))
act = type(model.transformer.resblocks[0].mlp.gelu).__name__
print("open_clip %s loaded %s: quick_gelu %s in the config, activation %s" %
      (open_clip.__version__, folder, cfg["model_cfg"].get("quick_gelu", False), act))

texts = ["a photo of Abrix alpina.", "Animalia Arthropoda Insecta Lumoptera Ardelidae Abrix alpina",
         "northern glider", "a photo of a bird."]
with torch.no_grad():
    img = model.encode_image(torch.stack([preprocess(Image.open(p)) for p in images]))
    txt = model.encode_text(tokenizer(texts))
    scale = float(model.logit_scale)

with tempfile.TemporaryDirectory() as t:
    with open(os.path.join(t, "texts.txt"), "w") as f:
        f.write("\n".join(texts) + "\n")
    out = os.path.join(t, "emb.safetensors")
    subprocess.run([clade, "embed", "--model", folder, "--backend", "cpu", "--images", *images, "--texts",
                    os.path.join(t, "texts.txt"), "--out", out], check=True, stderr=subprocess.DEVNULL)
    with open(out, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()


def tensor(name):
    h = hdr[name]
    a, b = h["data_offsets"]
    return np.frombuffer(data[a:b], dtype=np.float32).reshape(h["shape"])


ok = True
for name, ref in (("image_embeddings", img.numpy()), ("text_embeddings", txt.numpy())):
    c = tensor(name)
    err = float(np.abs(c - ref).max() / np.abs(ref).max())
    print("%-17s %s: max|clade - open_clip| / max|open_clip| = %.2e" % (name, list(ref.shape), err))
    ok &= err < 1e-5
stored = float(tensor("logit_scale"))
print("logit_scale: open_clip %.9g, clade %.9g" % (scale, stored))
ok &= scale == np.float32(stored)
print("OK: open_clip loads the folder and computes what clade does" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
