/* cl_taxa: loading and checking a Tree of Life label set, its groups and subsets. */
#include "cl_taxa.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#include "io/cl_csvtab.h"

static const char *const rank_names[CL_NRANKS] = {"kingdom", "phylum", "class", "order",
                                                   "family",  "genus",  "species"};

const char *cl_rank_name(int rank) { return rank >= 0 && rank < CL_NRANKS ? rank_names[rank] : "?"; }

int cl_rank_parse(const char *s) {
  for (int r = 0; s && r < CL_NRANKS; r++)
    if (!strcasecmp(s, rank_names[r])) return r;
  return -1;
}

int cl_taxa_present(const char *model_dir) {
  char p[4200];
  struct stat st;
  snprintf(p, sizeof p, "%s/embeddings/txt_emb_species.npy", model_dir);
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- txt_emb_species.json, streamed through yajl: each entry's names go straight into the
 * arena; nothing holds the document. ---- */
typedef struct {
  char *s;
  size_t n, cap;
} arena_;

/* s[0..k) and a NUL; 0 when the arena would pass 4 GB (its offsets are 32-bit). */
static int arena_add(arena_ *a, const char *s, size_t k, uint32_t *off) {
  if (k > (size_t)UINT32_MAX - 1 - a->n) return 0;
  if (a->n + k + 1 > a->cap) {
    while (a->n + k + 1 > a->cap) a->cap = a->cap ? 2 * a->cap : 1 << 16;
    a->s = realloc(a->s, a->cap);
    if (!a->s) abort();
  }
  memcpy(a->s + a->n, s, k);
  a->s[a->n + k] = 0;
  *off = (uint32_t)a->n;
  a->n += k + 1;
  return 1;
}

typedef struct {
  cl_taxa *t;
  cl_error *e;
  yajl_handle h;
  size_t base; /* file bytes fed before the current chunk */
  arena_ a;
  int depth;   /* 1: in the top array, 2: in an entry, 3: in its ranks */
  int i;       /* the entry being read */
  int pos;     /* entry element: 0 the ranks, 1 the common name, 2 past it */
  int r;       /* the next rank */
  int rc;
} names_;

enum { V_STRING, V_NULL, V_SCALAR, V_ARRAY, V_MAP };

static size_t names_at(const names_ *p) { return p->base + yajl_get_bytes_consumed(p->h); }

static int names_fail(names_ *p, int rc) {
  p->rc = rc;
  return 0; /* stops yajl */
}

static int bad_entry(names_ *p) {
  return names_fail(p, cl_err(p->e, CL_EFORMAT, "%s: entry %d is not [[kingdom, phylum, class, order, family, genus, "
                              "species_epithet], common_name] (byte %zu)", p->t->json_path, p->i, names_at(p)));
}

static int name_(names_ *p, int kind, const unsigned char *s, size_t len, uint32_t *off) {
  *off = 0; /* null: the empty string at the arena's start */
  if (kind == V_STRING && !arena_add(&p->a, (const char *)s, len, off))
    return names_fail(p, cl_err(p->e, CL_EUNSUP, "%s: names larger than 4 GB", p->t->json_path));
  return 1;
}

static int on_value(names_ *p, int kind, const unsigned char *s, size_t len) {
  cl_taxa *t = p->t;
  switch (p->depth) {
  case 0:
    if (kind != V_ARRAY)
      return names_fail(p, cl_err(p->e, CL_EFORMAT, "%s: not a JSON array of [[kingdom, ..., species_epithet], "
                                  "common_name] entries", t->json_path));
    p->depth = 1;
    return 1;
  case 1:
    if (kind != V_ARRAY) return bad_entry(p);
    if (p->i == t->N) /* as soon as it happens, before reading the rest */
      return names_fail(p, cl_err(p->e, CL_ESHAPE, "%s: more than %d taxa (entry %d at byte %zu), but %s has %d "
                                  "columns (shapes disagree)", t->json_path, t->N, p->i, names_at(p), t->npy_path,
                                  t->N));
    p->depth = 2, p->pos = 0;
    return 1;
  case 2:
    if (p->pos == 0 && kind == V_ARRAY) {
      p->depth = 3, p->r = 0;
      return 1;
    }
    if (p->pos != 1 || (kind != V_STRING && kind != V_NULL)) return bad_entry(p);
    p->pos = 2;
    return name_(p, kind, s, len, &t->name_off[(size_t)p->i * 8 + 7]);
  default:
    if (p->r == CL_NRANKS) return bad_entry(p);
    if (kind != V_STRING && kind != V_NULL)
      return names_fail(p, cl_err(p->e, CL_EFORMAT, "%s: entry %d: the %s is not a string (byte %zu)", t->json_path,
                                  p->i, rank_names[p->r], names_at(p)));
    p->r++;
    return name_(p, kind, s, len, &t->name_off[(size_t)p->i * 8 + p->r - 1]);
  }
}

static int on_end_array(void *ctx) {
  names_ *p = ctx;
  if (p->depth == 3) {
    if (p->r != CL_NRANKS) return bad_entry(p);
    p->depth = 2, p->pos = 1;
  } else if (p->depth == 2) {
    if (p->pos != 2) return bad_entry(p);
    p->depth = 1, p->i++;
  } else {
    p->depth = 0;
  }
  return 1;
}

static int on_null(void *ctx) { return on_value(ctx, V_NULL, NULL, 0); }
static int on_bool(void *ctx, int v) { return (void)v, on_value(ctx, V_SCALAR, NULL, 0); }
static int on_number(void *ctx, const char *s, size_t n) { return (void)s, (void)n, on_value(ctx, V_SCALAR, NULL, 0); }
static int on_string(void *ctx, const unsigned char *s, size_t n) { return on_value(ctx, V_STRING, s, n); }
static int on_start_map(void *ctx) { return on_value(ctx, V_MAP, NULL, 0); }
static int on_start_array(void *ctx) { return on_value(ctx, V_ARRAY, NULL, 0); }

static const yajl_callbacks names_cb = {
    .yajl_null = on_null, .yajl_boolean = on_bool, .yajl_number = on_number, .yajl_string = on_string,
    .yajl_start_map = on_start_map, .yajl_start_array = on_start_array, .yajl_end_array = on_end_array};

/* yajl's own message for a syntax error, with the file and byte */
static int syntax_error(names_ *p, size_t at) {
  unsigned char *m = yajl_get_error(p->h, 0, NULL, 0);
  size_t k = m ? strlen((char *)m) : 0;
  while (k && (m[k - 1] == '\n' || m[k - 1] == ' ' || m[k - 1] == '.')) m[--k] = 0;
  p->rc = cl_err(p->e, CL_EFORMAT, "%s: invalid JSON near byte %zu: %s", p->t->json_path, at, m ? (char *)m : "?");
  if (m) yajl_free_error(p->h, m);
  return p->rc;
}

static int load_names(cl_taxa *t, cl_error *e) {
  const int fd = open(t->json_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cl_err(e, CL_EIO, "%s: %s", t->json_path, strerror(errno));
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  names_ p = {.t = t, .e = e};
  p.h = yajl_alloc(&names_cb, NULL, &p);
  if (!p.h) abort();
  t->name_off = cl_xmalloc((size_t)t->N * 8 * sizeof *t->name_off); /* N < 2^31: checked by the caller */
  uint32_t empty;
  arena_add(&p.a, "", 0, &empty);
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = cl_xmalloc(CHUNK);
  for (;;) {
    const ssize_t n = read(fd, buf, CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      p.rc = cl_err(e, CL_EIO, "%s: %s", t->json_path, strerror(errno));
      break;
    }
    const yajl_status st = n ? yajl_parse(p.h, buf, (size_t)n) : yajl_complete_parse(p.h);
    if (st == yajl_status_error) syntax_error(&p, p.base + (n ? yajl_get_bytes_consumed(p.h) : 0));
    if (st != yajl_status_ok || !n) break;
    p.base += (size_t)n;
  }
  if (!p.rc && p.i != t->N)
    p.rc = cl_err(e, CL_ESHAPE, "%s: %d taxa, but %s has %d columns (shapes disagree)", t->json_path, p.i,
                  t->npy_path, t->N);
  free(buf);
  close(fd);
  yajl_free(p.h);
  t->arena = p.a.s;
  return p.rc;
}

static uint64_t fnv(const char *s, int64_t parent) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)(parent + 1) * 0x9e3779b97f4a7c15ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* group[r][i]: one id per distinct (group at r-1, name at r), in order of first appearance */
static void build_groups(cl_taxa *t) {
  size_t cap = 16;
  while (cap < 2 * (size_t)t->N) cap *= 2;
  int32_t *slot = cl_xmalloc(cap * sizeof *slot); /* a representative taxon per group, or -1 */
  for (int r = 0; r < CL_NRANKS - 1; r++) {
    memset(slot, 0xff, cap * sizeof *slot);
    int32_t *g = t->group[r] = cl_xmalloc((size_t)(t->N ? t->N : 1) * sizeof *g);
    int32_t *gid_of_slot = cl_xmalloc(cap * sizeof *gid_of_slot);
    int ng = 0;
    for (int i = 0; i < t->N; i++) {
      const int64_t parent = r ? t->group[r - 1][i] : -1;
      const char *name = cl_taxa_name(t, i, r);
      size_t h = fnv(name, parent) & (cap - 1);
      while (slot[h] >= 0) {
        int j = slot[h];
        if ((r ? t->group[r - 1][j] : -1) == parent && !strcmp(cl_taxa_name(t, j, r), name)) break;
        h = (h + 1) & (cap - 1);
      }
      if (slot[h] < 0) slot[h] = i, gid_of_slot[h] = ng++;
      g[i] = gid_of_slot[h];
    }
    t->ngroups[r] = ng;
    free(gid_of_slot);
  }
  free(slot);
}

int cl_taxa_open_files(const char *npy_path, const char *json_path, int D, cl_taxa *t, cl_error *e) {
  memset(t, 0, sizeof *t);
  snprintf(t->npy_path, sizeof t->npy_path, "%s", npy_path);
  snprintf(t->json_path, sizeof t->json_path, "%s", json_path);
  int rc = cl_npy_open(t->npy_path, &t->emb, e);
  if (rc) return rc;
  const cl_tensor *a = &t->emb.t;
  char s[200];
  if (a->ndim != 2 || (a->dtype != CL_F32 && a->dtype != CL_F16))
    rc = cl_err(e, CL_ESHAPE, "%s: %s %s, expected a float32 or float16 [D, N] matrix (D the embedding width, N "
                "the taxa)", t->npy_path, cl_dtype_name(a->dtype), cl_shape_str(a, s, sizeof s));
  else if (D && a->shape[0] != D)
    rc = cl_err(e, CL_ESHAPE, "%s: %s rows but the model's embeddings have %d dimensions (shapes disagree)",
                t->npy_path, cl_shape_str(a, s, sizeof s), D);
  else if (a->shape[1] == 0 || a->shape[0] == 0)
    rc = cl_err(e, CL_ESHAPE, "%s: %s: an empty label set", t->npy_path, cl_shape_str(a, s, sizeof s));
  else if (a->shape[1] > INT32_MAX - 1 || a->shape[0] > 65536)
    rc = cl_err(e, CL_EUNSUP, "%s: %s is too large", t->npy_path, cl_shape_str(a, s, sizeof s));
  if (!rc) {
    t->D = (int)a->shape[0];
    t->N = (int)a->shape[1];
    /* every page of the matrix is read by the first batch scored: ask for it now, so the disk
     * reads it while the names are parsed and the model loads, not page by page then */
    if (t->emb.map_addr) madvise(t->emb.map_addr, t->emb.map_len, MADV_WILLNEED);
    rc = load_names(t, e);
  }
  if (!rc) build_groups(t);
  if (rc) cl_taxa_close(t);
  return rc;
}

static int taxa_open(const char *model_dir, int D, int fp16, cl_taxa *t, cl_error *e) {
  char npy[4200], json[4200];
  snprintf(npy, sizeof npy, "%s/embeddings/txt_emb_species.npy", model_dir);
  snprintf(json, sizeof json, "%s/embeddings/txt_emb_species.json", model_dir);
  if (fp16) CL_TRY(cl_taxa_fp16_path(model_dir, npy, sizeof npy, e));
  return cl_taxa_open_files(npy, json, D, t, e);
}

int cl_taxa_open(const char *model_dir, int D, cl_taxa *t, cl_error *e) { return taxa_open(model_dir, D, 0, t, e); }

int cl_taxa_open_fp16(const char *model_dir, int D, cl_taxa *t, cl_error *e) {
  return taxa_open(model_dir, D, 1, t, e);
}

void cl_taxa_close(cl_taxa *t) {
  cl_npy_close(&t->emb);
  free(t->arena);
  free(t->name_off);
  for (int r = 0; r < CL_NRANKS - 1; r++) free(t->group[r]);
  memset(t, 0, sizeof *t);
}

const char *cl_taxa_value(const cl_taxa *t, int i, int r, char *buf, size_t n) {
  if (r != CL_RANK_SPECIES) return cl_taxa_name(t, i, r);
  snprintf(buf, n, "%s %s", cl_taxa_name(t, i, CL_RANK_GENUS), cl_taxa_name(t, i, CL_RANK_SPECIES));
  return buf;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cl_taxa_subset_csv(const cl_taxa *t, const char *csv_path, int **keep, int *nkeep, cl_error *e) {
  *keep = NULL;
  *nkeep = 0;
  cl_csvtab tab;
  CL_TRY(cl_csvtab_read(csv_path, &tab, e));
  int rc = CL_OK, r = cl_rank_parse(tab.head[0]);
  char **vals = NULL;
  unsigned char *seen = NULL;
  if (r < 0) {
    rc = cl_err(e, CL_EINVAL, "%s: the first column is named '%s' but must be one of "
                "kingdom,phylum,class,order,family,genus,species", csv_path, tab.head[0]);
    goto done;
  }
  if (tab.nrows == 0) {
    rc = cl_err(e, CL_EINVAL, "%s: empty subset: no %s listed under the header", csv_path, rank_names[r]);
    goto done;
  }
  vals = cl_xmalloc((size_t)tab.nrows * sizeof *vals);
  for (int i = 0; i < tab.nrows; i++) vals[i] = tab.rows[i][0];
  qsort(vals, (size_t)tab.nrows, sizeof *vals, cmp_str);
  seen = cl_xcalloc((size_t)tab.nrows, 1);
  *keep = cl_xmalloc((size_t)(t->N ? t->N : 1) * sizeof **keep);
  char buf[2048];
  for (int i = 0; i < t->N; i++) {
    const char *v = cl_taxa_value(t, i, r, buf, sizeof buf);
    char **hit = bsearch(&v, vals, (size_t)tab.nrows, sizeof *vals, cmp_str);
    if (!hit) continue;
    (*keep)[(*nkeep)++] = i;
    /* mark every equal value (a repeated row) as found */
    for (char **p = hit; p >= vals && !strcmp(*p, v); p--) seen[p - vals] = 1;
    for (char **p = hit; p < vals + tab.nrows && !strcmp(*p, v); p++) seen[p - vals] = 1;
  }
  char unknown[600] = "";
  int nunk = 0;
  for (int i = 0; i < tab.nrows; i++)
    if (!seen[i] && (i == 0 || strcmp(vals[i], vals[i - 1]))) {
      if (nunk < 8) {
        size_t u = strlen(unknown);
        snprintf(unknown + u, sizeof unknown - u, "%s'%.60s'", nunk ? ", " : "", vals[i]);
      }
      nunk++;
    }
  if (nunk)
    rc = cl_err(e, CL_EINVAL, "%s: unknown %s: %s%s (%d not in the label set %s)", csv_path, rank_names[r], unknown,
                nunk > 8 ? ", ..." : "", nunk, t->json_path);
done:
  free(vals);
  free(seen);
  cl_csvtab_free(&tab);
  if (rc) {
    free(*keep);
    *keep = NULL;
    *nkeep = 0;
  }
  return rc;
}
