/* clade embed: image and text embeddings of an open_clip checkpoint, or image, text and DNA
 * embeddings of a CLIBD checkpoint (config.json with "format": "clibd"), as safetensors. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_cli.h"
#include "io/cl_embout.h"
#include "io/cl_safetensors.h"
#include "model/cl_encoder.h"
#include "sched/cl_sched.h"
#include "store/cl_store.h"

int cl_cli_read_lines(const char *path, char **buf, char ***lines, int *n, cl_error *e) {
  size_t len;
  if (cl_read_file(path, buf, &len, e) != CL_OK) return e->code;
  int cap = 16;
  *lines = cl_xmalloc((size_t)cap * sizeof(char *));
  *n = 0;
  char *p = *buf, *end = *buf + len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *stop = nl ? nl : end;
    if (stop > p && stop[-1] == '\r') stop[-1] = 0;
    *stop = 0;
    if (*n == cap) *lines = realloc(*lines, (size_t)(cap *= 2) * sizeof(char *));
    (*lines)[(*n)++] = p;
    p = nl ? nl + 1 : end;
  }
  return CL_OK;
}

/* Write m to path beside, then rename: a failed run leaves no half-written file. */
static int save(const char *out_path, const cl_tmap *m, const char *meta, cl_error *e) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp%d", out_path, (int)getpid());
  int rc = cl_st_save(tmp, m, meta, e);
  if (rc == CL_OK && rename(tmp, out_path) != 0) rc = cl_err(e, CL_EIO, "%s: cannot write", out_path);
  if (rc != CL_OK) unlink(tmp);
  return rc;
}

/* The safetensors metadata: what computed the embeddings. */
static char *embed_meta(const cl_encoder *enc) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "checkpoint_hash", enc->hash);
  cJSON_AddStringToObject(o, "backend", enc->backend_name);
  cJSON_AddStringToObject(o, "precision", enc->precision);
  cJSON_AddStringToObject(o, "decode", cl_img_decode_name(enc->decode));
  cJSON_AddStringToObject(o, "model", enc->kind);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

/* The items given for a modality (--images, --texts, --dna). */
typedef struct given {
  const char *modality, *flag;
  const char *const *items;
  int n;
} given;

/* Every tower of the model, in its order: <modality>_embeddings [n, dim] (raw) of the items
 * given for it (none: [0, dim]), and <modality>_tokens [n, ntokens] where the tower's input
 * is token ids (texts, barcodes); then logit_scale. Items for a modality the model has no
 * tower for are an error naming the tower (and, for a bundle, its first missing key). */
static int embed_towers(cl_encoder *enc, const given *in, int nin, cl_tmap *m, cl_error *e) {
  for (int g = 0; g < nin; g++)
    if (in[g].n && !cl_encoder_tower(enc, in[g].modality, e)) return cl_err_wrap(e, "%s", in[g].flag);
  int rc = CL_OK;
  for (int t = 0; t < enc->ntowers && !rc; t++) {
    const cl_tower *tw = &enc->towers[t];
    const given *g = NULL;
    for (int i = 0; i < nin; i++)
      if (!strcmp(in[i].modality, tw->mod->name)) g = &in[i];
    const int n = g ? g->n : 0, D = tw->dim, L = tw->ntokens;
    float *emb = cl_xmalloc((size_t)(n ? n : 1) * D * sizeof *emb);
    cl_sched_opts so = {.progress = CL_PROGRESS_OFF}; /* no cache: embed always computes */
    cl_sched_stats st = {0};
    if (n) rc = cl_sched_embed(enc, tw->mod->name, &so, g->items, n, emb, &st, e);
    char name[64];
    snprintf(name, sizeof name, "%s_embeddings", tw->mod->name);
    if (!rc) cl_tmap_put_copy(m, name, CL_F32, 2, (int64_t[]){n, D}, emb);
    free(emb);
    if (rc || !L) continue;
    int32_t *ids = cl_xmalloc((size_t)(n ? n : 1) * L * sizeof *ids);
    void *input = cl_xmalloc(tw->input_bytes);
    for (int i = 0; i < n && !rc; i++) {
      rc = tw->read(tw, g->items[i], input, e);
      if (!rc) memcpy(ids + (size_t)i * L, input, (size_t)L * sizeof *ids);
    }
    snprintf(name, sizeof name, "%s_tokens", tw->mod->name);
    if (!rc) cl_tmap_put_copy(m, name, CL_I32, 2, (int64_t[]){n, L}, ids);
    free(input);
    free(ids);
  }
  if (!rc) cl_tmap_put_copy(m, "logit_scale", CL_F32, 0, NULL, &enc->logit_scale);
  return rc;
}

/* The embeddings to out_path: safetensors (every tensor of m, with meta), or .npy / CSV
 * (cl_embout), which hold one matrix: that of the one modality given items (checked before
 * encoding by one_matrix). */
