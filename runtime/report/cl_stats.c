/* cl_stats: intervals and ties over a stored run (see the header). */
#define _GNU_SOURCE /* qsort_r */
#include "cl_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cl_bootstrap.h"

/* A stored top-k accuracy of an evaluation (trial -1: the aggregate). */
typedef struct sval {
  int k, trial;
  double v;
  char *name;
} sval;

/* One evaluation of the run: its group key, its stored top-k values and its outcomes. */
typedef struct sev {
  int64_t eval_id;
  char *group; /* dataset, protocol, shots, axes */
  sval *vals;
  int nvals, capv;
  /* outcomes in stored order: trial (-1 none), example, correct, hit (0: none); a
   * retrieval's: the query's label too */
  int *trial, *example, *hit;
  uint8_t *correct;
  char **label;
  int n, cap;
  int axes;      /* a retrieval cell */
  int retrieval; /* its predictions are retrieved lists */
} sev;

/* An aggregate's resamples, kept for the ties of its group. */
typedef struct sagg {
  int ev;
  const char *metric;
  double *acc;
} sagg;

struct cl_stats {
  cl_stats_cell *c;
  int n, cap;
  int reused;
  char *warning;
};

typedef struct gather {
  sev *v;
  int n, cap;
} gather;

int cl_stats_parse_method(const char *s, cl_ci_method *m) {
  if (!strcmp(s, "none")) *m = CL_CI_NONE;
  else if (!strcmp(s, "bootstrap")) *m = CL_CI_BOOTSTRAP;
  else return -1;
  return 0;
}

const char *cl_stats_tie_name(int tie) {
  return tie == CL_TIE_BEST ? "best" : tie == CL_TIE_TIED ? "tied" : tie == CL_TIE_WORSE ? "worse" : "";
}

char *cl_stats_describe(const cl_stats_opts *o, int retrieval) {
  if (o->method == CL_CI_NONE) return cl_strdup("no confidence intervals (--ci none)");
  return cl_asprintf("top-k accuracies with their 95%% confidence interval: percentile bootstrap, %d resamples of "
                     "the examples (few-shot: of the trials, then of each drawn trial's examples%s), seed %llu; "
                     "per dataset, protocol, shots and metric, best = the highest mean over the resamples, tied = not "
                     "significantly worse than it (one-sided paired bootstrap test, Holm-corrected, alpha %.2f)",
                     o->resamples,
                     retrieval ? "; retrieval: of the queries, a resample's macro averaging the classes it holds" : "",
                     (unsigned long long)o->seed, CL_BOOT_ALPHA);
}

static sev *find_eval(gather *g, int64_t id) {
  for (int i = g->n - 1; i >= 0; i--) /* rows come eval by eval: the last one, mostly */
    if (g->v[i].eval_id == id) return &g->v[i];
  return NULL;
}

