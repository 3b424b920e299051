/* ckpt_testutil: build pickles byte by byte and write them into PyTorch-style zips, so the
 * checkpoint tests can make inputs torch never would (foreign globals, strided views, bad memo
 * indices) without Python. Shared by tests/unit/test_checkpoint_pickle.c and
 * tests/fault/test_checkpoint_faults.c. */
#ifndef CKPT_TESTUTIL_H
#define CKPT_TESTUTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

typedef struct pk {
  unsigned char *b;
  size_t n, cap;
} pk;

static inline void pk_raw(pk *p, const void *d, size_t n) {
  if (p->n + n > p->cap) {
    p->cap = (p->n + n) * 2 + 64;
    p->b = realloc(p->b, p->cap);
    if (!p->b) abort();
  }
  memcpy(p->b + p->n, d, n);
  p->n += n;
}
static inline void pk_op(pk *p, int op) {
  unsigned char c = (unsigned char)op;
  pk_raw(p, &c, 1);
}
static inline void pk_u32(pk *p, uint32_t x) {
  unsigned char b[4] = {(unsigned char)x, (unsigned char)(x >> 8), (unsigned char)(x >> 16), (unsigned char)(x >> 24)};
  pk_raw(p, b, 4);
}
static inline void pk_proto(pk *p, int v) { pk_op(p, 0x80); pk_op(p, v); }
/* BINUNICODE, or SHORT_BINUNICODE when short is set (protocol 4). */
static inline void pk_str_(pk *p, const char *s, int short_) {
  size_t n = strlen(s);
  if (short_ && n < 256) { pk_op(p, 0x8c); pk_op(p, (int)n); }
  else { pk_op(p, 'X'); pk_u32(p, (uint32_t)n); }
  pk_raw(p, s, n);
}
static inline void pk_str(pk *p, const char *s) { pk_str_(p, s, 0); }
static inline void pk_int(pk *p, long v) {
  if (v >= 0 && v < 256) { pk_op(p, 'K'); pk_op(p, (int)v); }
  else if (v >= 0 && v < 65536) { pk_op(p, 'M'); pk_op(p, (int)(v & 255)); pk_op(p, (int)(v >> 8)); }
  else if (v >= INT32_MIN && v <= INT32_MAX) { pk_op(p, 'J'); pk_u32(p, (uint32_t)(int32_t)v); }
  else { /* LONG1 of 8 bytes, as torch writes sizes past 2^31 */
    pk_op(p, 0x8a);
    pk_op(p, 8);
    for (int i = 0; i < 8; i++) pk_op(p, (int)(((uint64_t)v >> (8 * i)) & 0xff));
  }
}
static inline void pk_global(pk *p, const char *mod, const char *name) {
  pk_op(p, 'c');
  pk_raw(p, mod, strlen(mod));
  pk_op(p, '\n');
  pk_raw(p, name, strlen(name));
  pk_op(p, '\n');
}
static inline void pk_tuple_ints(pk *p, int n, const long *v) {
  pk_op(p, '(');
  for (int i = 0; i < n; i++) pk_int(p, v[i]);
  pk_op(p, 't');
}
/* _rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel) persid, offset, size, stride,
 * False, OrderedDict()) as torch writes it (protocol 2 GLOBALs). */
static inline void pk_tensor(pk *p, const char *cls, const char *key, long numel, long offset, int nd,
                             const long *size, const long *stride) {
  pk_global(p, "torch._utils", "_rebuild_tensor_v2");
  pk_op(p, '(');
  pk_op(p, '(');
  pk_str(p, "storage");
  pk_global(p, "torch", cls);
  pk_str(p, key);
  pk_str(p, "cpu");
  pk_int(p, numel);
  pk_op(p, 't');
  pk_op(p, 'Q');
  pk_int(p, offset);
  pk_tuple_ints(p, nd, size);
  pk_tuple_ints(p, nd, stride);
  pk_op(p, 0x89);
  pk_global(p, "collections", "OrderedDict");
  pk_op(p, ')');
  pk_op(p, 'R');
  pk_op(p, 't');
  pk_op(p, 'R');
}

/* Entries of a test zip: name and bytes (the bytes must live until ckpt_write_zip returns). */
typedef struct ckpt_entry {
  const char *name;
  const void *data;
  size_t n;
} ckpt_entry;

/* Writes a zip with the entries stored uncompressed, as torch does. 0 on success. */
static inline int ckpt_write_zip(const char *path, const ckpt_entry *ents, int n) {
  int err = 0;
  zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) return -1;
  for (int i = 0; i < n; i++) {
    zip_source_t *s = zip_source_buffer(z, ents[i].data, ents[i].n, 0);
    zip_int64_t idx = s ? zip_file_add(z, ents[i].name, s, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
      if (s) zip_source_free(s);
      zip_discard(z);
      return -1;
    }
    zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
  }
  return zip_close(z) == 0 ? 0 : -1;
}

/* Read one entry of a zip into a malloc'd buffer (NULL on failure). */
static inline unsigned char *ckpt_read_entry(const char *path, const char *name, size_t *n) {
  int err = 0;
  zip_t *z = zip_open(path, ZIP_RDONLY, &err);
  if (!z) return NULL;
  zip_stat_t st;
  unsigned char *buf = NULL;
  if (zip_stat(z, name, 0, &st) == 0) {
    zip_file_t *f = zip_fopen(z, name, 0);
    buf = malloc(st.size + 1);
    if (!f || zip_fread(f, buf, st.size) != (zip_int64_t)st.size) {
      free(buf);
      buf = NULL;
    }
    if (f) zip_fclose(f);
    *n = st.size;
  }
  zip_discard(z);
  return buf;
}

#endif
