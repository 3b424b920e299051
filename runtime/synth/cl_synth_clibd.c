/* cl_synth_clibd: a small CLIBD-shaped model with RANDOM weights for the BIOSCAN sample, so
 * its DNA retrievals run without a downloaded checkpoint. The layout is the one CLIBD bundles
 * load (cl_clibd.h): config.json ("format": "clibd", the format of
 * shared/fixtures/clibd/config.json), model.safetensors (CLIBD's SimpleCLIP state-dict names:
 * a timm ViT with the LoRA q/v adapters of CLIBD's image tower, a BarcodeBERT
 * BertForMaskedLM with its replaced decoder, a BERT text tower and its projection) and
 * vocab.txt (a WordPiece vocabulary of single characters, so every word is coverable).
 * Weights follow cl_synth_gen's rules, keyed by the seed; the model is not trained. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/cl_safetensors.h"
#include "../tensor/cl_tensor.h"
#include "cl_synth.h"
#include "cl_synth_priv.h"

/* The shapes: each tower 64 wide x 2 layers x 2 heads, all three 32-d out. */
enum { OUT = 32, IMG_W = 64, IMG_DEPTH = 2, IMG_HEADS = 2, IMG_SIZE = 224, PATCH = 16, LORA_R = 4,
       BERT_H = 64, BERT_LAYERS = 2, BERT_HEADS = 2, BERT_I = 128, DNA_VOCAB = 1027, DNA_POS = 140, TEXT_POS = 32,
       TEXT_LEN = 20 };

#define P_IMAGE "image_encoder.base_image_encoder."
#define P_DNA "dna_encoder.base_dna_encoder.bert."
#define P_DNA_HEAD "dna_encoder.base_dna_encoder.cls.predictions."
#define P_TEXT "language_encoder.base_language_encoder."

typedef struct gen_ctx {
  cl_tmap *m;
  uint64_t seed;
  long n;
} gen_ctx;

