/* cl_bert: Hugging Face's BERT encoder (BertModel, and BertForMaskedLM's prediction head) on
 * a cl_backend, as transformers 4.29 computes it in fp32: word + token type (0) + absolute
 * position embeddings, LayerNorm; post-LN layers (self-attention with an additive padding
 * mask, dense + residual + LayerNorm, intermediate with exact erf GELU, dense + residual +
 * LayerNorm); the MLM head dense -> GELU -> LayerNorm -> decoder. Its own layer_norm_eps.
 * Key names are Hugging Face's under a prefix: `embeddings.*`,
 * `encoder.layer.N.attention.self.query|key|value`, `...attention.output.dense|LayerNorm`,
 * `...intermediate.dense`, `...output.dense|LayerNorm`; BertForMaskedLM puts them under
 * `bert.` with `cls.predictions.transform.dense|LayerNorm` and `cls.predictions.decoder`.
 * Older BIOSCAN-CLIP checkpoints carry LoRA in query and value (`.w.weight|bias`,
 * `.w_a.weight` [r,H], `.w_b.weight` [H,r]): merged at load, W += w_b w_a.
 * Owns: BERT configs (Hugging Face config.json, or a checkpoint's `bert_config` entry), the
 * weights (one backend allocation) and the activation arena. One thread at a time. */
#ifndef CL_BERT_H
#define CL_BERT_H
#include <stdint.h>

#include "cl_ops.h"
#include "core/cl_core.h"
#include "tensor/cl_tensor.h"

typedef struct cl_bert_config {
  int vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
  int max_position_embeddings, type_vocab_size;
  double layer_norm_eps;
} cl_bert_config;

/* transformers' BertConfig defaults (30522, 768, 12, 12, 3072, 512, 2, 1e-12). */
void cl_bert_config_default(cl_bert_config *c);
int cl_bert_config_check(const cl_bert_config *c, const char *where, cl_error *e);
/* A Hugging Face config.json object or a `bert_config` dict (cJSON *), read over the defaults.
 * Keys BERT does not use are ignored (real configs carry many); a bad value, a hidden_act other
 * than "gelu" (exact) or a position_embedding_type other than "absolute" is an error naming
 * `where`.key. */
int cl_bert_config_parse(const void *cjson_obj, const char *where, cl_bert_config *c, cl_error *e);
/* From a file: a Hugging Face config.json, or a checkpoint holding {"model": state dict,
 * "bert_config": {...}} (BarcodeBERT's own format; cl_ckpt_load keeps such plain entries as
 * the map's metadata JSON). */
int cl_bert_config_load(const char *path, cl_bert_config *c, cl_error *e);
/* The `bert_config` entry of a loaded checkpoint's metadata. */
int cl_bert_config_from_ckpt(const cl_tmap *m, const char *path, cl_bert_config *c, cl_error *e);

typedef struct cl_bert cl_bert;

typedef struct cl_bert_keys {
  const char *prefix;      /* before embeddings./encoder. ("" for a bare BertModel, "bert." for MLM) */
  const char *head_prefix; /* "cls.predictions." for the MLM head, NULL for none */
  const char *owner;       /* keys starting with this belong to this model: any other key under it
                              is an error unless tolerated (NULL: prefix) */
} cl_bert_keys;

/* Loads from a state dict (F32/F16/BF16/F64, converted to F32). Every expected key must be
 * present with the shape the config implies (the decoder's rows, the head's output size, are
 * read from cls.predictions.decoder.weight); the first problem is reported by key name. Keys
 * under owner that real files carry and BERT does not use (position_ids, pooler.*,
 * cls.predictions.bias) are tolerated and listed in *ignored (malloc'd, may be NULL). */
int cl_bert_load(const cl_bert_config *cfg, const cl_tmap *w, const cl_bert_keys *keys, cl_backend *be,
                 cl_bert **out, char **ignored, cl_error *e);
void cl_bert_free(cl_bert *m);
const cl_bert_config *cl_bert_get_config(const cl_bert *m);
int cl_bert_head_dim(const cl_bert *m); /* decoder rows; 0 without a head */
int cl_bert_has_lora(const cl_bert *m);

/* n sequences of L ids (token type 0, positions 0..L-1). mask [n,L] (1 attend, 0 padding) or
 * NULL: every position attends to every position. A mask row must be ones then zeros (right
 * padding) with at least one 1. out (host): [n, L, hidden] last hidden states, or with head
 * set [n, L, head_dim] MLM logits. */
int cl_bert_forward(cl_bert *m, const int32_t *ids, const int32_t *mask, int n, int L, int head, float *out,
                    cl_error *e);

#define CL_BERT_MAX_TOKENS 4608 /* tokens per batch chunk (about 32 DNA barcodes) */
#define CL_BERT_MAX_LEN 16384   /* tokens per sequence (attention is quadratic in it) */

#endif
