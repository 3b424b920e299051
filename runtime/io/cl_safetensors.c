/* cl_safetensors: the format is an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}}, then raw little-endian data. */
#include "cl_safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int cl_st_load(const char *path, cl_tmap *m, cl_error *e) {
  cl_tmap_init(m);
  void *addr;
  size_t len;
  CL_TRY(cl_map_file(path, 8, "safetensors", &addr, &len, e));
  m->map_addr = addr;
  m->map_len = len;
  const unsigned char *p = addr;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
  if (hlen > len - 8) {
    cl_tmap_free(m);
    return cl_err(e, CL_EFORMAT, "%s: header length %llu exceeds file size %zu (truncated?)", path,
                  (unsigned long long)hlen, len);
  }
  cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    cl_tmap_free(m);
    return cl_err(e, CL_EFORMAT, "%s: header is not a JSON object", path);
  }
  const unsigned char *base = p + 8 + hlen;
  size_t datalen = len - 8 - (size_t)hlen;
  int rc = CL_OK;
  for (cJSON *it = root->child; it; it = it->next) {
    if (strcmp(it->string, "__metadata__") == 0) { /* the last one, if repeated */
      free(m->metadata_json);
      m->metadata_json = cJSON_PrintUnformatted(it);
      continue;
    }
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    cl_tensor t = {0};
    if (!cJSON_IsString(dt) || cl_dtype_parse(dt->valuestring, &t.dtype) != 0) {
      rc = cl_err(e, CL_EFORMAT, "%s: tensor '%s': missing or unknown dtype", path, it->string);
      break;
    }
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > CL_MAXDIM) {
      rc = cl_err(e, CL_EFORMAT, "%s: tensor '%s': bad shape", path, it->string);
      break;
    }
    t.ndim = cJSON_GetArraySize(sh);
    for (int i = 0; i < t.ndim; i++) {
      cJSON *d = cJSON_GetArrayItem(sh, i);
      /* checked as a double before any cast: 1e30 or 2.5 would be undefined or wrong as int64 */
      if (!cJSON_IsNumber(d) || !(d->valuedouble >= 0 && d->valuedouble < 0x1p62) ||
          d->valuedouble != floor(d->valuedouble)) {
        char *v = cJSON_PrintUnformatted(d);
        rc = cl_err(e, CL_EFORMAT, "%s: tensor '%s': shape dimension %d is %.64s, not an integer in 0..2^62", path,
                    it->string, i, v ? v : "?");
        free(v);
        goto done;
      }
      t.shape[i] = (int64_t)d->valuedouble;
    }
    size_t nbytes;
    if (cl_shape_bytes(t.ndim, t.shape, cl_dtype_size(t.dtype), &nbytes) != 0) {
      char s[200];
      rc = cl_err(e, CL_EFORMAT, "%s: tensor '%s': %s %s is too large (its byte count overflows)", path, it->string,
                  cl_dtype_name(t.dtype), cl_shape_str(&t, s, sizeof s));
      break;
    }
    cJSON *oa = cJSON_GetArrayItem(off, 0), *ob = cJSON_GetArrayItem(off, 1);
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !cJSON_IsNumber(oa) || !cJSON_IsNumber(ob) ||
        oa->valuedouble != floor(oa->valuedouble) || ob->valuedouble != floor(ob->valuedouble)) {
      rc = cl_err(e, CL_EFORMAT, "%s: tensor '%s': data_offsets is not a pair of integers", path, it->string);
      break;
    }
    double a = oa->valuedouble, b = ob->valuedouble;
    if (!(a >= 0 && b >= a && b <= (double)datalen)) {
      rc = cl_err(e, CL_EFORMAT, "%s: tensor '%s': data_offsets [%.0f,%.0f] outside the %zu data bytes (truncated?)",
                  path, it->string, a, b, datalen);
      break;
    }
    if ((size_t)b - (size_t)a != nbytes) {
      char s[200];
      rc = cl_err(e, CL_EFORMAT, "%s: tensor '%s': %s %s needs %zu bytes, offsets give %.0f", path,
                  it->string, cl_dtype_name(t.dtype), cl_shape_str(&t, s, sizeof s), nbytes, b - a);
      break;
    }
    t.data = (void *)(base + (size_t)a);
    cl_tmap_put(m, it->string, t);
  }
done:
  cJSON_Delete(root);
  if (rc != CL_OK) cl_tmap_free(m);
  return rc;
}

int cl_st_save(const char *path, const cl_tmap *m, const char *metadata_json, cl_error *e) {
  cJSON *root = cJSON_CreateObject();
  if (metadata_json) {
    cJSON *md = cJSON_Parse(metadata_json);
    if (md) cJSON_AddItemToObject(root, "__metadata__", md);
  }
  size_t off = 0;
  for (int i = 0; i < m->n; i++) {
    const cl_tensor *t = &m->v[i].t;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dtype", cl_dtype_name(t->dtype));
    cJSON *sh = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
    cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
    size_t nb = cl_tensor_nbytes(t);
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + nb)));
    off += nb;
    cJSON_AddItemToObject(root, m->v[i].name, o);
  }
  char *h = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  size_t hl = strlen(h), pad = (8 - hl % 8) % 8;
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(h);
    return cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  }
  uint64_t n = hl + pad;
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(n >> (8 * i));
  int ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(h, 1, hl, f) == hl;
  for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
  for (int i = 0; ok && i < m->n; i++) {
    size_t nb = cl_tensor_nbytes(&m->v[i].t);
    ok = fwrite(m->v[i].t.data, 1, nb, f) == nb;
  }
  free(h);
  if (fclose(f) != 0 || !ok) return cl_err(e, CL_EIO, "%s: write failed", path);
  return CL_OK;
}
