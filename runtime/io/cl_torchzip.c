/* cl_torchzip: PyTorch's zip checkpoints (torch.save since 1.6) and the format dispatch.
 * A checkpoint is a zip with one top folder (`archive/` or the file's stem) holding data.pkl (the
 * object, whose tensors name their storages by key) and data/<key> (each storage's raw
 * little-endian bytes, stored uncompressed). Storages are read with zip_fread into blocks the
 * cl_tmap owns; a contiguous tensor points into its storage's block (several may share one),
 * a strided view is copied out into its own block. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <zip.h>

#include "cl_ckpt.h"
#include "cl_pickle.h"
#include "cl_safetensors.h"

/* A state dict's pickle is a few KB per hundred tensors; anything past this is not one. */
#define PKL_MAX ((zip_uint64_t)1 << 30)

typedef struct stor {
  const char *key;
  cl_dtype dt;
  unsigned char *block; /* NULL for an empty storage */
  size_t nbytes;
  int owned; /* handed to the tmap */
} stor;

/* A fixed-size open-addressing string -> int table (keys are borrowed), sized for n inserts. */
typedef struct strtab {
  const char **k;
  int *v;
  size_t cap;
} strtab;

static void tab_init(strtab *t, size_t n) {
  t->cap = 16;
  while (t->cap < 2 * n + 2) t->cap *= 2;
  t->k = cl_xcalloc(t->cap, sizeof *t->k);
  t->v = cl_xcalloc(t->cap, sizeof *t->v);
}

static void tab_free(strtab *t) {
  free(t->k);
  free(t->v);
}

/* The slot for key: *found says whether it was there; a new key is inserted (value 0). */
static int *tab_slot(strtab *t, const char *key, int *found) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *s = (const unsigned char *)key; *s; s++) h = (h ^ *s) * 1099511628211ull;
  size_t i = (size_t)h & (t->cap - 1);
  while (t->k[i] && strcmp(t->k[i], key) != 0) i = (i + 1) & (t->cap - 1);
  *found = t->k[i] != NULL;
  t->k[i] = key;
  return &t->v[i];
}

typedef struct ctx {
  const char *path;
  zip_t *z;
  char folder[256];
  stor *st;
  size_t nst;
  strtab stab;
  cl_tmap *m;
  cl_error *e;
} ctx;

