/* cl_npy: the format is "\x93NUMPY", a major and minor version byte, a header length
 * (uint16 little-endian in 1.0, uint32 in 2.0/3.0), then the header: a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces to end in
 * '\n', then the raw data. */
#include "cl_npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* NumPy's descr for each dtype clade reads and writes ('|' for single bytes). */
static const struct {
  const char *descr;
  cl_dtype dt;
} npy_dtypes[] = {
    {"<f4", CL_F32}, {"<f2", CL_F16}, {"<f8", CL_F64}, {"<i4", CL_I32}, {"<i8", CL_I64},
    {"|u1", CL_U8},  {"|i1", CL_I8},  {"<i2", CL_I16}, {"|b1", CL_BOOL},
};
#define NPY_NDTYPES (int)(sizeof npy_dtypes / sizeof npy_dtypes[0])

static int npy_dtype_from_descr(const char *s, cl_dtype *out) {
  /* NumPy also writes '<u1'/'<i1'/'<b1' spellings of single-byte dtypes in some versions */
  char canon[4] = {0};
  if (strlen(s) != 3) return -1;
  memcpy(canon, s, 3);
  if (canon[2] == '1' && (canon[0] == '<' || canon[0] == '=')) canon[0] = '|';
  for (int i = 0; i < NPY_NDTYPES; i++)
    if (strcmp(canon, npy_dtypes[i].descr) == 0) {
      *out = npy_dtypes[i].dt;
      return 0;
    }
  return -1;
}

/* ---- the header's dict literal ---- */
typedef struct {
  const char *p, *end;
} npy_lex;

