/* clade embed: image and text embeddings of an open_clip checkpoint, or image, text and DNA
 * embeddings of a CLIBD checkpoint (config.json with "format": "clibd"), as safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_cli.h"
#include "io/cl_safetensors.h"
#include "model/cl_clibd.h"
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

typedef struct inputs {
  const char **images;
  int nimg;
  char **texts, **seqs;
  int ntext, nseq;
} inputs;

/* A CLIBD model: its towers' raw outputs (image_embeddings, text_embeddings + text_tokens
 * [M, max_length], dna_embeddings + dna_tokens [N, 133]) for the towers the inputs need. */
static int embed_clibd(const cl_encoder_spec *spec, const inputs *in, const char *out_path, cl_error *e) {
  if (spec->gelu) return cl_err(e, CL_EINVAL, "--gelu: a CLIBD model's activations are fixed by its config");
  if (spec->decode && strcmp(spec->decode, "full"))
    return cl_err(e, CL_EUNSUP, "--decode %s: CLIBD's image transform decodes every pixel (full)", spec->decode);
  const int needs = (in->nimg ? CL_CLIBD_IMAGE : 0) | (in->ntext ? CL_CLIBD_TEXT : 0) | (in->nseq ? CL_CLIBD_DNA : 0);
  cl_backend *be = NULL;
  cl_clibd *b = NULL;
  char name[16], prec[16], hash[41];
  cl_tmap m;
  cl_tmap_init(&m);
  float *emb = NULL;
  int32_t *ids = NULL;
  int rc = cl_encoder_backend(spec->backend, spec->precision, &be, name, prec, spec->quiet, e);
  if (!rc) rc = cl_clibd_open(spec->path, spec->config, needs, be, spec->quiet, &b, e);
  if (!rc) rc = cl_hash_file(b->checkpoint, hash, e);
  if (!rc && b->image) {
    const int n = in->nimg, D = cl_clibd_image_dim(b->image);
    emb = cl_xmalloc((size_t)(n ? n : 1) * D * sizeof *emb);
    rc = cl_clibd_image_encode_files(b->image, in->images, n, emb, e);
    if (!rc) cl_tmap_put_copy(&m, "image_embeddings", CL_F32, 2, (int64_t[]){n, D}, emb);
    free(emb);
  }
  if (!rc && b->text) {
    const int n = in->ntext, D = cl_clibd_text_dim(b->text), L = cl_clibd_text_length(b->text);
    emb = cl_xmalloc((size_t)(n ? n : 1) * D * sizeof *emb);
    ids = cl_xmalloc((size_t)(n ? n : 1) * L * sizeof *ids);
    rc = cl_clibd_text_encode(b->text, (const char *const *)in->texts, n, emb, ids, NULL, NULL, e);
    if (!rc) cl_tmap_put_copy(&m, "text_embeddings", CL_F32, 2, (int64_t[]){n, D}, emb);
    if (!rc) cl_tmap_put_copy(&m, "text_tokens", CL_I32, 2, (int64_t[]){n, L}, ids);
    free(emb), free(ids);
  }
  if (!rc && b->dna) {
    const int n = in->nseq, D = cl_clibd_dna_dim(b->dna), L = cl_clibd_dna_ntokens(b->dna);
    emb = cl_xmalloc((size_t)(n ? n : 1) * D * sizeof *emb);
    ids = cl_xmalloc((size_t)(n ? n : 1) * L * sizeof *ids);
    rc = cl_clibd_dna_encode(b->dna, (const char *const *)in->seqs, n, emb, ids, e);
    if (!rc) cl_tmap_put_copy(&m, "dna_embeddings", CL_F32, 2, (int64_t[]){n, D}, emb);
    if (!rc) cl_tmap_put_copy(&m, "dna_tokens", CL_I32, 2, (int64_t[]){n, L}, ids);
    free(emb), free(ids);
  }
  if (!rc) {
    cl_tmap_put_copy(&m, "logit_scale", CL_F32, 0, NULL, &b->logit_scale);
    char meta[256];
    snprintf(meta, sizeof meta,
             "{\"checkpoint_hash\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\",\"decode\":\"full\",\"model\":\"clibd\"}",
             hash, name, prec);
    rc = save(out_path, &m, meta, e);
  }
  cl_tmap_free(&m);
  cl_clibd_close(b);
  cl_backend_destroy(be);
  return rc;
}

