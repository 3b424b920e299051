"""One-time reference for test_clip_vitl14 (BioCLIP 2 = open_clip ViT-L/14): open_clip 2.32's
image and text embeddings with the deterministic random weights of gen_vitl14_weights.py.
Not run by the tests (torch and open_clip are not CI dependencies); its output is committed:
  PYTHONPATH=/work/pyref python3 tests/parity/gen_vitl14_ref.py ../shared/fixtures \
      tests/parity/vitl14_seed1_outputs.safetensors
open_clip builds CLIP from the folder's open_clip_config.json; its strict load_state_dict
refuses the training-only `visual.continual_proj`, so the model open_clip computes is the one
without it (`visual.proj` projects the image features), which is what clade must compute
while naming the unused key. Images: the first N_IMAGES of the fixtures' preprocess.safetensors
pixel_values; texts: all of text_tokens.safetensors."""
import json, os, sys, tempfile

import numpy as np
import torch
import open_clip

HERE = os.path.dirname(os.path.abspath(__file__))
N_IMAGES = 3
SEED = 1

fixtures, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(fixtures, "tools"))
sys.path.insert(0, HERE)
import st  # noqa: E402
import gen_vitl14_weights as gw  # noqa: E402

torch.set_grad_enabled(False)
hub = gw.config()
w = gw.weights(SEED)
with tempfile.TemporaryDirectory() as d:  # the folder's model_cfg, as open_clip's hf-hub loader reads it
    with open(os.path.join(d, "bioclip2-random.json"), "w") as f:
        json.dump(hub["model_cfg"], f)
    open_clip.add_model_config(d)
    model = open_clip.create_model("bioclip2-random", pretrained=None)
sd = {k: torch.from_numpy(v.astype(np.float32)) for k, v in w.items()}
try:
    model.load_state_dict(sd, strict=True)
    raise SystemExit("open_clip accepted visual.continual_proj: the premise of this test is wrong")
except RuntimeError as err:
    assert "continual_proj" in str(err), err
unused = sd.pop("visual.continual_proj")
model.load_state_dict(sd, strict=True)
model.eval()
assert model.visual.proj.shape == unused.shape

pp = st.load(os.path.join(fixtures, "preprocess.safetensors"))
tt = st.load(os.path.join(fixtures, "text_tokens.safetensors"))
pixels = torch.from_numpy(np.array(pp["pixel_values"][:N_IMAGES]))
ids = torch.from_numpy(np.array(tt["input_ids"]).astype(np.int64))
img = model.encode_image(pixels).numpy().astype(np.float32)
txt = model.encode_text(ids).numpy().astype(np.float32)
# the same image features through the unused projector: the test checks clade is not this
feats = model.visual
x = feats.conv1(pixels).reshape(pixels.shape[0], feats.conv1.out_channels, -1).permute(0, 2, 1)
x = torch.cat([feats.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1]), x], dim=1)
x = feats.ln_pre(x + feats.positional_embedding)
x = feats.transformer(x)
pooled = feats.ln_post(x[:, 0])
assert torch.allclose(pooled @ feats.proj, torch.from_numpy(img), rtol=1e-4, atol=1e-5)
img_cont = (pooled @ unused).numpy().astype(np.float32)
st.save(out, {"image_embeddings": img, "text_embeddings": txt, "image_embeddings_continual_proj": img_cont,
              "logit_scale": np.array([model.logit_scale.item()], np.float32)},
        {"seed": SEED, "n_images": N_IMAGES, "open_clip": open_clip.__version__, "torch": torch.__version__,
         "weights": "tests/parity/gen_vitl14_weights.py"})
print("image", img.shape, "text", txt.shape, "written to", out)