static int one_matrix(const char *out_path, cl_embout_fmt f, const given *in, int nin, int *pick, cl_error *e) {
  int n = 0;
  for (int g = 0; g < nin; g++)
    if (in[g].n) *pick = g, n++;
  if (f != CL_EMBOUT_SAFETENSORS && n != 1)
    return cl_err(e, CL_EINVAL, "%s: a %s file holds one matrix: embed images, texts or DNA alone (or write safetensors)",
                  out_path, cl_embout_name(f));
  return CL_OK;
}

static int write_out(const char *out_path, cl_embout_fmt f, const cl_tmap *m, const char *meta, const given *in, int nin,
                     cl_error *e) {
  if (f == CL_EMBOUT_SAFETENSORS) return save(out_path, m, meta, e);
  int g = 0;
  CL_TRY(one_matrix(out_path, f, in, nin, &g, e));
  char name[64];
  snprintf(name, sizeof name, "%s_embeddings", in[g].modality);
  const cl_tensor *t = cl_tmap_get(m, name);
  if (!t) return cl_err(e, CL_EINVAL, "%s: the model computed no %s", out_path, name);
  return cl_embout_write(out_path, f, name, t->data, (int)t->shape[0], (int)t->shape[1],
                         !strcmp(in[g].modality, "image") ? "file_name" : in[g].modality, in[g].items, meta, e);
}

int cl_cmd_embed(int argc, char **argv) {
  cl_encoder_spec spec = {0};
  const char *texts_path = NULL, *dna_path = NULL, *out_path = NULL, *format = NULL;
  const char **images = cl_xcalloc((size_t)argc, sizeof(char *));
  int nimg = 0, in_images = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--model") ? &spec.path : !strcmp(s, "--config") ? &spec.config
                      : !strcmp(s, "--texts") ? &texts_path : !strcmp(s, "--out") ? &out_path
                      : !strcmp(s, "--dna") ? &dna_path : !strcmp(s, "--format") ? &format
                      : !strcmp(s, "--backend") ? &spec.backend : !strcmp(s, "--gelu") ? &spec.gelu
                      : !strcmp(s, "--precision") ? &spec.precision : !strcmp(s, "--decode") ? &spec.decode
                      : NULL;
    if (slot) {
      in_images = 0;
      if (i + 1 >= argc) {
        cl_cli_fail("embed: %s needs a value", s);
        free(images);
        return 2;
      }
      *slot = argv[++i];
    } else if (!strcmp(s, "--images")) {
      in_images = 1;
    } else if (in_images && s[0] != '-') {
      images[nimg++] = s;
    } else {
      cl_cli_fail("embed: unexpected argument %s", s);
      free(images);
      return cl_cli_usage("embed");
    }
  }
  if (!spec.path || !out_path) {
    cl_cli_fail("embed: --model and --out are required");
    free(images);
    return cl_cli_usage("embed");
  }
  cl_error e;
  char *tbuf = NULL, *sbuf = NULL, **texts = NULL, **seqs = NULL;
  int ntext = 0, nseq = 0, rc = 1;
  cl_encoder *enc = NULL;
  cl_tmap m;
  cl_tmap_init(&m);
  if (texts_path && cl_cli_read_lines(texts_path, &tbuf, &texts, &ntext, &e) != CL_OK) goto done;
  if (dna_path && cl_cli_read_lines(dna_path, &sbuf, &seqs, &nseq, &e) != CL_OK) goto done;
  /* found before loading anything: only a CLIBD model has a DNA tower */
  if (dna_path && !cl_clibd_bundle_is(&spec)) {
    cl_err(&e, CL_EINVAL, "--dna: %s is not a CLIBD model (a DNA tower needs its config.json, \"format\": \"clibd\")",
           spec.path);
    goto done;
  }
  const given in[] = {{"image", "--images", images, nimg},
                      {"text", "--texts", (const char *const *)texts, ntext},
                      {"dna", "--dna", (const char *const *)seqs, nseq}};
  const int nin = (int)(sizeof in / sizeof *in);
  cl_embout_fmt fmt; /* the output's format, checked before anything is encoded */
  int pick;
  if (cl_embout_format(out_path, format, &fmt, &e) != CL_OK || one_matrix(out_path, fmt, in, nin, &pick, &e) != CL_OK)
    goto done;
  if (cl_encoder_open(&spec, &enc, &e) != CL_OK) goto done;
  if (embed_towers(enc, in, nin, &m, &e) != CL_OK) goto done;
  char *meta = embed_meta(enc);
  int wrc = write_out(out_path, fmt, &m, meta, in, nin, &e);
  cJSON_free(meta);
  if (wrc != CL_OK) goto done;
  rc = 0;
done:
  if (rc) cl_cli_fail("%s", e.msg);
  cl_tmap_free(&m);
  cl_encoder_close(enc);
  free(texts);
  free(tbuf);
  free(seqs);
  free(sbuf);
  free(images);
  return rc;
}
