"""Compare `clade embed` output with open_clip's fixture outputs: relative L2 error per
vector must be below 1e-4. Usage: embed_compare.py GOT.safetensors REF.safetensors IMGKEY TXTKEY TEXT_INDICES"""
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.environ["CLADE_FIXTURES"], "tools"))
import st

got, ref = st.load(sys.argv[1]), st.load(sys.argv[2])
ikey, tkey = sys.argv[3], sys.argv[4]
tidx = [int(x) for x in sys.argv[5].split(",")] if len(sys.argv) > 5 and sys.argv[5] else []
bad = 0
ei = st.relerr(got["image_embeddings"], ref[ikey])
print(f"images: max rel err {ei.max():.2e} over {len(ei)}")
bad += int((ei >= 1e-4).sum())
if tidx:
    et = st.relerr(got["text_embeddings"], ref[tkey][tidx])
    print(f"texts: max rel err {et.max():.2e} over {len(et)}")
    bad += int((et >= 1e-4).sum())
    ids = ref["input_ids"][tidx] if "input_ids" in ref else None
    if ids is not None and not np.array_equal(got["text_tokens"], ids.astype(np.int32)):
        print("text_tokens differ from the fixture's input_ids"); bad += 1
if "logit_scale" in ref and abs(float(got["logit_scale"]) - float(ref["logit_scale"])) > 0:
    print("logit_scale differs"); bad += 1
sys.exit(1 if bad else 0)
