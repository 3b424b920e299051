/* cl_taxa: loading and checking a Tree of Life label set, its groups and subsets. */
#include "cl_taxa.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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

typedef struct {
  char *s;
  size_t n, cap;
} arena_;

static uint32_t arena_add(arena_ *a, const char *s) {
  size_t k = strlen(s) + 1;
  if (a->n + k > a->cap) {
    while (a->n + k > a->cap) a->cap = a->cap ? 2 * a->cap : 1 << 16;
    a->s = realloc(a->s, a->cap);
    if (!a->s) abort();
  }
  memcpy(a->s + a->n, s, k);
  a->n += k;
  return (uint32_t)(a->n - k);
}

static int load_names(cl_taxa *t, cl_error *e) {
  char *buf;
  size_t len;
  CL_TRY(cl_read_file(t->json_path, &buf, &len, e));
  cJSON *root = cJSON_ParseWithLength(buf, len);
  free(buf);
  if (!cJSON_IsArray(root)) {
    cJSON_Delete(root);
    return cl_err(e, CL_EFORMAT, "%s: not a JSON array of [[kingdom, ..., species_epithet], common_name] entries",
                  t->json_path);
  }
  int n = cJSON_GetArraySize(root), rc = CL_OK;
  if (n != t->N) {
    cJSON_Delete(root);
    return cl_err(e, CL_ESHAPE, "%s: %d taxa, but %s has %d columns (shapes disagree)", t->json_path, n, t->npy_path,
                  t->N);
  }
  arena_ a = {0};
  arena_add(&a, "");
  if ((size_t)n > SIZE_MAX / 8 / sizeof *t->name_off) abort();
  t->name_off = cl_xmalloc((size_t)(n ? n : 1) * 8 * sizeof *t->name_off);
  int i = 0;
  for (cJSON *it = root->child; it && !rc; it = it->next, i++) {
    cJSON *sci = cJSON_GetArrayItem(it, 0), *com = cJSON_GetArrayItem(it, 1);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsArray(sci) || cJSON_GetArraySize(sci) != 7 ||
        !(cJSON_IsString(com) || cJSON_IsNull(com))) {
      rc = cl_err(e, CL_EFORMAT, "%s: entry %d is not [[kingdom, phylum, class, order, family, genus, "
                  "species_epithet], common_name]", t->json_path, i);
      break;
    }
    int r = 0;
    for (cJSON *s = sci->child; s; s = s->next, r++) {
      if (!cJSON_IsString(s) && !cJSON_IsNull(s)) {
        rc = cl_err(e, CL_EFORMAT, "%s: entry %d: the %s is not a string", t->json_path, i, rank_names[r]);
        break;
      }
      t->name_off[(size_t)i * 8 + r] = cJSON_IsString(s) ? arena_add(&a, s->valuestring) : 0;
    }
    t->name_off[(size_t)i * 8 + 7] = cJSON_IsString(com) ? arena_add(&a, com->valuestring) : 0;
    if (a.n > UINT32_MAX - 65536) rc = cl_err(e, CL_EUNSUP, "%s: names larger than 4 GB", t->json_path);
  }
  cJSON_Delete(root);
  t->arena = a.s;
  return rc;
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

int cl_taxa_open(const char *model_dir, int D, cl_taxa *t, cl_error *e) {
  memset(t, 0, sizeof *t);
  snprintf(t->npy_path, sizeof t->npy_path, "%s/embeddings/txt_emb_species.npy", model_dir);
  snprintf(t->json_path, sizeof t->json_path, "%s/embeddings/txt_emb_species.json", model_dir);
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
    rc = load_names(t, e);
  }
  if (!rc) build_groups(t);
  if (rc) cl_taxa_close(t);
  return rc;
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
