/* cl_embout: three writers behind one call; safetensors through cl_safetensors, .npy through
 * cl_npy, CSV here. */
#include "cl_embout.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io/cl_csvtab.h"
#include "io/cl_npy.h"
#include "io/cl_safetensors.h"

static const struct {
  const char *name, *ext1, *ext2;
} fmts[] = {{"safetensors", ".safetensors", ".st"}, {"npy", ".npy", NULL}, {"csv", ".csv", NULL}};

const char *cl_embout_name(cl_embout_fmt f) { return fmts[f].name; }

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = suf ? strlen(suf) : 0;
  return suf && a >= b && !strcasecmp(s + a - b, suf);
}

int cl_embout_format(const char *path, const char *format, cl_embout_fmt *out, cl_error *e) {
  for (int f = 0; f < 3; f++)
    if (format ? !strcmp(format, fmts[f].name) : ends_with(path, fmts[f].ext1) || ends_with(path, fmts[f].ext2)) {
      *out = (cl_embout_fmt)f;
      return CL_OK;
    }
  if (format) return cl_err(e, CL_EINVAL, "embeddings format '%s': choose safetensors, npy or csv", format);
  *out = CL_EMBOUT_SAFETENSORS;
  return CL_OK;
}


static int write_csv(const char *path, const float *emb, int n, int D, const char *item_col,
                     const char *const *items, cl_error *e) {
  FILE *f = fopen(path, "w");
  if (!f) return cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  cl_csv_write_cell(f, item_col);
  for (int d = 0; d < D; d++) fprintf(f, ",%d", d);
  fputc('\n', f);
  for (int i = 0; i < n; i++) {
    cl_csv_write_cell(f, items[i]);
    for (int d = 0; d < D; d++) fprintf(f, ",%.9g", emb[(size_t)i * D + d]);
    fputc('\n', f);
  }
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return cl_err(e, CL_EIO, "%s: write failed", path);
  return CL_OK;
}

int cl_embout_write(const char *path, cl_embout_fmt f, const char *tensor_name, const float *emb, int n, int D,
                    const char *item_col, const char *const *items, const char *meta_json, cl_error *e) {
  char *tmp = cl_asprintf("%s.tmp%d", path, (int)getpid());
  const float none = 0;
  cl_tensor t = {.dtype = CL_F32, .ndim = 2, .shape = {n, D}, .data = (void *)(n ? emb : &none)};
  int rc;
  if (f == CL_EMBOUT_NPY) {
    rc = cl_npy_save(tmp, &t, e);
  } else if (f == CL_EMBOUT_CSV) {
    rc = write_csv(tmp, emb, n, D, item_col, items, e);
  } else {
    cJSON *md = meta_json ? cJSON_Parse(meta_json) : NULL;
    if (!md) md = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateStringArray(items, n);
    char *s = cJSON_PrintUnformatted(arr); /* safetensors metadata values are strings */
    cJSON_Delete(arr);
    cJSON_AddStringToObject(md, "items", s);
    free(s);
    char *mj = cJSON_PrintUnformatted(md);
    cJSON_Delete(md);
    cl_tmap m;
    cl_tmap_init(&m);
    cl_tmap_put(&m, tensor_name, t);
    rc = cl_st_save(tmp, &m, mj, e);
    cl_tmap_free(&m);
    free(mj);
  }
  if (!rc && rename(tmp, path) != 0) rc = cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}
