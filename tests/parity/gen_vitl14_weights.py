"""A BioCLIP 2-shaped open_clip hub folder with deterministic random weights (numpy only: the
test runs it). ViT-L/14 weights come from the fixtures' gen_vitb16.make (numpy PCG64(seed),
keys in sorted order, scaled by its rules) for the config in vitl14_config.json; then a
training-only second visual projector `visual.continual_proj` [1024, 768], drawn from
PCG64(seed + 1), which open_clip's CLIP has no parameter for (BioCLIP 2's checkpoint carries
one). Usage: gen_vitl14_weights.py FIXTURE_TOOLS_DIR OUT_DIR [seed]
Writes OUT_DIR/open_clip_model.safetensors (fp16) and OUT_DIR/open_clip_config.json."""
import json, os, sys

import numpy as np

sys.path.insert(0, sys.argv[1])
import gen_vitb16  # noqa: E402  (the fixtures' generator)
import st  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def config():
    with open(os.path.join(HERE, "vitl14_config.json")) as f:
        return json.load(f)


def weights(seed):
    hub = config()
    w = gen_vitb16.make(hub["model_cfg"], seed)
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    shape = w["visual.proj"].shape
    w["visual.continual_proj"] = (shape[0] ** -0.5 * rng.standard_normal(size=shape, dtype=np.float32)).astype(np.float16)
    return w


if __name__ == "__main__":
    out = sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    os.makedirs(out, exist_ok=True)
    st.save(os.path.join(out, "open_clip_model.safetensors"), weights(seed),
            {"seed": str(seed), "generator": "tests/parity/gen_vitl14_weights.py"})
    with open(os.path.join(out, "open_clip_config.json"), "w") as f:
        json.dump(config(), f, indent=2)
