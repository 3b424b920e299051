/* cl_ckpt: load a checkpoint's state dict whatever its container (prefix cl_ckpt_), and the
 * PyTorch zip reader behind it (prefix cl_pt_, with the restricted pickle VM in cl_pickle.h).
 * Owns: format detection; turning torch storages + views into contiguous tensors of a cl_tmap. */
#ifndef CL_CKPT_H
#define CL_CKPT_H
#include "../tensor/cl_tensor.h"

/* Load a checkpoint's state dict into m: .safetensors (by magic/JSON header) via cl_st_load, or a PyTorch zip
   (torch.save of a state dict, or an open_clip training checkpoint {"state_dict": {...}} whose keys may carry a
   `module.` prefix that is stripped, or BarcodeBERT's {"model": {...}, "bert_config": {...}}, whose plain entries
   beside the state dict are kept as JSON in m->metadata_json). Tensors come out contiguous in their stored dtype (F32/F16/BF16/F64/I64...).
   The format is told by content, not by the file name. m is initialised here and left empty on error. */
int cl_ckpt_load(const char *path, cl_tmap *m, cl_error *e);

/* The PyTorch zip format alone (torch.save since 1.6): `<folder>/data.pkl` with exactly one top
 * folder, storages in `<folder>/data/<key>`, optional `<folder>/byteorder` (must be "little").
 * Same result as cl_ckpt_load. */
int cl_pt_load_zip(const char *path, cl_tmap *m, cl_error *e);

#endif