/* One tensor named prefix + name (printf-style), up to 4 dims. */
static void put(gen_ctx *g, int kind, double arg, int ndim, const int64_t *d, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void put(gen_ctx *g, int kind, double arg, int ndim, const int64_t *d, const char *fmt, ...) {
  char name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  g->n += cl_synth_gen(g->m, g->seed, name, kind, arg, ndim, ndim > 0 ? d[0] : 0, ndim > 1 ? d[1] : 0,
                       ndim > 2 ? d[2] : 0, ndim > 3 ? d[3] : 0);
}

#define D(...) ((const int64_t[]){__VA_ARGS__})

/* A LayerNorm (or norm) pair: weight and bias. */
static void put_ln(gen_ctx *g, int64_t w, const char *name) {
  put(g, CL_SYNTH_LN_W, 0, 1, D(w), "%s.weight", name);
  put(g, CL_SYNTH_BIAS, 0, 1, D(w), "%s.bias", name);
}

/* A Linear: weight [out, in] and bias [out]. */
static void put_linear(gen_ctx *g, int64_t out, int64_t in, const char *name) {
  put(g, CL_SYNTH_MAT, (double)in, 2, D(out, in), "%s.weight", name);
  put(g, CL_SYNTH_BIAS, 0, 1, D(out), "%s.bias", name);
}

/* timm's vit_base_patch16_224 names at CLIBD's width, with its LoRA q/v adapters (A [r, W],
 * B [W, r]; B drawn small, as trained adapters are) and the head. */
static void gen_image(gen_ctx *g) {
  const int W = IMG_W, grid = IMG_SIZE / PATCH;
  char k[256];
  put(g, CL_SYNTH_EMB, 0, 3, D(1, 1, W), P_IMAGE "cls_token");
  put(g, CL_SYNTH_POS, 0, 3, D(1, 1 + grid * grid, W), P_IMAGE "pos_embed");
  put(g, CL_SYNTH_MAT, 3.0 * PATCH * PATCH, 4, D(W, 3, PATCH, PATCH), P_IMAGE "patch_embed.proj.weight");
  put(g, CL_SYNTH_BIAS, 0, 1, D(W), P_IMAGE "patch_embed.proj.bias");
  for (int i = 0; i < IMG_DEPTH; i++) {
#define B(s) (snprintf(k, sizeof k, P_IMAGE "blocks.%d.%s", i, s), k)
    put_ln(g, W, B("norm1"));
    put_linear(g, 3 * W, W, B("attn.qkv.qkv"));
    put(g, CL_SYNTH_MAT, W, 2, D(LORA_R, W), "%s", B("attn.qkv.linear_a_q.weight"));
    put(g, CL_SYNTH_BIAS, 0, 2, D(W, LORA_R), "%s", B("attn.qkv.linear_b_q.weight"));
    put(g, CL_SYNTH_MAT, W, 2, D(LORA_R, W), "%s", B("attn.qkv.linear_a_v.weight"));
    put(g, CL_SYNTH_BIAS, 0, 2, D(W, LORA_R), "%s", B("attn.qkv.linear_b_v.weight"));
    put_linear(g, W, W, B("attn.proj"));
    put_ln(g, W, B("norm2"));
    put_linear(g, 4 * W, W, B("mlp.fc1"));
    put_linear(g, W, 4 * W, B("mlp.fc2"));
#undef B
  }
  put_ln(g, W, P_IMAGE "norm");
  put_linear(g, OUT, W, P_IMAGE "head");
}

/* A Hugging Face BertModel's embeddings and encoder under prefix p. */
static void gen_bert(gen_ctx *g, const char *p, int vocab, int positions) {
  const int H = BERT_H;
  char k[512];
  put(g, CL_SYNTH_EMB, 0, 2, D(vocab, H), "%sembeddings.word_embeddings.weight", p);
  put(g, CL_SYNTH_POS, 0, 2, D(positions, H), "%sembeddings.position_embeddings.weight", p);
  put(g, CL_SYNTH_POS, 0, 2, D(2, H), "%sembeddings.token_type_embeddings.weight", p);
  snprintf(k, sizeof k, "%sembeddings.LayerNorm", p);
  put_ln(g, H, k);
  for (int i = 0; i < BERT_LAYERS; i++) {
#define L(s) (snprintf(k, sizeof k, "%sencoder.layer.%d.%s", p, i, s), k)
    put_linear(g, H, H, L("attention.self.query"));
    put_linear(g, H, H, L("attention.self.key"));
    put_linear(g, H, H, L("attention.self.value"));
    put_linear(g, H, H, L("attention.output.dense"));
    put_ln(g, H, L("attention.output.LayerNorm"));
    put_linear(g, BERT_I, H, L("intermediate.dense"));
    put_linear(g, H, BERT_I, L("output.dense"));
    put_ln(g, H, L("output.LayerNorm"));
#undef L
  }
}

/* The Hugging Face bert_config of a tower. */
static cJSON *bert_config(int vocab, int positions) {
  cJSON *b = cJSON_CreateObject();
  cJSON_AddNumberToObject(b, "vocab_size", vocab);
  cJSON_AddNumberToObject(b, "hidden_size", BERT_H);
  cJSON_AddNumberToObject(b, "num_hidden_layers", BERT_LAYERS);
  cJSON_AddNumberToObject(b, "num_attention_heads", BERT_HEADS);
  cJSON_AddNumberToObject(b, "intermediate_size", BERT_I);
  cJSON_AddNumberToObject(b, "max_position_embeddings", positions);
  cJSON_AddNumberToObject(b, "type_vocab_size", 2);
  cJSON_AddStringToObject(b, "hidden_act", "gelu");
  cJSON_AddNumberToObject(b, "layer_norm_eps", 1e-12);
  return b;
}

static char *clibd_config(uint64_t seed, int text_vocab) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", "clibd");
  char note[160];
  snprintf(note, sizeof note, "RANDOM weights (clade synth --seed %llu); not a trained model",
           (unsigned long long)seed);
  cJSON_AddStringToObject(root, "clade_synth", note);
  cJSON_AddNumberToObject(root, "output_dim", OUT);
  cJSON *im = cJSON_AddObjectToObject(root, "image");
  cJSON_AddStringToObject(im, "timm_model", "vit_base_patch16_224");
  cJSON_AddNumberToObject(im, "img_size", IMG_SIZE);
  cJSON_AddNumberToObject(im, "patch_size", PATCH);
  cJSON_AddNumberToObject(im, "in_chans", 3);
  cJSON_AddNumberToObject(im, "embed_dim", IMG_W);
  cJSON_AddNumberToObject(im, "depth", IMG_DEPTH);
  cJSON_AddNumberToObject(im, "num_heads", IMG_HEADS);
  cJSON_AddNumberToObject(im, "mlp_ratio", 4.0);
  cJSON_AddBoolToObject(im, "qkv_bias", 1);
  cJSON_AddBoolToObject(im, "class_token", 1);
  cJSON_AddStringToObject(im, "global_pool", "token");
  cJSON_AddNumberToObject(im, "layer_norm_eps", 1e-6);
  cJSON_AddNumberToObject(im, "lora_r", LORA_R);
  cJSON_AddNumberToObject(im, "out_dim", OUT);
  cJSON *pp = cJSON_AddObjectToObject(im, "preprocess");
  cJSON_AddNumberToObject(pp, "resize_short_side", 256);
  cJSON_AddStringToObject(pp, "interpolation", "bilinear");
  cJSON_AddBoolToObject(pp, "antialias", 1);
  cJSON_AddNumberToObject(pp, "center_crop", IMG_SIZE);
  cJSON_AddNullToObject(pp, "normalize");
  cJSON *dna = cJSON_AddObjectToObject(root, "dna");
  cJSON_AddItemToObject(dna, "bert_config", bert_config(DNA_VOCAB, DNA_POS));
  cJSON_AddNumberToObject(dna, "k", 5);
  cJSON_AddNumberToObject(dna, "stride", 5);
  cJSON_AddNumberToObject(dna, "max_len", 660);
  cJSON_AddStringToObject(dna, "pad_char", "N");
  cJSON_AddNumberToObject(dna, "leading_id", 0);
  const char *specials[] = {"<MASK>", "<CLS>", "<UNK>"};
  cJSON_AddItemToObject(dna, "specials", cJSON_CreateStringArray(specials, 3));
  cJSON_AddNumberToObject(dna, "unk_id", 2);
  cJSON_AddNumberToObject(dna, "out_dim", OUT);
  cJSON *tx = cJSON_AddObjectToObject(root, "text");
  cJSON_AddItemToObject(tx, "bert_config", bert_config(text_vocab, TEXT_POS));
  cJSON_AddStringToObject(tx, "vocab_file", "vocab.txt");
  cJSON_AddBoolToObject(tx, "do_lower_case", 1);
  cJSON_AddBoolToObject(tx, "strip_accents", 1);
  cJSON_AddNumberToObject(tx, "max_length", TEXT_LEN);
  cJSON_AddStringToObject(tx, "padding", "max_length");
  cJSON_AddBoolToObject(tx, "truncation", 1);
  cJSON_AddNumberToObject(tx, "out_dim", OUT);
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  return s;
}