/* Read exactly n bytes of entry idx into buf. */
static int zread(ctx *c, zip_int64_t idx, const char *name, void *buf, size_t n) {
  zip_file_t *f = zip_fopen_index(c->z, (zip_uint64_t)idx, 0);
  if (!f) return cl_err(c->e, CL_EFORMAT, "%s: %s: cannot open entry: %s", c->path, name, zip_strerror(c->z));
  size_t got = 0;
  while (got < n) {
    zip_int64_t r = zip_fread(f, (char *)buf + got, n - got);
    if (r < 0) {
      int rc = cl_err(c->e, CL_EIO, "%s: %s: read failed after %zu of %zu bytes: %s", c->path, name, got, n,
                      zip_file_strerror(f));
      zip_fclose(f);
      return rc;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  zip_fclose(f);
  if (got < n)
    return cl_err(c->e, CL_EFORMAT, "%s: %s: truncated entry (%zu of %zu bytes)", c->path, name, got, n);
  return CL_OK;
}

static int entry_size(ctx *c, zip_int64_t idx, const char *name, zip_uint64_t *size) {
  zip_stat_t s;
  zip_stat_init(&s);
  if (zip_stat_index(c->z, (zip_uint64_t)idx, 0, &s) != 0 || !(s.valid & ZIP_STAT_SIZE))
    return cl_err(c->e, CL_EFORMAT, "%s: %s: cannot stat entry: %s", c->path, name, zip_strerror(c->z));
  *size = s.size;
  return CL_OK;
}

/* Exactly one `<folder>/data.pkl` at the top level. */
static int find_folder(ctx *c) {
  zip_int64_t n = zip_get_num_entries(c->z, 0);
  int found = 0;
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zip_get_name(c->z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
    if (!name) continue;
    const char *slash = strchr(name, '/');
    if (!slash || slash == name || strcmp(slash, "/data.pkl") != 0) continue;
    size_t fl = (size_t)(slash - name);
    if (fl >= sizeof c->folder) return cl_err(c->e, CL_EFORMAT, "%s: top folder name too long", c->path);
    if (found)
      return cl_err(c->e, CL_EFORMAT, "%s: several top folders hold a data.pkl ('%s' and '%.*s')", c->path,
                    c->folder, (int)fl, name);
    memcpy(c->folder, name, fl);
    c->folder[fl] = 0;
    found = 1;
  }
  if (!found)
    return cl_err(c->e, CL_EFORMAT, "%s: zip archive without a <folder>/data.pkl entry: not a PyTorch checkpoint",
                  c->path);
  return CL_OK;
}

static int check_byteorder(ctx *c) {
  char name[300], buf[17] = {0};
  snprintf(name, sizeof name, "%s/byteorder", c->folder);
  zip_int64_t idx = zip_name_locate(c->z, name, ZIP_FL_ENC_RAW);
  if (idx < 0) return CL_OK; /* written since torch 2.1; older files are little-endian */
  zip_uint64_t sz = 0;
  int rc = entry_size(c, idx, name, &sz);
  if (rc) return rc;
  if (sz > 16) return cl_err(c->e, CL_EFORMAT, "%s: %s: %llu bytes, expected 'little'", c->path, name,
                             (unsigned long long)sz);
  if ((rc = zread(c, idx, name, buf, (size_t)sz))) return rc;
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = 0;
  if (strcmp(buf, "little") == 0) return CL_OK;
  if (strcmp(buf, "big") == 0)
    return cl_err(c->e, CL_EUNSUP, "%s: big-endian checkpoint (%s says 'big'): not supported", c->path, name);
  return cl_err(c->e, CL_EFORMAT, "%s: %s: unknown byte order", c->path, name);
}

/* The storage a tensor views, read on first use. */
static int get_storage(ctx *c, const cl_pt_value *sv, const char *tname, stor **out) {
  const char *key = sv->u.storage.key;
  size_t es = cl_dtype_size(sv->u.storage.dtype);
  size_t need = (size_t)sv->u.storage.numel * es; /* no overflow: checked by the pickle reader */
  int found;
  int *slot = tab_slot(&c->stab, key, &found);
  if (found) {
    stor *s = &c->st[*slot];
    if (s->dt != sv->u.storage.dtype || need > s->nbytes)
      return cl_err(c->e, CL_EFORMAT,
                    "%s: tensor '%s': storage '%s' is referenced with another type or size (%s, %zu bytes vs %s x %lld)",
                    c->path, tname, key, cl_dtype_name(s->dt), s->nbytes, cl_dtype_name(sv->u.storage.dtype),
                    (long long)sv->u.storage.numel);
    *out = s;
    return CL_OK;
  }
  char name[400];
  snprintf(name, sizeof name, "%s/data/%s", c->folder, key);
  zip_int64_t idx = zip_name_locate(c->z, name, ZIP_FL_ENC_RAW);
  if (idx < 0)
    return cl_err(c->e, CL_EFORMAT, "%s: tensor '%s': storage entry '%s' is missing", c->path, tname, name);
  zip_uint64_t sz = 0;
  int rc = entry_size(c, idx, name, &sz);
  if (rc) return rc;
  if (sz < need)
    return cl_err(c->e, CL_EFORMAT, "%s: tensor '%s': storage entry '%s' has %llu bytes, needs %zu (%lld x %s)",
                  c->path, tname, name, (unsigned long long)sz, need, (long long)sv->u.storage.numel,
                  cl_dtype_name(sv->u.storage.dtype));
  unsigned char *block = NULL;
  if (need) {
    block = malloc(need);
    if (!block)
      return cl_err(c->e, CL_ENOMEM, "%s: storage '%s': cannot allocate %zu bytes", c->path, key, need);
    if ((rc = zread(c, idx, name, block, need))) {
      free(block);
      return rc;
    }
  }
  *slot = (int)c->nst;
  c->st[c->nst++] = (stor){.key = key, .dt = sv->u.storage.dtype, .block = block, .nbytes = need};
  *out = &c->st[c->nst - 1];
  return CL_OK;
}

/* Copy a strided view out in row-major order; the pickle reader checked it stays in its storage. */
static void gather(unsigned char *o, const unsigned char *src, size_t es, int nd, const int64_t *size,
                   const int64_t *stride) {
  int64_t idx[CL_MAXDIM] = {0};
  int64_t inner = size[nd - 1], istr = stride[nd - 1];
  for (;;) {
    int64_t off = 0;
    for (int d = 0; d < nd - 1; d++) off += idx[d] * stride[d];
    const unsigned char *s = src + (size_t)off * es;
    if (istr == 1) {
      memcpy(o, s, (size_t)inner * es);
      o += (size_t)inner * es;
    } else {
      for (int64_t i = 0; i < inner; i++, o += es) memcpy(o, s + (size_t)(i * istr) * es, es);
    }
    int d = nd - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

static int add_tensor(ctx *c, const char *name, const cl_pt_value *tv) {
  stor *s = NULL;
  int rc = get_storage(c, tv->u.tensor.storage, name, &s);
  if (rc) return rc;
  cl_tensor t = {.dtype = s->dt, .ndim = tv->u.tensor.ndim};
  for (int i = 0; i < t.ndim; i++) t.shape[i] = tv->u.tensor.size[i];
  size_t es = cl_dtype_size(t.dtype), nb = cl_tensor_nbytes(&t);
  if (nb == 0) {
    t.data = cl_tmap_own(c->m, cl_xmalloc(1));
  } else if (cl_pt_tensor_contiguous(tv)) {
    if (!s->owned) {
      cl_tmap_own(c->m, s->block);
      s->owned = 1;
    }
    t.data = s->block + (size_t)tv->u.tensor.offset * es;
  } else {
    unsigned char *dst = malloc(nb);
    if (!dst) return cl_err(c->e, CL_ENOMEM, "%s: tensor '%s': cannot allocate %zu bytes", c->path, name, nb);
    gather(dst, s->block + (size_t)tv->u.tensor.offset * es, es, t.ndim, tv->u.tensor.size,
           tv->u.tensor.stride);
    t.data = cl_tmap_own(c->m, dst);
  }
  cl_tmap_put(c->m, name, t);
  return CL_OK;
}

/* A plain pickle value (None, bool, number, string, and lists/dicts of them) as JSON, or NULL. */
static cJSON *plain_json(const cl_pt_value *v, int depth) {
  if (depth > 16) return NULL;
  switch (v->kind) {
  case CL_PT_NONE: return cJSON_CreateNull();
  case CL_PT_BOOL: return cJSON_CreateBool(v->u.b);
  case CL_PT_INT: return cJSON_CreateNumber(v->u.i.big ? v->u.i.approx : (double)v->u.i.v);
  case CL_PT_FLOAT: return cJSON_CreateNumber(v->u.f);
  case CL_PT_STR: return strlen(v->u.str.s) == v->u.str.n ? cJSON_CreateString(v->u.str.s) : NULL;
  case CL_PT_TUPLE:
  case CL_PT_LIST: {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->u.seq.n; i++) {
      cJSON *x = plain_json(v->u.seq.v[i], depth + 1);
      if (!x) return cJSON_Delete(a), NULL;
      cJSON_AddItemToArray(a, x);
    }
    return a;
  }
  case CL_PT_DICT: {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i + 1 < v->u.seq.n; i += 2) {
      const cl_pt_value *k = v->u.seq.v[i];
      cJSON *x = k->kind == CL_PT_STR ? plain_json(v->u.seq.v[i + 1], depth + 1) : NULL;
      if (x) cJSON_AddItemToObject(o, k->u.str.s, x);
    }
    return o;
  }
  default: return NULL;
  }
}

/* The plain entries beside a nested state dict (BarcodeBERT's bert_config, an epoch number)
 * become the map's metadata JSON, for loaders that need them. */
static void keep_plain_entries(cl_tmap *m, const cl_pt_value *root) {
  cJSON *o = cJSON_CreateObject();
  for (size_t i = 0; i + 1 < root->u.seq.n; i += 2) {
    const cl_pt_value *k = root->u.seq.v[i];
    cJSON *x = k->kind == CL_PT_STR ? plain_json(root->u.seq.v[i + 1], 0) : NULL;
    if (x) cJSON_AddItemToObject(o, k->u.str.s, x);
  }
  free(m->metadata_json);
  m->metadata_json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
}

/* open_clip's rule: a training checkpoint holds {"state_dict": ...}; keys saved from a
 * DistributedDataParallel model start with "module." and lose it when the first key has it. */
static int load_state_dict(ctx *c, const cl_pt_value *root) {
  if (root->kind != CL_PT_DICT)
    return cl_err(c->e, CL_EFORMAT, "%s: %s/data.pkl holds a %s, not a dict (state dict)", c->path, c->folder,
                  cl_pt_kind_name(root->kind));
  const cl_pt_value *sd = cl_pt_dict_get(root, "state_dict");
  if (sd && sd->kind != CL_PT_DICT)
    return cl_err(c->e, CL_EFORMAT, "%s: 'state_dict' is a %s, not a dict", c->path, cl_pt_kind_name(sd->kind));
  if (!sd) { /* BarcodeBERT's own format: {"model": state dict, "bert_config": {...}, ...} */
    const cl_pt_value *md = cl_pt_dict_get(root, "model");
    if (md && md->kind == CL_PT_DICT) sd = md;
  }
  if (!sd) sd = root;
  if (sd != root) keep_plain_entries(c->m, root);
  size_t n = sd->u.seq.n / 2;
  int strip = n > 0 && sd->u.seq.v[0]->kind == CL_PT_STR && strncmp(sd->u.seq.v[0]->u.str.s, "module.", 7) == 0;
  strtab names;
  tab_init(&names, n);
  tab_init(&c->stab, n);
  c->st = cl_xcalloc(n + 1, sizeof *c->st);
  int rc = CL_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    const cl_pt_value *k = sd->u.seq.v[2 * i], *v = sd->u.seq.v[2 * i + 1];
    if (k->kind != CL_PT_STR || strlen(k->u.str.s) != k->u.str.n) {
      rc = cl_err(c->e, CL_EFORMAT, "%s: state dict entry %zu has a %s key", c->path, i,
                  k->kind == CL_PT_STR ? "NUL-containing" : cl_pt_kind_name(k->kind));
      break;
    }
    const char *name = k->u.str.s;
    if (strip && strncmp(name, "module.", 7) == 0) name += 7;
    if (v->kind != CL_PT_TENSOR) {
      rc = cl_err(c->e, CL_EUNSUP, "%s: state dict key '%s' is a %s, not a tensor", c->path, name,
                  cl_pt_kind_name(v->kind));
      break;
    }
    int found;
    tab_slot(&names, name, &found);
    if (found) {
      rc = cl_err(c->e, CL_EFORMAT, "%s: state dict key '%s' appears twice", c->path, name);
      break;
    }
    rc = add_tensor(c, name, v);
  }
  tab_free(&names);
  return rc;
}

static int zip_fail(const char *path, int zerr, cl_error *e) {
  zip_error_t ze;
  zip_error_init_with_code(&ze, zerr);
  int rc = cl_err(e, zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ ? CL_EIO : CL_EFORMAT,
                  "%s: not a readable zip archive (truncated?): %s", path, zip_error_strerror(&ze));
  zip_error_fini(&ze);
  return rc;
}

int cl_pt_load_zip(const char *path, cl_tmap *m, cl_error *e) {
  cl_tmap_init(m);
  int zerr = 0;
  zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
  if (!z) return zip_fail(path, zerr, e);
  ctx c = {.path = path, .z = z, .m = m, .e = e};
  cl_pt_pickle pk = {0};
  unsigned char *pkl = NULL;
  int rc = find_folder(&c);
  if (!rc) rc = check_byteorder(&c);
  if (!rc) {
    char name[300];
    snprintf(name, sizeof name, "%s/data.pkl", c.folder);
    zip_int64_t idx = zip_name_locate(z, name, ZIP_FL_ENC_RAW);
    zip_uint64_t sz = 0;
    rc = idx < 0 ? cl_err(e, CL_EFORMAT, "%s: %s vanished", path, name) : entry_size(&c, idx, name, &sz);
    if (!rc && sz > PKL_MAX)
      rc = cl_err(e, CL_EFORMAT, "%s: %s is %llu bytes: too large for a checkpoint pickle", path, name,
                  (unsigned long long)sz);
    if (!rc) {
      pkl = cl_xmalloc((size_t)sz);
      rc = zread(&c, idx, name, pkl, (size_t)sz);
    }
    if (!rc && (rc = cl_pt_parse(pkl, (size_t)sz, &pk, e)) != 0) cl_err_wrap(e, "%s: %s", path, name);
  }
  if (!rc) rc = load_state_dict(&c, pk.root);
  for (size_t i = 0; i < c.nst; i++)
    if (!c.st[i].owned) free(c.st[i].block);
  free(c.st);
  if (c.stab.k) tab_free(&c.stab);
  cl_pt_free(&pk);
  free(pkl);
  zip_discard(z);
  if (rc) cl_tmap_free(m);
  return rc;
}

int cl_ckpt_load(const char *path, cl_tmap *m, cl_error *e) {
  cl_tmap_init(m);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return cl_err(e, CL_EIO, "%s: cannot open: %s", path, strerror(errno));
  unsigned char h[16] = {0};
  ssize_t n = read(fd, h, sizeof h);
  close(fd);
  if (n < 0) return cl_err(e, CL_EIO, "%s: cannot read: %s", path, strerror(errno));
  if (n >= 4 && h[0] == 'P' && h[1] == 'K' && ((h[2] == 3 && h[3] == 4) || (h[2] == 5 && h[3] == 6)))
    return cl_pt_load_zip(path, m, e);
  /* safetensors: an 8-byte little-endian header length, then the JSON header */
  if (n >= 9 && h[8] == '{') return cl_st_load(path, m, e);
  if (n >= 2 && h[0] == 0x80 && h[1] <= 5)
    return cl_err(e, CL_EUNSUP,
                  "%s: legacy (pre-1.6, non-zip) PyTorch serialization is not supported: re-save it with a "
                  "recent torch.save or convert it to safetensors",
                  path);
  if (n < 9) return cl_err(e, CL_EFORMAT, "%s: not a checkpoint: only %zd bytes", path, n);
  return cl_err(e, CL_EFORMAT,
                "%s: not a checkpoint: neither safetensors nor a PyTorch zip archive (starts with %02x %02x %02x %02x)",
                path, h[0], h[1], h[2], h[3]);
}
