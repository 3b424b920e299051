/* cl_stats: intervals and ties over a stored run (see the header). */
#include "cl_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cl_bootstrap.h"

/* A stored top-k accuracy of an evaluation (trial -1: the aggregate). */
typedef struct sval {
  int k, trial;
  double v;
} sval;

/* One evaluation of the run: its group key, its stored top-k values and its outcomes. */
typedef struct sev {
  int64_t eval_id;
  char *group; /* dataset, protocol, shots, axes */
  sval *vals;
  int nvals, capv;
  /* outcomes in stored order: trial (-1 none), example, correct, hit (0: none) */
  int *trial, *example, *hit;
  uint8_t *correct;
  int n, cap;
} sev;

/* An aggregate's resamples, kept for the ties of its group. */
typedef struct sagg {
  int ev, k;
  double *acc;
} sagg;

struct cl_stats {
  cl_stats_cell *c;
  int n, cap;
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

char *cl_stats_describe(const cl_stats_opts *o) {
  if (o->method == CL_CI_NONE) return cl_strdup("no confidence intervals (--ci none)");
  return cl_asprintf("top-k accuracies with their 95%% confidence interval: percentile bootstrap, %d resamples of "
                     "the examples (few-shot: of the trials, then of each drawn trial's examples), seed %llu; "
                     "per dataset, protocol, shots and metric, best = the highest mean over the resamples, tied = not "
                     "significantly worse than it (one-sided paired bootstrap test, Holm-corrected, alpha %.2f)",
                     o->resamples, (unsigned long long)o->seed, CL_BOOT_ALPHA);
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
    free(axes);
  }
  const int k = cl_stats_topk(r->metric);
  if (!k || !r->has_value) return CL_OK;
  if (v->nvals == v->capv) {
    v->capv = v->capv ? 2 * v->capv : 8;
    sval *nv = realloc(v->vals, (size_t)v->capv * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading results");
    v->vals = nv;
  }
  v->vals[v->nvals++] = (sval){.k = k, .trial = r->trial, .v = r->value};
  return CL_OK;
}

static int prediction_row(const cl_prediction_row *r, void *ud, cl_error *e) {
  gather *g = ud;
  sev *v = find_eval(g, r->eval_id);
  if (!v || r->retrieved) return CL_OK; /* retrieval lists: no top1 of ours */
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
    if (!t || !x || !h || !c) return cl_err(e, CL_ENOMEM, "out of memory reading predictions");
    v->cap = cap;
  }
  v->trial[v->n] = r->trial, v->example[v->n] = r->example, v->correct[v->n] = r->correct != 0;
  v->hit[v->n] = r->hit;
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
  const int T = shape(v, &tn);
  if (!T) return CL_OK;
  const int B = o->resamples;
  int rc = CL_OK;
  uint8_t *x = cl_xmalloc((size_t)v->n);
  for (int m = 0; m < v->nvals && rc == CL_OK; m++) {
    const sval *sv = &v->vals[m];
    for (int i = 0; i < v->n; i++) x[i] = sv->k == 1 ? v->correct[i] : v->hit[i] >= 1 && v->hit[i] <= sv->k;
    cl_boot_outcomes out = {.ntrials = T, .trial_n = tn, .correct = x};
    if (sv->trial >= 0) { /* one trial of several: its own examples */
      if (v->trial[0] < 0 || sv->trial >= T) continue;
      const uint8_t *p = x;
      for (int t = 0; t < sv->trial; t++) p += tn[t];
      out = (cl_boot_outcomes){.ntrials = 1, .trial_n = &tn[sv->trial], .correct = p};
    }
    /* only where the outcomes are the stored accuracy's (a metric of ours over them) */
    if (fabs(cl_boot_point(&out) - sv->v) > 1e-9) continue;
    double *a = cl_xmalloc((size_t)B * sizeof *a), *sorted = cl_xmalloc((size_t)B * sizeof *sorted);
    rc = cl_boot_resample(&out, B, o->seed, a, e);
    if (rc == CL_OK) {
      memcpy(sorted, a, (size_t)B * sizeof *a);
      cl_stats_cell c = {.eval_id = v->eval_id, .trial = sv->trial, .k = sv->k, .p = NAN};
      cl_boot_interval(sorted, B, CL_BOOT_LEVEL, &c.lo, &c.hi);
      rc = add_cell(st, c, e);
    }
    free(sorted);
    if (rc == CL_OK && sv->trial < 0) {
      sagg *na = realloc(*agg, (size_t)(*nagg + 1) * sizeof *na);
      if (!na) rc = cl_err(e, CL_ENOMEM, "out of memory");
      else *agg = na, na[(*nagg)++] = (sagg){.ev = ev, .k = sv->k, .acc = a}, a = NULL;
    }
    free(a);
  }
  free(x);
  free(tn);
  return rc;
}

static cl_stats_cell *agg_cell(cl_stats *st, int64_t eval_id, int k) {
  for (int i = 0; i < st->n; i++)
    if (st->c[i].eval_id == eval_id && st->c[i].trial < 0 && st->c[i].k == k) return &st->c[i];
  return NULL;
}

/* Ties within each group (dataset, protocol, shots, axes, k) of aggregates with resamples. */
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
      if (done[j] || agg[j].k != agg[i].k || strcmp(v->group, first->group)) continue;
      done[j] = 1;
      paired &= same_examples(first, v);
      idx[m] = j, s[m] = agg[j].acc, m++;
    }
    if (!paired) continue; /* different examples: nothing to pair */
    int best = cl_boot_ties(s, m, B, CL_BOOT_ALPHA, tied, p);
    for (int q = 0; q < m; q++) {
      cl_stats_cell *c = agg_cell(st, g->v[agg[idx[q]].ev].eval_id, agg[i].k);
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
  for (int i = 0; i < g.n && rc == CL_OK; i++) rc = eval_cells(*out, &g.v[i], i, o, &agg, &nagg, e);
  if (rc == CL_OK) ties(*out, &g, agg, nagg, o->resamples);
  for (int i = 0; i < nagg; i++) free(agg[i].acc);
  free(agg);
  for (int i = 0; i < g.n; i++) {
    free(g.v[i].group), free(g.v[i].vals), free(g.v[i].trial), free(g.v[i].example), free(g.v[i].hit);
    free(g.v[i].correct);
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

const cl_stats_cell *cl_stats_find(const cl_stats *st, int64_t eval_id, int trial, const char *metric) {
  const int k = cl_stats_topk(metric);
  if (!st || !k) return NULL;
  for (int i = 0; i < st->n; i++)
    if (st->c[i].eval_id == eval_id && st->c[i].trial == trial && st->c[i].k == k) return &st->c[i];
  return NULL;
}

void cl_stats_free(cl_stats *st) {
  if (!st) return;
  free(st->c);
  free(st);
}
