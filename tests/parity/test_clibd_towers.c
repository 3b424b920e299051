/* test_clibd_towers: CLIBD's three towers against shared/fixtures/clibd, which CLIBD's own code
 * computed (outputs.safetensors): DNA, text and image embeddings (rel err <= 1e-4, and against
 * the float64 run to tell rounding from error), the intermediates (DNA logits, text last hidden
 * states, image pre-logits), CLIBD's eval image transform (image_pixels, from the JPEG files),
 * the same checkpoint under the old key names, the older layout with LoRA in the BERT towers
 * too (lora_all_old_names.pth), BarcodeBERT's own checkpoint format (bert_config), and the
 * errors: a checkpoint without a needed tower, a config that does not match the shapes. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "cl_test.h"
#include "image/cl_image.h"
#include "io/cl_ckpt.h"
#include "io/cl_safetensors.h"
#include "model/cl_clibd.h"
#include "model/cl_modality.h"

#define TOL 1e-4

static cJSON *cases;
static cl_backend *be;

static const cl_tensor *get(const cl_tmap *m, const char *name, cl_dtype dt, long numel) {
  const cl_tensor *t = cl_tmap_get(m, name);
  CHECK_MSG(t && t->dtype == dt && cl_tensor_numel(t) == numel, "%s: missing or not %ld values", name, numel);
  return t && t->dtype == dt && cl_tensor_numel(t) == numel ? t : NULL;
}

static void check_close(const char *what, const float *got, const cl_tmap *ref, const char *name, long n) {
  const cl_tensor *t = get(ref, name, CL_F32, n);
  if (!t) return;
  double r = cl_test_relerr(got, t->data, n);
  CHECK_MSG(r <= TOL, "%s: rel err %.3g against %s", what, r, name);
  char f64[128];
  snprintf(f64, sizeof f64, "%s_f64", name);
  const cl_tensor *d = cl_tmap_get(ref, f64);
  if (d && d->dtype == CL_F64 && cl_tensor_numel(d) == n) {
    float *df = malloc((size_t)n * sizeof *df);
    cl_to_f32(CL_F64, d->data, df, n, NULL);
    double r64 = cl_test_relerr(got, df, n), ref64 = cl_test_relerr(t->data, df, n);
    printf("  %s: rel err %.2e vs CLIBD fp32, %.2e vs its f64 (CLIBD fp32 vs f64: %.2e)\n", what, r, r64, ref64);
    CHECK_MSG(r64 <= TOL, "%s: rel err %.3g against %s", what, r64, f64);
    free(df);
  } else {
    printf("  %s: rel err %.2e vs %s\n", what, r, name);
  }
}

static int nitems(const char *key) { return cJSON_GetArraySize(cJSON_GetObjectItem(cases, key)); }

static const char **strings(const char *key, const char *field) {
  const cJSON *a = cJSON_GetObjectItem(cases, key);
  int n = cJSON_GetArraySize(a);
  const char **s = calloc((size_t)n, sizeof *s);
  for (int i = 0; i < n; i++) {
    const cJSON *x = cJSON_GetArrayItem(a, i);
    s[i] = cJSON_GetStringValue(field ? cJSON_GetObjectItem(x, field) : x);
  }
  return s;
}

/* Every tower of the bundle against ref; with_intermediates for outputs.safetensors. */
static void check_bundle(const char *label, cl_clibd *b, const cl_tmap *ref, int with_intermediates) {
  char what[128];
  cl_error e = {0};
  const int nd = nitems("dna"), nt = nitems("texts"), ni = nitems("images");
  CHECK(b->dna && b->text && b->image);
  if (!b->dna || !b->text || !b->image) return;
  const int D = cl_clibd_dna_dim(b->dna), L = cl_clibd_dna_ntokens(b->dna);
  CHECK_EQ_INT(D, 32);
  CHECK_EQ_INT(L, 133);
  const char **seqs = strings("dna", "seq");
  float *out = calloc((size_t)nd * D, sizeof *out), *logits = calloc((size_t)nd * L * D, sizeof *logits);
  int32_t *ids = calloc((size_t)nd * L, sizeof *ids);
  CHECK_OK(cl_clibd_dna_encode(b->dna, seqs, nd, out, ids, &e), e);
  snprintf(what, sizeof what, "%s dna", label);
  check_close(what, out, ref, "dna_embeddings", (long)nd * D);
  for (int i = 0; i < nd; i++) {
    double s = 0;
    for (int d = 0; d < D; d++) s += out[i * D + d];
    CHECK_MSG(fabs(s - 1) < 1e-5, "dna embedding %d sums to %.8f, not 1", i, s);
  }
  if (with_intermediates) {
    CHECK_OK(cl_clibd_dna_encode_ids(b->dna, ids, nd, out, logits, &e), e);
    snprintf(what, sizeof what, "%s dna logits", label);
    check_close(what, logits, ref, "dna_logits", (long)nd * L * D);
  }
  free(seqs), free(out), free(logits), free(ids);

  const char **texts = strings("texts", NULL);
  const int TL = cl_clibd_text_length(b->text), TD = cl_clibd_text_dim(b->text);
  out = calloc((size_t)nt * TD, sizeof *out);
  float *hid = calloc((size_t)nt * TL * 64, sizeof *hid);
  CHECK_OK(cl_clibd_text_encode(b->text, texts, nt, out, NULL, NULL, hid, &e), e);
  snprintf(what, sizeof what, "%s text", label);
  check_close(what, out, ref, "text_embeddings", (long)nt * TD);
  if (with_intermediates) {
    snprintf(what, sizeof what, "%s text last hidden", label);
    check_close(what, hid, ref, "text_last_hidden_state", (long)nt * TL * 64);
  }
  free(texts), free(out), free(hid);

  /* the image tower on CLIBD's own pixels, and end to end from the files */
  const int S = cl_clibd_image_size(b->image), ID = cl_clibd_image_dim(b->image);
  const cl_tensor *px = cl_tmap_get(ref, "image_pixels"); /* only in outputs.safetensors */
  if (px && (px->dtype != CL_F32 || cl_tensor_numel(px) != (long)ni * 3 * S * S)) px = NULL;
  out = calloc((size_t)ni * ID, sizeof *out);
  float *pre = calloc((size_t)ni * 64, sizeof *pre);
  char path[4096], rel[300];
  const char **names = strings("images", NULL), **files = calloc((size_t)ni, sizeof *files);
  for (int i = 0; i < ni; i++) {
    snprintf(rel, sizeof rel, "images/%s", names[i]);
    files[i] = strdup(cl_test_fixture(path, sizeof path, rel));
  }
  if (px) {
    CHECK_OK(cl_clibd_image_encode(b->image, px->data, ni, out, pre, &e), e);
    snprintf(what, sizeof what, "%s image (CLIBD's pixels)", label);
    check_close(what, out, ref, "image_embeddings", (long)ni * ID);
    snprintf(what, sizeof what, "%s image pre-logits", label);
    check_close(what, pre, ref, "image_pre_logits", (long)ni * 64);
  }
  CHECK_OK(cl_clibd_image_encode_files(b->image, files, ni, out, &e), e);
  snprintf(what, sizeof what, "%s image (from the files)", label);
  check_close(what, out, ref, "image_embeddings", (long)ni * ID);
  for (int i = 0; i < ni; i++) free((void *)files[i]);
  free(files), free(names), free(out), free(pre);
}

