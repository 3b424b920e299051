/* cl_compare: two runs cell by cell, each difference tested against noise. */
#define _GNU_SOURCE
#include "cl_compare.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Deltas are differences of stored doubles: -0.005 may come back as -0.00499999999. */
#define DELTA_EPS 1e-9

static const char *const VERDICTS[CL_COMPARE_NVERDICTS] = {
    [CL_COMPARE_SAME] = "same",         [CL_COMPARE_REGRESSED] = "regressed",
    [CL_COMPARE_IMPROVED] = "improved", [CL_COMPARE_UNTESTED] = "untested",
    [CL_COMPARE_ADDED] = "added",       [CL_COMPARE_REMOVED] = "removed",
};

const char *cl_compare_verdict_name(int v) {
  return v >= 0 && v < CL_COMPARE_NVERDICTS ? VERDICTS[v] : "?";
}

/* ---- statistics ---- */

double cl_compare_mcnemar_p(int64_t b, int64_t c) {
  int64_t n = b + c;
  if (n <= 0) return 1.0;
  int64_t k = b < c ? b : c;
  if (n > (int64_t)UINT32_MAX) return NAN; /* GSL takes unsigned int counts */
  double p = 2.0 * gsl_cdf_binomial_P((unsigned)k, 0.5, (unsigned)n);
  return p > 1.0 ? 1.0 : p;
}

double cl_compare_paired_t_p(const double *x, const double *y, int n) {
  if (n < 2) return NAN;
  double m = 0, ss = 0;
  for (int i = 0; i < n; i++) m += y[i] - x[i];
  m /= n;
  for (int i = 0; i < n; i++) {
    double d = y[i] - x[i] - m;
    ss += d * d;
  }
  double var = ss / (n - 1);
  /* every trial moved by the same amount: no noise to weigh it against */
  if (var <= 1e-24) return fabs(m) > 1e-12 ? 0.0 : 1.0;
  double t = m / sqrt(var / n);
  double p = 2.0 * gsl_cdf_tdist_Q(fabs(t), (double)(n - 1));
  return p > 1.0 ? 1.0 : p;
}

/* ---- resolving a side ---- */

static int side_info(const cl_run_row *r, void *ud, cl_error *e) {
  (void)e;
  cl_compare_side *sd = ud;
  sd->run_id = r->id;
  snprintf(sd->commit, sizeof sd->commit, "%s", r->git_commit ? r->git_commit : "");
  sd->dirty = r->git_dirty;
  snprintf(sd->status, sizeof sd->status, "%s", r->status ? r->status : "?");
  snprintf(sd->file, sizeof sd->file, "%s", r->file ? r->file : "?");
  return 0;
}

int cl_compare_resolve(cl_store *s, const char *spec, cl_compare_side *side, cl_error *e) {
  memset(side, 0, sizeof *side);
  side->dirty = -1;
  if (!spec || !*spec) return cl_err(e, CL_EINVAL, "an empty run id or revision");
  snprintf(side->spec, sizeof side->spec, "%s", spec);
  int digits = 1;
  for (const char *p = spec; *p; p++) digits &= isdigit((unsigned char)*p) != 0;
  int64_t id = 0;
  int rc;
  if (digits) {
    errno = 0;
    long long v = strtoll(spec, NULL, 10);
    if (errno || v <= 0) return cl_err(e, CL_EINVAL, "'%s' is not a valid run id", spec);
    id = v;
  } else {
    char commit[41];
    if ((rc = cl_store_resolve_commit(NULL, spec, commit, e))) return rc;
    if ((rc = cl_store_latest_complete_at(s, commit, &id, e))) {
      cl_err_wrap(e, "revision '%s'", spec);
      return rc;
    }
    side->from_rev = 1;
  }
  return cl_store_each_run(s, id, side_info, side, e); /* names the run when absent */
}

/* ---- cells ---- */

typedef struct cell {
  char *experiment, *model, *dataset, *protocol, *text_type;
  int shots;
  int64_t eval_id, n_trials, n_pred;
  int has_value;
  double value;
  char *key; /* the matching key, with the occurrence of a duplicate appended */
  double *trial_v; /* per-trial metric values by trial index (NaN where absent) */
  int n_trial_v;
  int matched;
} cell;

