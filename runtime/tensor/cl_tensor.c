/* cl_tensor: dtypes and tensor maps. */
#include "cl_tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const struct { cl_dtype t; const char *name; size_t size; } dtypes[] = {
  {CL_F32, "F32", 4}, {CL_F16, "F16", 2}, {CL_BF16, "BF16", 2}, {CL_F64, "F64", 8},
  {CL_I32, "I32", 4}, {CL_I64, "I64", 8}, {CL_U8, "U8", 1}, {CL_I8, "I8", 1},
  {CL_I16, "I16", 2}, {CL_BOOL, "BOOL", 1},
};

size_t cl_dtype_size(cl_dtype t) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (dtypes[i].t == t) return dtypes[i].size;
  return 0;
}

const char *cl_dtype_name(cl_dtype t) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (dtypes[i].t == t) return dtypes[i].name;
  return "?";
}

int cl_dtype_parse(const char *s, cl_dtype *out) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (strcmp(dtypes[i].name, s) == 0) { *out = dtypes[i].t; return 0; }
  return -1;
}

int64_t cl_tensor_numel(const cl_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

size_t cl_tensor_nbytes(const cl_tensor *t) {
  return (size_t)cl_tensor_numel(t) * cl_dtype_size(t->dtype);
}

const char *cl_shape_str(const cl_tensor *t, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < t->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

int cl_shape_eq(const cl_tensor *t, int ndim, const int64_t *shape) {
  if (t->ndim != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] != shape[i]) return 0;
  return 1;
}

float cl_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else { /* subnormal: renormalise */
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) { man <<= 1; exp--; }
      man &= 0x3ff;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

float cl_bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t cl_float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
  if (exp >= 31) return (uint16_t)(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    man |= 0x800000;
    uint32_t shift = (uint32_t)(14 - exp);
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return (uint16_t)h;
}

/* Element i of type T at src, which need not be aligned for T: a safetensors tensor starts
 * wherever its data_offsets say (the loads compile to plain moves). */
#define CL_LOAD(T, src, i) ({ T v_; memcpy(&v_, (const char *)(src) + (size_t)(i) * sizeof(T), sizeof(T)); v_; })

int cl_to_f32(cl_dtype dt, const void *src, float *dst, int64_t n, cl_error *e) {
  switch (dt) {
  case CL_F32: memcpy(dst, src, (size_t)n * 4); break;
  case CL_F16: for (int64_t i = 0; i < n; i++) dst[i] = cl_half_to_float(CL_LOAD(uint16_t, src, i)); break;
  case CL_BF16: for (int64_t i = 0; i < n; i++) dst[i] = cl_bf16_to_float(CL_LOAD(uint16_t, src, i)); break;
  case CL_F64: for (int64_t i = 0; i < n; i++) dst[i] = (float)CL_LOAD(double, src, i); break;
  case CL_I32: for (int64_t i = 0; i < n; i++) dst[i] = (float)CL_LOAD(int32_t, src, i); break;
  case CL_I64: for (int64_t i = 0; i < n; i++) dst[i] = (float)CL_LOAD(int64_t, src, i); break;
  case CL_U8: { const uint8_t *s = src; for (int64_t i = 0; i < n; i++) dst[i] = s[i]; } break;
  default: return cl_err(e, CL_EUNSUP, "cannot convert dtype %s to F32", cl_dtype_name(dt));
  }
  return CL_OK;
}

void cl_tmap_init(cl_tmap *m) { memset(m, 0, sizeof *m); }

void cl_tmap_free(cl_tmap *m) {
  for (int i = 0; i < m->n; i++) free(m->v[i].name);
  free(m->v);
  for (int i = 0; i < m->nblocks; i++) free(m->blocks[i]);
  free(m->blocks);
  if (m->map_addr) munmap(m->map_addr, m->map_len);
  free(m->metadata_json);
  memset(m, 0, sizeof *m);
}

void *cl_tmap_own(cl_tmap *m, void *block) {
  if (m->nblocks == m->capblocks) {
    m->capblocks = m->capblocks ? 2 * m->capblocks : 16;
    m->blocks = realloc(m->blocks, (size_t)m->capblocks * sizeof *m->blocks);
    if (!m->blocks) abort();
  }
  m->blocks[m->nblocks++] = block;
  return block;
}

void cl_tmap_put(cl_tmap *m, const char *name, cl_tensor t) {
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 64;
    m->v = realloc(m->v, (size_t)m->cap * sizeof *m->v);
    if (!m->v) abort();
  }
  m->v[m->n].name = cl_strdup(name);
  m->v[m->n].t = t;
  m->n++;
}

cl_tensor *cl_tmap_put_copy(cl_tmap *m, const char *name, cl_dtype dt, int ndim,
                            const int64_t *shape, const void *data) {
  cl_tensor t = {.dtype = dt, .ndim = ndim};
  for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
  size_t nb = cl_tensor_nbytes(&t);
  t.data = cl_tmap_own(m, cl_xmalloc(nb));
  if (data) memcpy(t.data, data, nb);
  else memset(t.data, 0, nb);
  cl_tmap_put(m, name, t);
  return &m->v[m->n - 1].t;
}

const cl_tensor *cl_tmap_get(const cl_tmap *m, const char *name) {
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->v[i].name, name) == 0) return &m->v[i].t;
  return NULL;
}