static void test_transform(const cl_tmap *ref) {
  const int ni = nitems("images"), S = 224;
  const cl_tensor *px = get(ref, "image_pixels", CL_F32, (long)ni * 3 * S * S);
  if (!px) return;
  const char **names = strings("images", NULL);
  float *got = calloc((size_t)3 * S * S, sizeof *got);
  for (int i = 0; i < ni; i++) {
    char path[4096], rel[300];
    snprintf(rel, sizeof rel, "images/%s", names[i]);
    cl_error e = {0};
    CHECK_OK(cl_img_clibd_preprocess_file(cl_test_fixture(path, sizeof path, rel), 256, 224, got, &e), e);
    const float *want = (const float *)px->data + (size_t)i * 3 * S * S;
    long same = 0;
    double maxd = 0;
    for (long k = 0; k < 3L * S * S; k++) {
      double d = fabs((double)got[k] - want[k]);
      same += d == 0;
      maxd = d > maxd ? d : maxd;
    }
    printf("  transform %s: %ld of %ld values bit-exact, max abs diff %.3g\n", names[i], same, 3L * S * S, maxd);
    /* bit-exact, the 3x shrink of the 1024x768 image (5- and 6-tap sums) included */
    CHECK_MSG(same == 3L * S * S, "transform %s: %ld values differ from CLIBD's (max abs diff %.3g)", names[i],
              3L * S * S - same, maxd);
  }
  free(got);
  free(names);
}