typedef struct cells {
  cell *v;
  size_t n, cap;
  const char *metric;
} cells;

static int cell_row(const cl_cell_row *r, void *ud, cl_error *e) {
  (void)e;
  cells *cs = ud;
  if (cs->n == cs->cap) {
    cs->cap = cs->cap ? 2 * cs->cap : 64;
    cell *nv = realloc(cs->v, cs->cap * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading cells");
    cs->v = nv;
  }
  cell *c = &cs->v[cs->n++];
  memset(c, 0, sizeof *c);
  c->experiment = cl_strdup(r->experiment ? r->experiment : "");
  c->model = cl_strdup(r->model ? r->model : "");
  c->dataset = cl_strdup(r->dataset ? r->dataset : "");
  c->protocol = cl_strdup(r->protocol ? r->protocol : "");
  c->text_type = cl_strdup(r->text_type ? r->text_type : "");
  c->shots = r->shots;
  c->eval_id = r->eval_id;
  c->n_trials = r->n_trials;
  c->n_pred = r->n_predictions;
  c->has_value = r->has_value;
  c->value = r->value;
  return 0;
}

static void cells_free(cells *cs) {
  for (size_t i = 0; i < cs->n; i++) {
    cell *c = &cs->v[i];
    free(c->experiment), free(c->model), free(c->dataset), free(c->protocol);
    free(c->text_type), free(c->key), free(c->trial_v);
  }
  free(cs->v);
}

static char *cell_key(const cell *c) {
  char *k = NULL;
  /* 0x1f (unit separator) cannot be confused with the text of a name */
  if (asprintf(&k, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d", c->experiment, c->model, c->dataset,
               c->protocol, c->text_type, c->shots) < 0)
    k = NULL;
  return k;
}

static cells *g_sort_cells; /* qsort has no user pointer */
static int by_key_then_eval(const void *a, const void *b) {
  const cell *x = &g_sort_cells->v[*(const size_t *)a], *y = &g_sort_cells->v[*(const size_t *)b];
  int c = strcmp(x->key, y->key);
  if (c) return c;
  return (x->eval_id > y->eval_id) - (x->eval_id < y->eval_id);
}

/* Keys with the occurrence of a duplicate appended, so the k-th copy in base meets the k-th in
 * head. Returns the number of duplicates; *order gets the indices sorted by key. */
static int make_keys(cells *cs, size_t **order, cl_error *e) {
  for (size_t i = 0; i < cs->n; i++)
    if (!(cs->v[i].key = cell_key(&cs->v[i])))
      return cl_err(e, CL_ENOMEM, "out of memory"), -1;
  size_t *ix = cl_xmalloc((cs->n ? cs->n : 1) * sizeof *ix);
  for (size_t i = 0; i < cs->n; i++) ix[i] = i;
  g_sort_cells = cs;
  qsort(ix, cs->n, sizeof *ix, by_key_then_eval);
  int dups = 0;
  for (size_t i = 1, occ = 0; i < cs->n; i++) {
    cell *prev = &cs->v[ix[i - 1]], *cur = &cs->v[ix[i]];
    /* prev's key may already carry its own suffix: compare the base part */
    size_t pl = strcspn(prev->key, "#");
    occ = strncmp(prev->key, cur->key, pl) == 0 && cur->key[pl] == 0 ? occ + 1 : 0;
    if (occ) {
      char *k = NULL;
      if (asprintf(&k, "%s#%zu", cur->key, occ) < 0) {
        free(ix);
        return cl_err(e, CL_ENOMEM, "out of memory"), -1;
      }
      free(cur->key);
      cur->key = k;
      dups++;
    }
  }
  qsort(ix, cs->n, sizeof *ix, by_key_then_eval); /* the suffixes changed the order */
  *order = ix;
  return dups;
}

static int load_cells(cl_store *s, int64_t run, const char *metric, cells *cs, cl_error *e) {
  cs->metric = metric;
  int rc = cl_store_each_cell(s, run, metric, cell_row, cs, e);
  if (rc) cl_err_wrap(e, "run %lld", (long long)run);
  return rc;
}

/* Per-trial values for the t-test fallback, read only when some cell needs them. */
static int trial_row(const cl_result_row *r, void *ud, cl_error *e) {
  (void)e;
  cells *cs = ud;
  if (r->trial < 0 || strcmp(r->metric, cs->metric) != 0 || r->trial > 100000) return 0;
  /* cells are in eval order: binary search */
  size_t lo = 0, hi = cs->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cs->v[mid].eval_id < r->eval_id) lo = mid + 1;
    else hi = mid;
  }
  if (lo == cs->n || cs->v[lo].eval_id != r->eval_id) return 0;
  cell *c = &cs->v[lo];
  if (r->trial >= c->n_trial_v) {
    int n = r->trial + 1;
    double *nv = realloc(c->trial_v, (size_t)n * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading trials");
    for (int i = c->n_trial_v; i < n; i++) nv[i] = NAN;
    c->trial_v = nv, c->n_trial_v = n;
  }
  c->trial_v[r->trial] = r->has_value ? r->value : NAN;
  return 0;
}