int cl_cmd_embed(int argc, char **argv) {
  cl_encoder_spec spec = {0};
  const char *texts_path = NULL, *dna_path = NULL, *out_path = NULL;
  const char **images = cl_xcalloc((size_t)argc, sizeof(char *));
  int nimg = 0, in_images = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--model") ? &spec.path : !strcmp(s, "--config") ? &spec.config
                      : !strcmp(s, "--texts") ? &texts_path : !strcmp(s, "--out") ? &out_path
                      : !strcmp(s, "--dna") ? &dna_path
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
  char *tbuf = NULL;
  char **texts = NULL;
  int ntext = 0;
  cl_encoder *enc = NULL;
  float *iemb = NULL, *temb = NULL;
  int32_t *ids = NULL;
  int rc = 1;
  char *sbuf = NULL, **seqs = NULL;
  int nseq = 0;
  if (texts_path && cl_cli_read_lines(texts_path, &tbuf, &texts, &ntext, &e) != CL_OK) goto done;
  if (dna_path && cl_cli_read_lines(dna_path, &sbuf, &seqs, &nseq, &e) != CL_OK) goto done;
  char ckpt[4096], cfgp[4200];
  if (cl_clibd_resolve(spec.path, spec.config, ckpt, sizeof ckpt, cfgp, sizeof cfgp, NULL) == CL_OK &&
      cl_clibd_config_is(cfgp)) {
    const inputs in = {images, nimg, texts, seqs, ntext, nseq};
    rc = embed_clibd(&spec, &in, out_path, &e) != CL_OK;
    goto done;
  }
  if (dna_path) {
    cl_err(&e, CL_EINVAL, "--dna: %s is not a CLIBD model (a DNA tower needs its config.json, \"format\": \"clibd\")",
           spec.path);
    goto done;
  }
  if (cl_encoder_open(&spec, &enc, &e) != CL_OK) goto done;
  int D = enc->cfg.embed_dim, C = enc->cfg.text.context_length;
  iemb = cl_xmalloc((size_t)(nimg ? nimg : 1) * D * sizeof(float));
  temb = cl_xmalloc((size_t)(ntext ? ntext : 1) * D * sizeof(float));
  ids = cl_xmalloc((size_t)(ntext ? ntext : 1) * C * sizeof(int32_t));
  cl_sched_opts so = {.progress = CL_PROGRESS_OFF}; /* no cache: embed always computes */
  cl_sched_stats st = {0};
  if (nimg && cl_sched_embed(enc, "image", &so, images, nimg, iemb, &st, &e) != CL_OK) goto done;
  if (ntext && cl_encoder_texts(enc, (const char *const *)texts, ntext, temb, ids, &e) != CL_OK) goto done;
  cl_tmap m;
  cl_tmap_init(&m);
  cl_tmap_put_copy(&m, "image_embeddings", CL_F32, 2, (int64_t[]){nimg, D}, iemb);
  cl_tmap_put_copy(&m, "text_embeddings", CL_F32, 2, (int64_t[]){ntext, D}, temb);
  cl_tmap_put_copy(&m, "text_tokens", CL_I32, 2, (int64_t[]){ntext, C}, ids);
  float ls = cl_clip_logit_scale(enc->clip);
  cl_tmap_put_copy(&m, "logit_scale", CL_F32, 0, NULL, &ls);
  char meta[256];
  snprintf(meta, sizeof meta,
           "{\"checkpoint_hash\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\",\"decode\":\"%s\"}", enc->hash,
           enc->backend_name, enc->precision, cl_img_decode_name(enc->decode));
  int wrc = save(out_path, &m, meta, &e);
  cl_tmap_free(&m);
  if (wrc != CL_OK) goto done;
  rc = 0;
done:
  if (rc) cl_cli_fail("%s", e.msg);
  cl_encoder_close(enc);
  free(iemb);
  free(temb);
  free(ids);
  free(texts);
  free(tbuf);
  free(seqs);
  free(sbuf);
  free(images);
  return rc;
}