/* WordPiece's specials, then every lower-case letter and digit alone and as a "##"
 * continuation: any lower-cased taxon name is covered letter by letter. */
static int write_vocab(const char *path, int *n, cl_error *e) {
  cl_synth_sbuf b = {0};
  cl_synth_sb_puts(&b, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
  *n = 5;
  static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (int cont = 0; cont < 2; cont++)
    for (const char *c = chars; *c; c++) {
      char line[8];
      snprintf(line, sizeof line, "%s%c\n", cont ? "##" : "", *c);
      cl_synth_sb_puts(&b, line);
      ++*n;
    }
  int rc = cl_write_file(path, b.s, b.n, e);
  free(b.s);
  return rc;
}

int cl_synth_clibd(const char *model_dir, uint64_t seed, long *n_params, cl_error *e) {
  int rc = cl_mkdirs(model_dir, e);
  if (rc) return rc;
  char path[4096];
  int text_vocab = 0;
  snprintf(path, sizeof path, "%s/vocab.txt", model_dir);
  if ((rc = write_vocab(path, &text_vocab, e))) return rc;
  char *cfg = clibd_config(seed, text_vocab);
  snprintf(path, sizeof path, "%s/config.json", model_dir);
  rc = cfg ? cl_write_file(path, cfg, strlen(cfg), e) : cl_err(e, CL_ENOMEM, "%s: out of memory", path);
  cJSON_free(cfg);
  if (rc) return rc;

  cl_tmap m;
  cl_tmap_init(&m);
  gen_ctx g = {&m, seed, 0};
  gen_image(&g);
  gen_bert(&g, P_DNA, DNA_VOCAB, DNA_POS);
  put_linear(&g, BERT_H, BERT_H, P_DNA_HEAD "transform.dense");
  put_ln(&g, BERT_H, P_DNA_HEAD "transform.LayerNorm");
  put_linear(&g, OUT, BERT_H, P_DNA_HEAD "decoder");
  gen_bert(&g, P_TEXT, text_vocab, TEXT_POS);
  put_linear(&g, OUT, BERT_H, "language_encoder.proj");
  put(&g, CL_SYNTH_CONST, log(1 / 0.07), 0, NULL, "logit_scale");
  char *meta = cl_synth_random_meta(seed);
  snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
  rc = cl_st_save(path, &m, meta, e);
  cJSON_free(meta);
  cl_tmap_free(&m);
  if (n_params) *n_params = g.n;
  return rc;
}