/* ---- pairing predictions ---- */

typedef struct pred {
  int trial, correct;
  char *fp;
} pred;

typedef struct pairing {
  pred *v;
  size_t n, cap, at;
  int64_t pairs, b, c;
} pairing;

static int base_pred(const cl_correct_row *r, void *ud, cl_error *e) {
  pairing *p = ud;
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 1024;
    pred *nv = realloc(p->v, p->cap * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading predictions");
    p->v = nv;
  }
  p->v[p->n++] = (pred){r->trial, r->correct, cl_strdup(r->filepath ? r->filepath : "")};
  return 0;
}

static int key_cmp(int t1, const char *f1, int t2, const char *f2) {
  if (t1 != t2) return t1 < t2 ? -1 : 1;
  return strcmp(f1, f2);
}

/* Both streams are sorted the same way: one merge pairs them. */
static int head_pred(const cl_correct_row *r, void *ud, cl_error *e) {
  (void)e;
  pairing *p = ud;
  const char *fp = r->filepath ? r->filepath : "";
  while (p->at < p->n && key_cmp(p->v[p->at].trial, p->v[p->at].fp, r->trial, fp) < 0) p->at++;
  if (p->at < p->n && key_cmp(p->v[p->at].trial, p->v[p->at].fp, r->trial, fp) == 0) {
    int bc = p->v[p->at++].correct;
    p->pairs++;
    if (bc && !r->correct) p->b++;
    else if (!bc && r->correct) p->c++;
  }
  return 0;
}

static int pair_predictions(cl_store *s, int64_t base_eval, int64_t head_eval, pairing *p,
                            cl_error *e) {
  memset(p, 0, sizeof *p);
  int rc = cl_store_each_correct(s, base_eval, base_pred, p, e);
  if (!rc) rc = cl_store_each_correct(s, head_eval, head_pred, p, e);
  for (size_t i = 0; i < p->n; i++) free(p->v[i].fp);
  free(p->v);
  p->v = NULL;
  return rc;
}

/* ---- comparing ---- */

static void row_from(cl_compare_row *r, const cell *c) {
  r->experiment = cl_strdup(c->experiment);
  r->model = cl_strdup(c->model);
  r->dataset = cl_strdup(c->dataset);
  r->protocol = cl_strdup(c->protocol);
  r->text_type = cl_strdup(c->text_type);
  r->shots = c->shots;
  r->test = "none";
  r->delta = NAN;
  r->p = NAN;
}

static int test_cell(cl_store *s, cells *bs, cells *hs, const cell *b, const cell *h,
                     int *trials_loaded, cl_compare_row *r, cl_error *e) {
  int rc;
  if (b->n_pred > 0 && h->n_pred > 0) {
    pairing p;
    if ((rc = pair_predictions(s, b->eval_id, h->eval_id, &p, e))) return rc;
    if (p.pairs > 0) {
      r->test = "mcnemar";
      r->n_pairs = p.pairs, r->b = p.b, r->c = p.c;
      r->p = cl_compare_mcnemar_p(p.b, p.c);
      r->has_p = !isnan(r->p);
      return CL_OK;
    }
  }
  if (b->n_trials >= 2 && h->n_trials >= 2) {
    if (!*trial_loaded_guard(trials_loaded)) {}
  }
  return CL_OK;
}
