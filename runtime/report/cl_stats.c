/* cl_stats: intervals and ties over a stored run (see the header). */
#include "cl_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cl_bootstrap.h"

/* One evaluation of the run: its group key, its stored top1 values and its outcomes. */
typedef struct sev {
  int64_t eval_id;
  char *group;     /* dataset, protocol, shots, axes */
  int has_top1;    /* the aggregate top1 is stored */
  double top1;
  double *trial_top1; /* per trial (NAN when not stored) */
  int ntop1;
  /* outcomes in stored order: trial (-1 none), example, correct */
  int *trial, *example;
  uint8_t *correct;
  int n, cap;
} sev;

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
  return cl_asprintf("top-1 with its 95%% confidence interval: percentile bootstrap, %d resamples of the "
                     "examples (few-shot: of the trials, then of each drawn trial's examples), seed %llu; "
                     "per dataset, protocol and shots, best = the highest mean over the resamples, tied = not "
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
  if (strcmp(r->metric, "top1") || !r->has_value) return CL_OK;
  if (r->trial < 0) {
    v->has_top1 = 1, v->top1 = r->value;
  } else if (r->trial < 1 << 20) {
    if (r->trial >= v->ntop1) {
      double *nv = realloc(v->trial_top1, (size_t)(r->trial + 1) * sizeof *nv);
      if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading results");
      for (int t = v->ntop1; t <= r->trial; t++) nv[t] = NAN;
      v->trial_top1 = nv, v->ntop1 = r->trial + 1;
    }
    v->trial_top1[r->trial] = r->value;
  }
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
    uint8_t *c = realloc(v->correct, (size_t)cap);
    if (c) v->correct = c;
    if (!t || !x || !c) return cl_err(e, CL_ENOMEM, "out of memory reading predictions");
    v->cap = cap;
  }
  v->trial[v->n] = r->trial, v->example[v->n] = r->example, v->correct[v->n] = r->correct != 0;
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

/* Aggregate and per-trial intervals of one evaluation; its aggregate resamples go to *acc
 * (NULL when it has none). */
static int eval_cells(cl_stats *st, const sev *v, const cl_stats_opts *o, double **acc, cl_error *e) {
  *acc = NULL;
  int *tn;
  const int T = shape(v, &tn);
  if (!T) return CL_OK;
  const int B = o->resamples;
  int rc = CL_OK;
  cl_boot_outcomes out = {.ntrials = T, .trial_n = tn, .correct = v->correct};
  /* only where the outcomes are the stored accuracy's (a metric of ours over them) */
  if (v->has_top1 && fabs(cl_boot_point(&out) - v->top1) <= 1e-9) {
    double *a = cl_xmalloc((size_t)B * sizeof *a), *sorted = cl_xmalloc((size_t)B * sizeof *sorted);
    rc = cl_boot_resample(&out, B, o->seed, a, e);
    if (rc == CL_OK) {
      memcpy(sorted, a, (size_t)B * sizeof *a);
      cl_stats_cell c = {.eval_id = v->eval_id, .trial = -1, .p = NAN};
      cl_boot_interval(sorted, B, CL_BOOT_LEVEL, &c.lo, &c.hi);
      rc = add_cell(st, c, e);
    }
    free(sorted);
    if (rc == CL_OK) *acc = a;
    else free(a);
  }
  const uint8_t *x = v->correct;
  for (int t = 0; t < T && rc == CL_OK && v->trial[0] >= 0; x += tn[t], t++) {
    if (t >= v->ntop1 || isnan(v->trial_top1[t])) continue;
    cl_boot_outcomes one = {.ntrials = 1, .trial_n = &tn[t], .correct = x};
    if (fabs(cl_boot_point(&one) - v->trial_top1[t]) > 1e-9) continue;
    double *a = cl_xmalloc((size_t)B * sizeof *a);
    rc = cl_boot_resample(&one, B, o->seed, a, e);
    cl_stats_cell c = {.eval_id = v->eval_id, .trial = t, .p = NAN};
    if (rc == CL_OK) cl_boot_interval(a, B, CL_BOOT_LEVEL, &c.lo, &c.hi), rc = add_cell(st, c, e);
    free(a);
  }
  free(tn);
  return rc;
}

static cl_stats_cell *agg_cell(cl_stats *st, int64_t eval_id) {
  for (int i = 0; i < st->n; i++)
    if (st->c[i].eval_id == eval_id && st->c[i].trial < 0) return &st->c[i];
  return NULL;
}

/* Ties within each group of evaluations that all have aggregate resamples. */
static void ties(cl_stats *st, gather *g, double **acc, int B) {
  int *done = cl_xcalloc((size_t)(g->n ? g->n : 1), sizeof *done);
  int *idx = cl_xmalloc((size_t)(g->n ? g->n : 1) * sizeof *idx);
  const double **s = cl_xmalloc((size_t)(g->n ? g->n : 1) * sizeof *s);
  int *tied = cl_xmalloc((size_t)(g->n ? g->n : 1) * sizeof *tied);
  double *p = cl_xmalloc((size_t)(g->n ? g->n : 1) * sizeof *p);
  for (int i = 0; i < g->n; i++) {
    if (done[i] || !acc[i]) continue;
    int m = 0, paired = 1;
    for (int j = i; j < g->n; j++) {
      if (done[j] || !acc[j] || strcmp(g->v[j].group, g->v[i].group)) continue;
      done[j] = 1;
      paired &= same_examples(&g->v[i], &g->v[j]);
      idx[m] = j, s[m] = acc[j], m++;
    }
    if (!paired) continue; /* different examples: nothing to pair */
    int best = cl_boot_ties(s, m, B, CL_BOOT_ALPHA, tied, p);
    for (int k = 0; k < m; k++) {
      cl_stats_cell *c = agg_cell(st, g->v[idx[k]].eval_id);
      if (!c) continue;
      c->tie = k == best ? CL_TIE_BEST : tied[k] ? CL_TIE_TIED : CL_TIE_WORSE;
      c->p = p[k];
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
  double **acc = cl_xcalloc((size_t)(g.n ? g.n : 1), sizeof *acc);
  for (int i = 0; i < g.n && rc == CL_OK; i++) rc = eval_cells(*out, &g.v[i], o, &acc[i], e);
  if (rc == CL_OK) ties(*out, &g, acc, o->resamples);
  for (int i = 0; i < g.n; i++) {
    free(acc[i]);
    free(g.v[i].group), free(g.v[i].trial_top1), free(g.v[i].trial), free(g.v[i].example);
    free(g.v[i].correct);
  }
  free(acc);
  free(g.v);
  if (rc) {
    cl_stats_free(*out);
    *out = NULL;
  }
  return rc;
}

const cl_stats_cell *cl_stats_find(const cl_stats *st, int64_t eval_id, int trial, const char *metric) {
  if (!st || !metric || strcmp(metric, "top1")) return NULL;
  for (int i = 0; i < st->n; i++)
    if (st->c[i].eval_id == eval_id && st->c[i].trial == trial) return &st->c[i];
  return NULL;
}

void cl_stats_free(cl_stats *st) {
  if (!st) return;
  free(st->c);
  free(st);
}