static void npy_ws(npy_lex *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}
static int npy_eat(npy_lex *l, char c) {
  npy_ws(l);
  if (l->p < l->end && *l->p == c) {
    l->p++;
    return 1;
  }
  return 0;
}
/* A quoted string without escapes (all NumPy writes in these headers), into buf. */
static int npy_str(npy_lex *l, char *buf, size_t n) {
  npy_ws(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return -1;
  char q = *l->p++;
  size_t k = 0;
  while (l->p < l->end && *l->p != q) {
    if (*l->p == '\\' || k + 1 >= n) return -1;
    buf[k++] = *l->p++;
  }
  if (l->p >= l->end) return -1;
  l->p++;
  buf[k] = 0;
  return 0;
}
static int npy_word(npy_lex *l, const char *w) {
  npy_ws(l);
  size_t n = strlen(w);
  if ((size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0) {
    l->p += n;
    return 1;
  }
  return 0;
}

static int npy_parse_header(const char *path, const char *h, size_t hlen, cl_tensor *t, cl_error *e) {
  npy_lex l = {h, h + hlen};
  int have_descr = 0, have_fo = 0, have_shape = 0;
  if (!npy_eat(&l, '{')) return cl_err(e, CL_EFORMAT, "%s: .npy header is not a dict literal", path);
  while (!npy_eat(&l, '}')) {
    char key[32], val[64];
    if (npy_str(&l, key, sizeof key) != 0 || !npy_eat(&l, ':'))
      return cl_err(e, CL_EFORMAT, "%s: .npy header: expected a quoted key and ':' at byte %td", path, l.p - h);
    if (strcmp(key, "descr") == 0) {
      if (npy_str(&l, val, sizeof val) != 0)
        return cl_err(e, CL_EUNSUP, "%s: .npy dtype is not a simple type string (structured dtypes are not read)", path);
      if (npy_dtype_from_descr(val, &t->dtype) != 0)
        return cl_err(e, CL_EUNSUP,
                      "%s: .npy dtype '%s' is not read (supported: <f4 <f2 <f8 <i1 <i2 <i4 <i8 |u1 |b1, little-endian)",
                      path, val);
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (npy_word(&l, "True"))
        return cl_err(e, CL_EUNSUP, "%s: .npy array is in Fortran order (fortran_order True); only C order is read",
                      path);
      if (!npy_word(&l, "False"))
        return cl_err(e, CL_EFORMAT, "%s: .npy header: fortran_order is neither True nor False", path);
      have_fo = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (!npy_eat(&l, '(')) return cl_err(e, CL_EFORMAT, "%s: .npy header: shape is not a tuple", path);
      t->ndim = 0;
      while (!npy_eat(&l, ')')) {
        npy_ws(&l);
        if (l.p >= l.end || *l.p < '0' || *l.p > '9')
          return cl_err(e, CL_EFORMAT, "%s: .npy header: shape holds something other than integers", path);
        if (t->ndim == CL_MAXDIM)
          return cl_err(e, CL_EUNSUP, "%s: .npy array has more than %d dimensions", path, CL_MAXDIM);
        int64_t v = 0;
        while (l.p < l.end && *l.p >= '0' && *l.p <= '9') {
          if (v > ((INT64_C(1) << 62) - 10) / 10)
            return cl_err(e, CL_EFORMAT, "%s: .npy header: shape dimension %d is too large", path, t->ndim);
          v = v * 10 + (*l.p++ - '0');
        }
        t->shape[t->ndim++] = v;
        if (!npy_eat(&l, ',')) {
          if (!npy_eat(&l, ')')) return cl_err(e, CL_EFORMAT, "%s: .npy header: malformed shape tuple", path);
          break;
        }
      }
      have_shape = 1;
    } else {
      return cl_err(e, CL_EUNSUP, "%s: .npy header has an unknown key '%s'", path, key);
    }
    if (!npy_eat(&l, ',')) {
      if (!npy_eat(&l, '}')) return cl_err(e, CL_EFORMAT, "%s: .npy header: expected ',' or '}' at byte %td", path, l.p - h);
      break;
    }
  }
  npy_ws(&l);
  if (l.p != l.end) return cl_err(e, CL_EFORMAT, "%s: .npy header: text after the dict", path);
  if (!have_descr || !have_fo || !have_shape)
    return cl_err(e, CL_EFORMAT, "%s: .npy header lacks '%s'", path,
                  !have_descr ? "descr" : !have_fo ? "fortran_order" : "shape");
  return CL_OK;
}

int cl_npy_open(const char *path, cl_npy *out, cl_error *e) {
  memset(out, 0, sizeof *out);
  void *addr;
  size_t len;
  CL_TRY(cl_map_file(path, 10, ".npy", &addr, &len, e));
  const unsigned char *p = addr;
  int rc = CL_OK;
  cl_tensor t = {0};
  if (memcmp(p, "\x93NUMPY", 6) != 0) {
    rc = cl_err(e, CL_EFORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    goto fail;
  }
  size_t hoff, hlen;
  if (p[6] == 1) {
    hoff = 10;
    hlen = (size_t)p[8] | (size_t)p[9] << 8;
  } else if (p[6] == 2 || p[6] == 3) {
    if (len < 12) {
      rc = cl_err(e, CL_EFORMAT, "%s: truncated .npy file (%zu bytes)", path, len);
      goto fail;
    }
    hoff = 12;
    hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
  } else {
    rc = cl_err(e, CL_EUNSUP, "%s: .npy format version %d.%d is not read (1.0, 2.0, 3.0 are)", path, p[6], p[7]);
    goto fail;
  }
  if (hlen > len - hoff) {
    rc = cl_err(e, CL_EFORMAT, "%s: .npy header length %zu runs past the end of the %zu-byte file (truncated?)", path,
                hlen, len);
    goto fail;
  }
  rc = npy_parse_header(path, (const char *)p + hoff, hlen, &t, e);
  if (rc) goto fail;
  size_t nbytes, doff = hoff + hlen;
  if (cl_shape_bytes(t.ndim, t.shape, cl_dtype_size(t.dtype), &nbytes) != 0) {
    char s[200];
    rc = cl_err(e, CL_EFORMAT, "%s: .npy shape %s is too large (its byte count overflows)", path,
                cl_shape_str(&t, s, sizeof s));
    goto fail;
  }
  if (nbytes != len - doff) {
    char s[200];
    rc = cl_err(e, CL_EFORMAT, "%s: .npy %s %s needs %zu data bytes, the file has %zu after its header%s", path,
                cl_dtype_name(t.dtype), cl_shape_str(&t, s, sizeof s), nbytes, len - doff,
                nbytes > len - doff ? " (truncated)" : "");
    goto fail;
  }
  if (doff % cl_dtype_size(t.dtype) != 0) {
    rc = cl_err(e, CL_EUNSUP, "%s: .npy data starts at byte %zu, not aligned to its %zu-byte elements", path, doff,
                cl_dtype_size(t.dtype));
    goto fail;
  }
  t.data = (void *)(p + doff);
  out->t = t;
  out->map_addr = addr;
  out->map_len = len;
  return CL_OK;
fail:
  munmap(addr, len);
  return rc;
}

void cl_npy_close(cl_npy *a) {
  if (a->map_addr) munmap(a->map_addr, a->map_len);
  memset(a, 0, sizeof *a);
}

size_t cl_npy_header(const cl_tensor *t, unsigned char *out, size_t cap) {
  const char *descr = NULL;
  for (int i = 0; i < NPY_NDTYPES; i++)
    if (npy_dtypes[i].dt == t->dtype) descr = npy_dtypes[i].descr;
  if (!descr) return 0;
  char h[512];
  int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int d = 0; d < t->ndim; d++)
    n += snprintf(h + n, sizeof h - (size_t)n, "%lld,%s", (long long)t->shape[d],
                  d + 1 < t->ndim ? " " : "");
  if (t->ndim > 1) n--; /* NumPy writes (3, 4) but (5,) */
  n += snprintf(h + n, sizeof h - (size_t)n, "), }");
  /* pad with spaces and a final '\n' so that the data starts on a multiple of 64 */
  const size_t hoff = 10, pad = (64 - (hoff + (size_t)n + 1) % 64) % 64, hlen = (size_t)n + pad + 1;
  if (hlen > 65535 || hoff + hlen > cap) return 0;
  const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                                 (unsigned char)(hlen >> 8)};
  memcpy(out, pre, hoff);
  memcpy(out + hoff, h, (size_t)n);
  memset(out + hoff + n, ' ', pad);
  out[hoff + hlen - 1] = '\n';
  return hoff + hlen;
}

int cl_npy_save(const char *path, const cl_tensor *t, cl_error *e) {
  size_t nbytes;
  unsigned char h[640];
  const size_t hl = cl_npy_header(t, h, sizeof h);
  if (!hl) return cl_err(e, CL_EUNSUP, "%s: NumPy has no dtype for %s", path, cl_dtype_name(t->dtype));
  if (cl_shape_bytes(t->ndim, t->shape, cl_dtype_size(t->dtype), &nbytes) != 0)
    return cl_err(e, CL_EINVAL, "%s: array too large to write", path);
  FILE *f = fopen(path, "wb");
  if (!f) return cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  int ok = fwrite(h, 1, hl, f) == hl && (nbytes == 0 || fwrite(t->data, 1, nbytes, f) == nbytes);
  if (fclose(f) != 0 || !ok) return cl_err(e, CL_EIO, "%s: write failed", path);
  return CL_OK;
}
