/* cl_wset: expected parameters -> one backend allocation (see cl_weights.h). */
#include "cl_weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cl_wset_add(cl_wset *s, const float **slot, int host, int ndim, const int64_t *shape, const char *name) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 128;
    cl_wparam *v = realloc(s->v, (size_t)s->cap * sizeof *v);
    if (!v) abort();
    s->v = v;
  }
  cl_wparam *p = &s->v[s->n];
  memset(p, 0, sizeof *p);
  p->name = name ? cl_strdup(name) : NULL;
  p->ndim = ndim;
  for (int i = 0; i < ndim && i < 4; i++) p->shape[i] = shape[i];
  p->slot = slot;
  p->host = host;
  return s->n++;
}

int cl_wset_addf(cl_wset *s, const float **slot, int host, int ndim, const int64_t *shape, const char *fmt, ...) {
  char name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return cl_wset_add(s, slot, host, ndim, shape, name);
}

float *cl_wset_host(const cl_wset *s, int i) { return s->host + s->v[i].off; }

void cl_wset_free(cl_wset *s) {
  for (int i = 0; i < s->n; i++) free(s->v[i].name);
  free(s->v);
  free(s->host);
  memset(s, 0, sizeof *s);
}

static int64_t numel(const cl_wparam *p) {
  int64_t n = 1;
  for (int i = 0; i < p->ndim; i++) n *= p->shape[i];
  return n;
}

static int is_float(cl_dtype t) { return t == CL_F32 || t == CL_F16 || t == CL_BF16 || t == CL_F64; }

static int has_param(const cl_wset *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (s->v[i].name && !strcmp(s->v[i].name, name)) return 1;
  return 0;
}

int cl_wset_check(cl_wset *s, const cl_tmap *m, const char *const *prefixes, const char *const *tolerated,
                  char **ignored, cl_error *e) {
  for (int i = 0; i < s->n; i++) {
    cl_wparam *p = &s->v[i];
    if (!p->name) continue;
    const cl_tensor *t = cl_tmap_get(m, p->name);
    if (!t) return cl_err(e, CL_ESHAPE, "missing key %s", p->name);
    char want[96], got[96];
    if (!cl_shape_eq(t, p->ndim, p->shape)) {
      cl_tensor w = {.ndim = p->ndim};
      memcpy(w.shape, p->shape, sizeof p->shape);
      return cl_err(e, CL_ESHAPE, "%s: expected %s, got %s (does the config match the checkpoint?)", p->name,
                    cl_shape_str(&w, want, sizeof want), cl_shape_str(t, got, sizeof got));
    }
    if (!is_float(t->dtype))
      return cl_err(e, CL_EFORMAT, "%s: dtype %s, expected a float dtype (F32, F16, BF16, F64)", p->name,
                    cl_dtype_name(t->dtype));
    p->t = t;
  }
  for (int i = 0; prefixes && i < m->n; i++) {
    const char *k = m->v[i].name;
    size_t plen = 0;
    int mine = 0;
    for (const char *const *pf = prefixes; *pf && !mine; pf++)
      if (!strncmp(k, *pf, strlen(*pf))) plen = strlen(*pf), mine = 1;
    if (!mine || has_param(s, k)) continue;
    int ok = 0;
    for (const char *const *tl = tolerated; tl && *tl && !ok; tl++) ok = strstr(k + plen, *tl) != NULL;
    if (!ok) return cl_err(e, CL_ESHAPE, "unexpected key %s (not part of a model with this config)", k);
    if (ignored) {
      char *old = *ignored;
      *ignored = old ? cl_asprintf("%s, %s", old, k) : cl_strdup(k);
      free(old);
    }
  }
  return CL_OK;
}

int cl_wset_load(cl_wset *s, cl_backend *be, int (*fixup)(void *ud, cl_wset *s, cl_error *e), void *ud,
                 float **weights, cl_error *e) {
  *weights = NULL;
  size_t off = 0;
  for (int pass = 0; pass < 2; pass++) { /* device parameters first, then host-only ones */
    for (int i = 0; i < s->n; i++) {
      if (s->v[i].host != pass) continue;
      s->v[i].off = off;
      off += ((size_t)numel(&s->v[i]) + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    }
    if (pass == 0) s->ndevice = off;
  }
  s->host = calloc(off ? off : 1, sizeof(float));
  if (!s->host) return cl_err(e, CL_ENOMEM, "cannot allocate %zu MB to convert the weights", off * 4 >> 20);
  for (int i = 0; i < s->n; i++) {
    const cl_wparam *p = &s->v[i];
    if (p->t && cl_to_f32(p->t->dtype, p->t->data, s->host + p->off, numel(p), e))
      return cl_err_wrap(e, "%s", p->name);
  }
  int rc = fixup ? fixup(ud, s, e) : CL_OK;
  if (rc) return rc;
  if ((rc = be->alloc(be, (s->ndevice ? s->ndevice : 1) * sizeof(float), (void **)weights, e))) return rc;
  if ((rc = be->upload(be, *weights, s->host, s->ndevice * sizeof(float), e))) {
    be->free(be, *weights);
    *weights = NULL;
    return rc;
  }
  for (int i = 0; i < s->n; i++)
    if (s->v[i].slot && !s->v[i].host) *s->v[i].slot = *weights + s->v[i].off;
  free(s->host);
  s->host = NULL;
  return CL_OK;
}

void cl_wset_lora_merge(float *w, const float *b, const float *a, int n, int k, int r) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < k; j++) {
      float acc = 0.0f;
      for (int q = 0; q < r; q++) acc += b[(size_t)i * r + q] * a[(size_t)q * k + j];
      w[(size_t)i * k + j] += acc;
    }
}

int cl_arena_carve(cl_arena *a, cl_backend *be, int n, const size_t *sizes, float **const *bufs, cl_error *e) {
  size_t need = 0;
  for (int i = 0; i < n; i++) need += (sizes[i] + 15) & ~(size_t)15;
  if (need > a->cap) {
    be->free(be, a->base);
    a->base = NULL, a->cap = 0;
    int rc = be->alloc(be, need * sizeof(float), (void **)&a->base, e);
    if (rc) return rc;
    a->cap = need;
  }
  float *p = a->base;
  for (int i = 0; i < n; i++) *bufs[i] = p, p += (sizes[i] + 15) & ~(size_t)15;
  return CL_OK;
}

int32_t *cl_arena_idx(cl_arena *a, size_t n, cl_error *e) {
  if (n > a->idx_cap) {
    free(a->idx);
    a->idx = malloc(n * sizeof *a->idx);
    a->idx_cap = a->idx ? n : 0;
    if (!a->idx) cl_err(e, CL_ENOMEM, "out of memory (%zu indices)", n);
  }
  return a->idx;
}

void cl_arena_free(cl_arena *a, cl_backend *be) {
  if (a->base) be->free(be, a->base);
  free(a->idx);
  memset(a, 0, sizeof *a);
}