static int result_row(const cl_result_row *r, void *ud, cl_error *e) {
  gather *g = ud;
  sev *v = find_eval(g, r->eval_id);
  if (!v) {
    if (g->n == g->cap) {
      g->cap = g->cap ? 2 * g->cap : 32;
      sev *nv = realloc(g->v, (size_t)g->cap * sizeof *nv);
      if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading results");
      g->v = nv;
    }
    v = &g->v[g->n++];
    memset(v, 0, sizeof *v);
    v->eval_id = r->eval_id;
    char *axes = cl_store_axes_text(r->query, r->key, r->split, r->rank);
    v->group = cl_asprintf("%s\x1f%s\x1f%d\x1f%s", r->dataset ? r->dataset : "", r->protocol ? r->protocol : "",
                           r->shots, axes ? axes : "");
    v->axes = axes && *axes;
    free(axes);
  }
  int macro;
  const int k = v->axes ? cl_stats_retrieval_k(r->metric, &macro) : cl_stats_topk(r->metric);
  if (!k || !r->has_value) return CL_OK;
  if (v->nvals == v->capv) {
    v->capv = v->capv ? 2 * v->capv : 8;
    sval *nv = realloc(v->vals, (size_t)v->capv * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading results");
    v->vals = nv;
  }
  v->vals[v->nvals++] = (sval){.k = k, .trial = r->trial, .v = r->value, .name = cl_strdup(r->metric)};
  return CL_OK;
}

static int prediction_row(const cl_prediction_row *r, void *ud, cl_error *e) {
  gather *g = ud;
  sev *v = find_eval(g, r->eval_id);
  if (!v) return CL_OK;
  if (v->n == v->cap) {
    int cap = v->cap ? 2 * v->cap : 256;
    int *t = realloc(v->trial, (size_t)cap * sizeof *t);
    if (t) v->trial = t;
    int *x = realloc(v->example, (size_t)cap * sizeof *x);
    if (x) v->example = x;
    int *h = realloc(v->hit, (size_t)cap * sizeof *h);
    if (h) v->hit = h;
    uint8_t *c = realloc(v->correct, (size_t)cap);
    if (c) v->correct = c;
    char **l = realloc(v->label, (size_t)cap * sizeof *l);
    if (l) v->label = l;
    if (!t || !x || !h || !c || !l) return cl_err(e, CL_ENOMEM, "out of memory reading predictions");
    v->cap = cap;
  }
  v->trial[v->n] = r->trial, v->example[v->n] = r->example, v->correct[v->n] = r->correct != 0;
  v->hit[v->n] = r->hit;
  v->label[v->n] = r->retrieved ? cl_strdup(r->label ? r->label : "") : NULL;
  v->retrieval |= r->retrieved != NULL;
  v->n++;
  return CL_OK;
}

static int add_cell(cl_stats *st, cl_stats_cell c, cl_error *e) {
  if (st->n == st->cap) {
    st->cap = st->cap ? 2 * st->cap : 64;
    cl_stats_cell *nv = realloc(st->c, (size_t)st->cap * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory");
    st->c = nv;
  }
  st->c[st->n++] = c;
  return CL_OK;
}

static cl_stats_cell new_cell(const sev *v, const sval *sv) {
  cl_stats_cell c = {.eval_id = v->eval_id, .trial = sv->trial, .k = sv->k, .p = NAN};
  snprintf(c.metric, sizeof c.metric, "%s", sv->name);
  return c;
}

static int add_sagg(sagg **agg, int *nagg, int ev, const char *metric, double *acc, cl_error *e) {
  sagg *na = realloc(*agg, (size_t)(*nagg + 1) * sizeof *na);
  if (!na) return cl_err(e, CL_ENOMEM, "out of memory");
  *agg = na;
  na[(*nagg)++] = (sagg){.ev = ev, .metric = metric, .acc = acc};
  return CL_OK;
}

/* The outcomes' trials: counts per trial in stored order (trial -1 alone, or 0..T-1 each
 * present); 0 when the shape is not one of those. */
static int shape(const sev *v, int **trial_n) {
  int T = 0;
  *trial_n = NULL;
  if (!v->n) return 0;
  if (v->trial[0] < 0) {
    for (int i = 0; i < v->n; i++)
      if (v->trial[i] >= 0) return 0;
    *trial_n = cl_xmalloc(sizeof **trial_n);
    (*trial_n)[0] = v->n;
    return 1;
  }
  for (int i = 0; i < v->n; i++) {
    if (v->trial[i] != T - 1 && v->trial[i] != T) return 0; /* trials 0, 1, ... in order */
    if (v->trial[i] == T) T++;
  }
  *trial_n = cl_xcalloc((size_t)T, sizeof **trial_n);
  for (int i = 0; i < v->n; i++) (*trial_n)[v->trial[i]]++;
  return T;
}

static int same_examples(const sev *a, const sev *b) {
  if (a->n != b->n) return 0;
  for (int i = 0; i < a->n; i++)
    if (a->trial[i] != b->trial[i] || a->example[i] != b->example[i]) return 0;
  return 1;
}

/* Every stored top-k accuracy of one evaluation whose outcomes (top-1: correct; top-k: a hit
 * within the first k) give the stored value gets its interval; aggregates' resamples go to
 * the list for the ties. */
static int eval_cells(cl_stats *st, const sev *v, int ev, const cl_stats_opts *o, sagg **agg, int *nagg,
                      cl_error *e) {
  int *tn;
  if (v->retrieval) return CL_OK; /* retrieval_cells */
  const int T = shape(v, &tn);
  if (!T) return CL_OK;
  const int B = o->resamples, nv = v->nvals, n = v->n;
  int rc = CL_OK;
  /* each metric's outcomes; those that give the stored accuracy (a metric of ours over them) */
  uint8_t *x = cl_xmalloc((size_t)n * (size_t)(nv ? nv : 1));
  int64_t *off = cl_xcalloc((size_t)(nv ? nv : 1), sizeof *off);
  int *ok = cl_xcalloc((size_t)(nv ? nv : 1), sizeof *ok), *done = cl_xcalloc((size_t)(nv ? nv : 1), sizeof *done);
  for (int m = 0; m < nv; m++) {
    const sval *sv = &v->vals[m];
    uint8_t *xm = x + (size_t)m * n;
    for (int i = 0; i < n; i++) xm[i] = sv->k == 1 ? v->correct[i] : v->hit[i] >= 1 && v->hit[i] <= sv->k;
    cl_boot_outcomes out = {.ntrials = T, .trial_n = tn, .correct = xm};
    if (sv->trial >= 0) { /* one trial of several: its own examples */
      if (v->trial[0] < 0 || sv->trial >= T) continue;
      for (int t = 0; t < sv->trial; t++) off[m] += tn[t];
      out = (cl_boot_outcomes){.ntrials = 1, .trial_n = &tn[sv->trial], .correct = xm + off[m]};
    }
    ok[m] = fabs(cl_boot_point(&out) - sv->v) <= 1e-9;
  }
  /* the metrics of one trial (or of the aggregate) share each resample's draws */
  const uint8_t **xs = cl_xmalloc((size_t)(nv ? nv : 1) * sizeof *xs);
  int *which = cl_xmalloc((size_t)(nv ? nv : 1) * sizeof *which);
  for (int m = 0; m < nv && rc == CL_OK; m++) {
    if (!ok[m] || done[m]) continue;
    const int trial = v->vals[m].trial;
    int nx = 0;
    for (int q = m; q < nv; q++)
      if (ok[q] && !done[q] && v->vals[q].trial == trial) done[q] = 1, which[nx] = q, xs[nx++] = x + (size_t)q * n + off[q];
    cl_boot_outcomes out = trial < 0 ? (cl_boot_outcomes){.ntrials = T, .trial_n = tn}
                                     : (cl_boot_outcomes){.ntrials = 1, .trial_n = &tn[trial]};
    double *a = cl_xmalloc((size_t)nx * (size_t)B * sizeof *a), *sorted = cl_xmalloc((size_t)B * sizeof *sorted);
    rc = cl_boot_resample_multi(&out, nx, xs, B, o->seed, a, e);
    for (int l = 0; l < nx && rc == CL_OK; l++) {
      const sval *sv = &v->vals[which[l]];
      memcpy(sorted, a + (size_t)l * B, (size_t)B * sizeof *a);
      cl_stats_cell c = new_cell(v, sv);
      c.has_ci = 1;
      cl_boot_interval(sorted, B, CL_BOOT_LEVEL, &c.lo, &c.hi);
      rc = add_cell(st, c, e);
      if (rc == CL_OK && trial < 0) {
        double *keep = cl_xmalloc((size_t)B * sizeof *keep);
        memcpy(keep, a + (size_t)l * B, (size_t)B * sizeof *keep);
        if ((rc = add_sagg(agg, nagg, ev, sv->name, keep, e))) free(keep);
      }
    }
    free(sorted);
    free(a);
  }
  free(xs), free(which), free(x), free(off), free(ok), free(done);
  free(tn);
  return rc;
}

static int cmp_label(const void *a, const void *b, void *labels) {
  char **l = labels;
  int x = *(const int *)a, y = *(const int *)b, c = strcmp(l[x], l[y]);
  return c ? c : (x > y) - (x < y);
}

/* The retrieval metrics of one evaluation whose per-query outcomes give the stored value get
 * their interval (one draw of the queries per resample for all of them); the others a note. */
static int retrieval_cells(cl_stats *st, const sev *v, int ev, const cl_stats_opts *o, sagg **agg, int *nagg,
                           cl_error *e) {
  const int n = v->n, B = o->resamples;
  int nk = 0, any_hit = 0, rc = CL_OK;
  for (int i = 0; i < n; i++) any_hit |= v->hit[i] > 0;
  int *ks = cl_xmalloc((size_t)(v->nvals ? v->nvals : 1) * sizeof *ks);
  for (int m = 0; m < v->nvals; m++) {
    int j = 0;
    while (j < nk && ks[j] != v->vals[m].k) j++;
    if (j == nk) ks[nk++] = v->vals[m].k;
  }
  /* classes: ids of the query labels (sorted: any order will do, the scores keep their own) */
  int *cls = cl_xmalloc((size_t)(n ? n : 1) * sizeof *cls), *ord = cl_xmalloc((size_t)(n ? n : 1) * sizeof *ord);
  for (int i = 0; i < n; i++) ord[i] = i;
  if (n) qsort_r(ord, (size_t)n, sizeof *ord, cmp_label, v->label);
  int ncls = 0;
  for (int i = 0; i < n; i++) {
    if (i == 0 || strcmp(v->label[ord[i]], v->label[ord[i - 1]])) ncls++;
    cls[ord[i]] = ncls - 1;
  }
  cl_boot_queries q = {.n = n, .ncls = ncls, .cls = cls, .hit = v->hit};
  double *pmi = cl_xmalloc((size_t)(nk ? nk : 1) * sizeof *pmi), *pma = cl_xmalloc((size_t)(nk ? nk : 1) * sizeof *pma);
  if (n && nk) cl_boot_retrieval_point(&q, NULL, n, ks, nk, pmi, pma);
  int *ok = cl_xcalloc((size_t)(v->nvals ? v->nvals : 1), sizeof *ok), nok = 0;
  for (int m = 0; m < v->nvals && rc == CL_OK; m++) {
    const sval *sv = &v->vals[m];
    int macro = 0, j = 0;
    cl_stats_retrieval_k(sv->name, &macro);
    while (ks[j] != sv->k) j++;
    if (n && sv->trial < 0 && fabs((macro ? pma : pmi)[j] - sv->v) <= 1e-9) {
      ok[m] = 1, nok++;
      continue;
    }
    cl_stats_cell c = new_cell(v, sv);
    snprintf(c.note, sizeof c.note, "%s",
             !n ? "no per-query outcomes stored"
             : !any_hit ? "no interval: recorded before schema 9 (no per-query outcomes)"
                        : "no interval: the stored outcomes do not give the stored value");
    rc = add_cell(st, c, e);
  }
  double *mi = NULL, *ma = NULL;
  if (rc == CL_OK && nok) {
    mi = cl_xmalloc((size_t)B * (size_t)nk * sizeof *mi);
    ma = cl_xmalloc((size_t)B * (size_t)nk * sizeof *ma);
    rc = cl_boot_retrieval(&q, ks, nk, B, o->seed, mi, ma, e);
  }
  for (int m = 0; m < v->nvals && rc == CL_OK && nok; m++) {
    if (!ok[m]) continue;
    const sval *sv = &v->vals[m];
    int macro = 0, j = 0;
    cl_stats_retrieval_k(sv->name, &macro);
    while (ks[j] != sv->k) j++;
    double *a = cl_xmalloc((size_t)B * sizeof *a), *sorted = cl_xmalloc((size_t)B * sizeof *sorted);
    for (int b = 0; b < B; b++) a[b] = sorted[b] = (macro ? ma : mi)[(size_t)b * nk + j];
    cl_stats_cell c = new_cell(v, sv);
    c.has_ci = 1;
    cl_boot_interval(sorted, B, CL_BOOT_LEVEL, &c.lo, &c.hi);
    free(sorted);
    rc = add_cell(st, c, e);
    if (rc == CL_OK && (rc = add_sagg(agg, nagg, ev, sv->name, a, e)) == CL_OK) a = NULL;
    free(a);
  }
  free(mi), free(ma), free(ok), free(pmi), free(pma), free(cls), free(ord), free(ks);
  return rc;
}

static cl_stats_cell *agg_cell(cl_stats *st, int64_t eval_id, const char *metric) {
  for (int i = 0; i < st->n; i++)
    if (st->c[i].eval_id == eval_id && st->c[i].trial < 0 && !strcmp(st->c[i].metric, metric)) return &st->c[i];
  return NULL;
}

/* Ties within each group (dataset, protocol, shots, axes, metric) of aggregates with resamples. */
static void ties(cl_stats *st, gather *g, sagg *agg, int nagg, int B) {
  const size_t n = (size_t)(nagg ? nagg : 1);
  int *done = cl_xcalloc(n, sizeof *done), *idx = cl_xmalloc(n * sizeof *idx), *tied = cl_xmalloc(n * sizeof *tied);
  const double **s = cl_xmalloc(n * sizeof *s);
  double *p = cl_xmalloc(n * sizeof *p);
  for (int i = 0; i < nagg; i++) {
    if (done[i]) continue;
    const sev *first = &g->v[agg[i].ev];
    int m = 0, paired = 1;
    for (int j = i; j < nagg; j++) {
      const sev *v = &g->v[agg[j].ev];
      if (done[j] || strcmp(agg[j].metric, agg[i].metric) || strcmp(v->group, first->group)) continue;
      done[j] = 1;
      paired &= same_examples(first, v);
      idx[m] = j, s[m] = agg[j].acc, m++;
    }
    if (!paired) continue; /* different examples: nothing to pair */
    int best = cl_boot_ties(s, m, B, CL_BOOT_ALPHA, tied, p);
    for (int q = 0; q < m; q++) {
      cl_stats_cell *c = agg_cell(st, g->v[agg[idx[q]].ev].eval_id, agg[i].metric);
      if (!c) continue;
      c->tie = q == best ? CL_TIE_BEST : tied[q] ? CL_TIE_TIED : CL_TIE_WORSE;
      c->p = p[q];
      c->group_size = m;
    }
  }
  free(done), free(idx), free(s), free(tied), free(p);
}

int cl_stats_compute(cl_store *s, int64_t run_id, const cl_stats_opts *o, cl_stats **out, cl_error *e) {
  *out = cl_xcalloc(1, sizeof **out);
  if (o->method == CL_CI_NONE) return CL_OK;
  if (o->resamples < 1 || o->resamples > 1000000)
    return cl_err(e, CL_EINVAL, "--ci-resamples %d: choose 1 to 1000000", o->resamples);
  gather g = {0};
  int rc = cl_store_each_result(s, run_id, result_row, &g, e);
  if (rc == CL_OK) rc = cl_store_each_prediction(s, run_id, prediction_row, &g, e);
  sagg *agg = NULL;
  int nagg = 0;
  for (int i = 0; i < g.n && rc == CL_OK; i++)
    rc = g.v[i].retrieval || (g.v[i].axes && !g.v[i].n) ? retrieval_cells(*out, &g.v[i], i, o, &agg, &nagg, e)
                                                          : eval_cells(*out, &g.v[i], i, o, &agg, &nagg, e);
  /* the ties (computed after every resample) point into vals' names: free those after */
  if (rc == CL_OK) ties(*out, &g, agg, nagg, o->resamples);
  for (int i = 0; i < nagg; i++) free(agg[i].acc);
  free(agg);
  for (int i = 0; i < g.n; i++) {
    sev *v = &g.v[i];
    for (int m = 0; m < v->nvals; m++) free(v->vals[m].name);
    for (int j = 0; j < v->n; j++) free(v->label[j]);
    free(v->group), free(v->vals), free(v->trial), free(v->example), free(v->hit), free(v->correct), free(v->label);
  }
  free(g.v);
  if (rc) {
    cl_stats_free(*out);
    *out = NULL;
  }
  return rc;
}

int cl_stats_topk(const char *metric) {
  if (!metric || strncmp(metric, "top", 3) || metric[3] < '1' || metric[3] > '9') return 0;
  char *end;
  long k = strtol(metric + 3, &end, 10);
  return *end || k < 1 || k > 100000 ? 0 : (int)k;
}

int cl_stats_retrieval_k(const char *metric, int *macro) {
  if (!metric || (strncmp(metric, "micro_", 6) && strncmp(metric, "macro_", 6))) return 0;
  *macro = metric[1] == 'a';
  return cl_stats_topk(metric + 6);
}

static const cl_stats_cell *any_cell(const cl_stats *st, int64_t eval_id, int trial, const char *metric) {
  if (!st || !metric) return NULL;
  for (int i = 0; i < st->n; i++)
    if (st->c[i].eval_id == eval_id && st->c[i].trial == trial && !strcmp(st->c[i].metric, metric)) return &st->c[i];
  return NULL;
}

const cl_stats_cell *cl_stats_find(const cl_stats *st, int64_t eval_id, int trial, const char *metric) {
  const cl_stats_cell *c = any_cell(st, eval_id, trial, metric);
  return c && c->has_ci ? c : NULL;
}

const char *cl_stats_note(const cl_stats *st, int64_t eval_id, int trial, const char *metric) {
  const cl_stats_cell *c = any_cell(st, eval_id, trial, metric);
  return c && !c->has_ci && *c->note ? c->note : NULL;
}

int cl_stats_reused(const cl_stats *st) { return st && st->reused; }
const char *cl_stats_warning(const cl_stats *st) { return st ? st->warning : NULL; }

/* ---- kept in the results database ---- */

static cl_interval_key store_key(const cl_stats_opts *o) {
  return (cl_interval_key){.method = "bootstrap", .level = CL_BOOT_LEVEL, .resamples = o->resamples,
                           .seed = (int64_t)o->seed};
}

static int tie_of(const char *name) {
  for (int t = CL_TIE_BEST; t <= CL_TIE_WORSE; t++)
    if (!strcmp(name, cl_stats_tie_name(t))) return t;
  return CL_TIE_UNTESTED;
}

static int stored_row(const cl_interval_row *r, void *ud, cl_error *e) {
  cl_stats_cell c = {.eval_id = r->eval_id, .trial = r->trial, .has_ci = r->has_ci, .lo = r->lo, .hi = r->hi,
                     .tie = tie_of(r->tie ? r->tie : ""), .p = r->p, .group_size = r->group_size};
  snprintf(c.metric, sizeof c.metric, "%s", r->metric ? r->metric : "");
  snprintf(c.note, sizeof c.note, "%s", r->note ? r->note : "");
  int macro;
  c.k = cl_stats_topk(c.metric);
  if (!c.k) c.k = cl_stats_retrieval_k(c.metric, &macro);
  return add_cell(ud, c, e);
}

static int put(cl_store *s, int64_t run_id, const cl_stats_opts *o, int64_t run_evals, const cl_stats *st,
               cl_error *e) {
  cl_interval_row *rows = cl_xmalloc((size_t)(st->n ? st->n : 1) * sizeof *rows);
  for (int i = 0; i < st->n; i++) {
    const cl_stats_cell *c = &st->c[i];
    rows[i] = (cl_interval_row){.eval_id = c->eval_id, .trial = c->trial, .metric = c->metric, .has_ci = c->has_ci,
                                .lo = c->lo, .hi = c->hi, .tie = cl_stats_tie_name(c->tie), .p = c->p,
                                .group_size = c->group_size, .note = c->note};
  }
  const cl_interval_key k = store_key(o);
  int rc = cl_store_intervals_put(s, run_id, &k, run_evals, rows, st->n, e);
  free(rows);
  return rc;
}

int cl_stats_get(cl_store *s, int64_t run_id, const cl_stats_opts *o, cl_stats **out, cl_error *e) {
  if (o->method == CL_CI_NONE || o->seed > INT64_MAX) return cl_stats_compute(s, run_id, o, out, e);
  *out = cl_xcalloc(1, sizeof **out);
  const cl_interval_key k = store_key(o);
  int found = 0;
  int64_t nev = 0;
  int rc = cl_store_check_run(s, run_id, e);
  if (!rc) rc = cl_store_intervals_get(s, run_id, &k, stored_row, *out, &found, e);
  if (!rc && found) {
    (*out)->reused = 1;
    return CL_OK;
  }
  if (!rc) rc = cl_store_run_evals(s, run_id, &nev, e);
  cl_stats_free(*out);
  *out = NULL;
  if (rc || (rc = cl_stats_compute(s, run_id, o, out, e))) return rc;
  cl_error pe = {0};
  if (cl_store_writable(s) && (*out)->n && put(s, run_id, o, nev, *out, &pe) != CL_OK)
    (*out)->warning = cl_asprintf("the intervals were not kept: %s", pe.msg);
  return CL_OK;
}

int cl_stats_store(cl_store *s, int64_t run_id, const cl_stats_opts *o, cl_error *e) {
  if (o->method == CL_CI_NONE || o->seed > INT64_MAX) return CL_OK;
  int64_t nev = 0;
  cl_stats *st = NULL;
  int rc = cl_store_run_evals(s, run_id, &nev, e);
  if (!rc) rc = cl_stats_compute(s, run_id, o, &st, e);
  if (!rc && st->n) rc = put(s, run_id, o, nev, st, e);
  cl_stats_free(st);
  return rc;
}

void cl_stats_free(cl_stats *st) {
  if (!st) return;
  free(st->c);
  free(st->warning);
  free(st);
}