/* The bundle as registry towers: each reads its items one by one and encodes them as a batch,
 * with the same numbers as CLIBD's (one tower per registered modality among image, text, dna). */
static void test_registry_towers(cl_clibd *b, const cl_tmap *ref) {
  cl_tower tw[CL_MODALITY_MAX];
  cl_error e = {0};
  int n = cl_clibd_towers(b, tw, CL_MODALITY_MAX, &e), want = 0;
  static const char *mods[3] = {"image", "text", "dna"};
  for (int i = 0; i < 3; i++) want += cl_modality_find(mods[i]) != NULL;
  CHECK_MSG(n == want, "%d towers for %d registered modalities: %s", n, want, e.msg);
  for (int k = 0; k < n; k++) {
    const char *name = tw[k].mod->name, **items = NULL;
    int ni = 0;
    char path[4096], rel[300], what[64];
    if (!strcmp(name, "image")) {
      const char **names = strings("images", NULL);
      ni = nitems("images");
      items = calloc((size_t)ni, sizeof *items);
      for (int i = 0; i < ni; i++) {
        snprintf(rel, sizeof rel, "images/%s", names[i]);
        items[i] = strdup(cl_test_fixture(path, sizeof path, rel));
      }
      free(names);
    } else {
      ni = nitems(!strcmp(name, "text") ? "texts" : "dna");
      items = !strcmp(name, "text") ? strings("texts", NULL) : strings("dna", "seq");
    }
    char *in = calloc((size_t)ni, tw[k].input_bytes);
    float *out = calloc((size_t)ni * tw[k].dim, sizeof *out);
    for (int i = 0; i < ni; i++) CHECK_OK(tw[k].read(&tw[k], items[i], in + i * tw[k].input_bytes, &e), e);
    CHECK_OK(tw[k].encode(&tw[k], in, ni, out, &e), e);
    snprintf(what, sizeof what, "registry tower %s", name);
    char key[64];
    snprintf(key, sizeof key, "%s_embeddings", name);
    check_close(what, out, ref, key, (long)ni * tw[k].dim);
    if (!strcmp(name, "image"))
      for (int i = 0; i < ni; i++) free((void *)items[i]);
    free(items), free(in), free(out);
  }
  char id[2048];
  cl_clibd_identity(b, id, sizeof id);
  CHECK_MSG(strstr(id, "clibd/1|towers=7|image=224,16,64,2,2") && strstr(id, "vocab=") && !strstr(id, "vocab=-"), "%s", id);
}

