/* clade embed: image and text embeddings of an open_clip checkpoint, as safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_cli.h"
#include "io/cl_safetensors.h"
#include "model/cl_encoder.h"
#include "sched/cl_sched.h"

/* Lines of a text file: one text per line; a final newline adds no empty text. */
static int read_texts(const char *path, char **buf, char ***lines, int *n, cl_error *e) {
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

int cl_cmd_embed(int argc, char **argv) {
  cl_encoder_spec spec = {0};
  const char *texts_path = NULL, *out_path = NULL;
  const char **images = cl_xcalloc((size_t)argc, sizeof(char *));
  int nimg = 0, in_images = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--model") ? &spec.path : !strcmp(s, "--config") ? &spec.config
                      : !strcmp(s, "--texts") ? &texts_path : !strcmp(s, "--out") ? &out_path
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
  if (texts_path && read_texts(texts_path, &tbuf, &texts, &ntext, &e) != CL_OK) goto done;
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
  /* write beside, then rename: a failed run leaves no half-written file */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp%d", out_path, (int)getpid());
  int wrc = cl_st_save(tmp, &m, meta, &e);
  cl_tmap_free(&m);
  if (wrc != CL_OK) {
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, out_path) != 0) {
    unlink(tmp);
    cl_err(&e, CL_EIO, "%s: cannot write", out_path);
    goto done;
  }
  rc = 0;
done:
  if (rc) cl_cli_fail("%s", e.msg);
  cl_encoder_close(enc);
  free(iemb);
  free(temb);
  free(ids);
  free(texts);
  free(tbuf);
  free(images);
  return rc;
}