static void test_barcodebert_format(void) {
  char path[4096], cfgp[4096];
  cl_error e = {0};
  cl_bert_config c, want;
  cl_test_fixture(path, sizeof path, "clibd/barcodebert_tiny.pt");
  CHECK_OK(cl_bert_config_load(path, &c, &e), e);
  cl_clibd_config cc;
  CHECK_OK(cl_clibd_config_load(cl_test_fixture(cfgp, sizeof cfgp, "clibd/config.json"), &cc, &e), e);
  want = cc.dna_bert;
  CHECK(c.vocab_size == want.vocab_size && c.hidden_size == want.hidden_size &&
        c.num_hidden_layers == want.num_hidden_layers && c.num_attention_heads == want.num_attention_heads &&
        c.intermediate_size == want.intermediate_size && c.max_position_embeddings == want.max_position_embeddings &&
        c.layer_norm_eps == want.layer_norm_eps);
  /* a Hugging Face config.json: keys BERT does not use are fine; an activation it lacks is not */
  char dir[] = "/tmp/clibd_hf_XXXXXX", hf[4200];
  if (mkdtemp(dir)) {
    snprintf(hf, sizeof hf, "%s/config.json", dir);
    const char *j = "{\"architectures\": [\"BertForMaskedLM\"], \"model_type\": \"bert\", \"vocab_size\": 1027,"
                    " \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
                    " \"intermediate_size\": 128, \"max_position_embeddings\": 140, \"hidden_act\": \"gelu\"}";
    cl_write_file(hf, j, strlen(j), &e);
    cl_bert_config h;
    CHECK_OK(cl_bert_config_load(hf, &h, &e), e);
    CHECK(h.hidden_size == 64 && h.num_hidden_layers == 2 && h.max_position_embeddings == 140 &&
          h.type_vocab_size == 2 && h.layer_norm_eps == 1e-12);
    const char *bad = "{\"hidden_size\": 64, \"num_attention_heads\": 2, \"hidden_act\": \"gelu_new\"}";
    cl_write_file(hf, bad, strlen(bad), &e);
    CHECK(cl_bert_config_load(hf, &h, &e) == CL_EUNSUP && strstr(e.msg, "hidden_act") && strstr(e.msg, "config.json"));
    const char *heads = "{\"hidden_size\": 64, \"num_attention_heads\": 3}";
    cl_write_file(hf, heads, strlen(heads), &e);
    CHECK(cl_bert_config_load(hf, &h, &e) == CL_EINVAL && strstr(e.msg, "num_attention_heads"));
    unlink(hf);
    rmdir(dir);
  }
  cl_tmap w;
  CHECK_OK(cl_ckpt_load(path, &w, &e), e);
  cl_bert *m = NULL;
  char *ignored = NULL;
  const cl_bert_keys keys = {.prefix = "bert.", .head_prefix = "cls.predictions.", .owner = ""};
  CHECK_OK(cl_bert_load(&c, &w, &keys, be, &m, &ignored, &e), e);
  if (m) CHECK_EQ_INT(cl_bert_head_dim(m), 1027); /* BarcodeBERT's MLM decoder over the vocabulary */
  CHECK_MSG(ignored && strstr(ignored, "position_ids"), "ignored keys: %s", ignored ? ignored : "(none)");
  cl_bert_free(m);
  free(ignored);
  /* a config that does not match the shapes: the error names the key */
  c.intermediate_size = 100;
  ignored = NULL;
  CHECK(cl_bert_load(&c, &w, &keys, be, &m, &ignored, &e) == CL_ESHAPE &&
        strstr(e.msg, "bert.encoder.layer.0.intermediate.dense.weight"));
  free(ignored);
  cl_tmap_free(&w);
}

/* A checkpoint without the image tower: opening it for images names the tower and the key;
 * for the other towers it works and lists the unused logit_scale. */
static void test_missing_tower(void) {
  char path[4096], dir[] = "/tmp/clibd_towers_XXXXXX", p2[4200], c2[4200], cfg[4096];
  cl_error e = {0};
  if (!mkdtemp(dir)) return;
  cl_tmap w, part;
  CHECK_OK(cl_ckpt_load(cl_test_fixture(path, sizeof path, "clibd/best.pth"), &w, &e), e);
  cl_tmap_init(&part);
  for (int i = 0; i < w.n; i++)
    if (strncmp(w.v[i].name, "image_encoder.", 14))
      cl_tmap_put_copy(&part, w.v[i].name, w.v[i].t.dtype, w.v[i].t.ndim, w.v[i].t.shape, w.v[i].t.data);
  snprintf(p2, sizeof p2, "%s/dna_text.safetensors", dir);
  CHECK_OK(cl_st_save(p2, &part, NULL, &e), e);
  cl_tmap_free(&part);
  cl_tmap_free(&w);
  const char *config = cl_test_fixture(cfg, sizeof cfg, "clibd/config.json");
  cl_clibd *b = NULL;
  CHECK(cl_clibd_open(p2, config, CL_CLIBD_ALL, be, 1, &b, &e) == CL_ESHAPE && strstr(e.msg, "no image tower") &&
        strstr(e.msg, "image_encoder.base_image_encoder.cls_token"));
  CHECK_OK(cl_clibd_open(p2, config, CL_CLIBD_DNA | CL_CLIBD_TEXT, be, 1, &b, &e), e);
  if (b) CHECK(!b->image && b->dna && b->text);
  cl_clibd_close(b);
  /* a config whose dna tower is wider than the checkpoint's */
  char *json;
  size_t len;
  CHECK_OK(cl_read_file(config, &json, &len, &e), e);
  char *at = strstr(json, "\"hidden_size\": 64");
  if (at) memcpy(at, "\"hidden_size\": 32", 17);
  snprintf(c2, sizeof c2, "%s/config.json", dir);
  cl_write_file(c2, json, len, &e);
  free(json);
  b = NULL;
  int rc = cl_clibd_open(p2, c2, CL_CLIBD_DNA, be, 1, &b, &e);
  CHECK_MSG(rc == CL_ESHAPE &&
        strstr(e.msg, "dna_encoder.base_dna_encoder.bert.embeddings.word_embeddings.weight") &&
        strstr(e.msg, "dna tower"), "%s", e.msg);
  unlink(p2);
  unlink(c2);
  rmdir(dir);
}

int main(void) {
  char path[4096], ref[4096];
  char *json = NULL;
  size_t len;
  cl_error e = {0};
  if (cl_read_file(cl_test_fixture(path, sizeof path, "clibd/cases.json"), &json, &len, &e)) {
    fprintf(stderr, "skip: %s\n", e.msg);
    return CL_TEST_SKIP;
  }
  cases = cJSON_Parse(json);
  free(json);
  if (cl_backend_cpu_create(&be, &e)) {
    fprintf(stderr, "cpu backend: %s\n", e.msg);
    return 1;
  }
  cl_tmap out;
  CHECK_OK(cl_st_load(cl_test_fixture(ref, sizeof ref, "clibd/outputs.safetensors"), &out, &e), e);
  test_transform(&out);
  static const struct { const char *file, *outputs; int inter; } ck[] = {
      {"clibd", "clibd/outputs.safetensors", 1},  /* the folder: best.pth + config.json */
      {"clibd/best_old_names.pth", "clibd/outputs.safetensors", 0},
      {"clibd/lora_all_old_names.pth", "clibd/lora_all_old_names_outputs.safetensors", 0},
  };
  for (size_t i = 0; i < sizeof ck / sizeof *ck; i++) {
    cl_clibd *b = NULL;
    cl_tmap r;
    int rc = cl_clibd_open(cl_test_fixture(path, sizeof path, ck[i].file), NULL, CL_CLIBD_ALL, be, 0, &b, &e);
    CHECK_OK(rc, e);
    if (rc) continue;
    CHECK_OK(cl_st_load(cl_test_fixture(ref, sizeof ref, ck[i].outputs), &r, &e), e);
    check_bundle(ck[i].file, b, &r, ck[i].inter);
    if (i == 0) test_registry_towers(b, &r);
    cl_tmap_free(&r);
    cl_clibd_close(b);
  }
  test_barcodebert_format();
  test_missing_tower();
  cl_tmap_free(&out);
  cl_backend_destroy(be);
  cJSON_Delete(cases);
  return cl_test_done("test_clibd_towers");
}
