/* cl_compare: two runs cell by cell, each difference tested against noise. */
#define _GNU_SOURCE
#include "cl_compare.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cl_stats.h"
#include "eval/cl_bootstrap.h"

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
  snprintf(sd->backend, sizeof sd->backend, "%s", r->backend ? r->backend : "");
  snprintf(sd->precision, sizeof sd->precision, "%s", r->precision ? r->precision : "");
  snprintf(sd->decode, sizeof sd->decode, "%s", r->decode ? r->decode : "full");
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
    if ((rc = cl_store_latest_complete_at(s, commit, &id, e))) return rc;
    side->from_rev = 1;
  }
  return cl_store_each_run(s, id, side_info, side, e); /* names the run when absent */
}

/* ---- cells ---- */

typedef struct cell {
  char *experiment, *model, *dataset, *protocol, *text_type;
  int shots;
  char *ax_query, *ax_key, *ax_split, *ax_rank; /* the retrieval axes */
  int64_t eval_id, n_trials, n_pred;
  int has_value;
  double value;
  const char *metric; /* the metric compared (the cells' own, or micro_top1 for a retrieval
                       * cell when none was asked for) */
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
  c->ax_query = cl_strdup(r->query ? r->query : "");
  c->ax_key = cl_strdup(r->key ? r->key : "");
  c->ax_split = cl_strdup(r->split ? r->split : "");
  c->ax_rank = cl_strdup(r->rank ? r->rank : "");
  c->eval_id = r->eval_id;
  c->n_trials = r->n_trials;
  c->n_pred = r->n_predictions;
  c->has_value = r->has_value;
  c->value = r->value;
  c->metric = cs->metric;
  return 0;
}

static void cells_free(cells *cs) {
  for (size_t i = 0; i < cs->n; i++) {
    cell *c = &cs->v[i];
    free(c->experiment), free(c->model), free(c->dataset), free(c->protocol);
    free(c->text_type), free(c->key), free(c->trial_v);
    free(c->ax_query), free(c->ax_key), free(c->ax_split), free(c->ax_rank);
  }
  free(cs->v);
}

static char *cell_key(const cell *c) {
  char *k = NULL;
  /* 0x1f (unit separator) cannot be confused with the text of a name */
  if (asprintf(&k, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d\x1f%s\x1f%s\x1f%s\x1f%s", c->experiment, c->model,
               c->dataset, c->protocol, c->text_type, c->shots, c->ax_query, c->ax_key, c->ax_split,
               c->ax_rank) < 0)
    k = NULL;
  return k;
}

static int by_key_then_eval(const void *a, const void *b, void *ud) {
  const cells *cs = ud;
  const cell *x = &cs->v[*(const size_t *)a], *y = &cs->v[*(const size_t *)b];
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
  qsort_r(ix, cs->n, sizeof *ix, by_key_then_eval, cs);
  /* the k-th copy of a key (k >= 1) gets "\x1ek": compare against the unsuffixed keys */
  int dups = 0;
  size_t *occ = cl_xcalloc(cs->n ? cs->n : 1, sizeof *occ);
  for (size_t i = 1; i < cs->n; i++)
    if (strcmp(cs->v[ix[i - 1]].key, cs->v[ix[i]].key) == 0) occ[i] = occ[i - 1] + 1, dups++;
  for (size_t i = 0; i < cs->n; i++) {
    if (!occ[i]) continue;
    cell *cur = &cs->v[ix[i]];
    char *k = NULL;
    if (asprintf(&k, "%s\x1e%zu", cur->key, occ[i]) < 0) {
      free(ix), free(occ);
      return cl_err(e, CL_ENOMEM, "out of memory"), -1;
    }
    free(cur->key);
    cur->key = k;
  }
  free(occ);
  qsort_r(ix, cs->n, sizeof *ix, by_key_then_eval, cs); /* the suffixes changed the order */
  *order = ix;
  return dups;
}

#define HEADLINE "top1"
#define HEADLINE_RETRIEVAL "micro_top1"

/* metric NULL: each cell's headline metric, top1, or micro_top1 for a retrieval cell (the
 * same query in evaluation order twice: the i-th cells are the same evaluation). */
static int load_cells(cl_store *s, int64_t run, const char *metric, cells *cs, int *retrieval, cl_error *e) {
  cs->metric = metric ? metric : HEADLINE;
  int rc = cl_store_each_cell(s, run, cs->metric, cell_row, cs, e);
  cells rv = {.metric = HEADLINE_RETRIEVAL};
  if (!rc && !metric) {
    int any = 0;
    for (size_t i = 0; i < cs->n; i++) any |= *cs->v[i].ax_query != 0;
    if (any) rc = cl_store_each_cell(s, run, rv.metric, cell_row, &rv, e);
    for (size_t i = 0; !rc && i < cs->n && i < rv.n; i++) {
      cell *c = &cs->v[i];
      if (!*c->ax_query || rv.v[i].eval_id != c->eval_id) continue;
      c->metric = rv.metric, c->has_value = rv.v[i].has_value, c->value = rv.v[i].value;
      c->n_trials = rv.v[i].n_trials;
      *retrieval = 1;
    }
    cells_free(&rv);
  }
  if (rc) cl_err_wrap(e, "run %lld", (long long)run);
  return rc;
}

/* Per-trial values for the t-test fallback, read only when some cell needs them. */
static int trial_row(const cl_result_row *r, void *ud, cl_error *e) {
  cells *cs = ud;
  if (r->trial < 0 || r->trial > 100000) return 0;
  /* cells are in eval order: binary search */
  size_t lo = 0, hi = cs->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cs->v[mid].eval_id < r->eval_id) lo = mid + 1;
    else hi = mid;
  }
  if (lo == cs->n || cs->v[lo].eval_id != r->eval_id || strcmp(r->metric, cs->v[lo].metric) != 0) return 0;
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
  int trial, correct, hit;
  char *fp, *label;
} pred;

/* One side's outcomes, all of its predictions: whether its stored hits are there, and the
 * metric's value they give (the mean over trials of each trial's share right). */
typedef struct tally {
  int64_t n_hit, correct_no_hit;
  int trial, ntrials;
  int64_t tn, tx;
  double sum;
} tally;

static void tally_add(tally *t, int trial, int outcome, const cl_correct_row *r) {
  if (t->tn && trial != t->trial) t->sum += (double)t->tx / (double)t->tn, t->ntrials++, t->tn = t->tx = 0;
  t->trial = trial, t->tn++, t->tx += outcome;
  t->n_hit += r->hit > 0;
  t->correct_no_hit += r->correct && r->hit <= 0;
}

static double tally_value(tally *t) {
  if (t->tn) t->sum += (double)t->tx / (double)t->tn, t->ntrials++, t->tn = t->tx = 0;
  return t->ntrials ? t->sum / t->ntrials : NAN;
}

typedef struct pairing {
  int k, macro; /* the metric's k; macro: keep the pairs' hits and labels */
  pred *v;
  size_t n, cap, at;
  int64_t pairs, b, c;
  tally tb, th;
  int *bh, *hh;     /* macro: the pairs' hits, base and head */
  const char **lab; /* macro: the pairs' labels (base's) */
  size_t pcap;
} pairing;

/* Top-1: right or wrong; top-k: the label among the first k (hit is 1-based). */
static int outcome(const pairing *p, int correct, int hit) {
  return p->k == 1 ? correct != 0 : hit >= 1 && hit <= p->k;
}

static int base_pred(const cl_correct_row *r, void *ud, cl_error *e) {
  pairing *p = ud;
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 1024;
    pred *nv = realloc(p->v, p->cap * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading predictions");
    p->v = nv;
  }
  p->v[p->n++] = (pred){r->trial, r->correct, r->hit, cl_strdup(r->filepath ? r->filepath : ""),
                        cl_strdup(r->label ? r->label : "")};
  tally_add(&p->tb, r->trial, outcome(p, r->correct, r->hit), r);
  return 0;
}

static int key_cmp(int t1, const char *f1, int t2, const char *f2) {
  if (t1 != t2) return t1 < t2 ? -1 : 1;
  return strcmp(f1, f2);
}

/* Both streams are sorted the same way: one merge pairs them. */
static int head_pred(const cl_correct_row *r, void *ud, cl_error *e) {
  pairing *p = ud;
  const char *fp = r->filepath ? r->filepath : "";
  const int ho = outcome(p, r->correct, r->hit);
  tally_add(&p->th, r->trial, ho, r);
  while (p->at < p->n && key_cmp(p->v[p->at].trial, p->v[p->at].fp, r->trial, fp) < 0) p->at++;
  if (p->at < p->n && key_cmp(p->v[p->at].trial, p->v[p->at].fp, r->trial, fp) == 0) {
    const pred *bp = &p->v[p->at++];
    int bo = outcome(p, bp->correct, bp->hit);
    if (p->macro) {
      if ((size_t)p->pairs == p->pcap) {
        p->pcap = p->pcap ? 2 * p->pcap : 1024;
        int *nb = realloc(p->bh, p->pcap * sizeof *nb);
        if (nb) p->bh = nb;
        int *nh = realloc(p->hh, p->pcap * sizeof *nh);
        if (nh) p->hh = nh;
        const char **nl = realloc(p->lab, p->pcap * sizeof *nl);
        if (nl) p->lab = nl;
        if (!nb || !nh || !nl) return cl_err(e, CL_ENOMEM, "out of memory pairing predictions");
      }
      p->bh[p->pairs] = bp->hit, p->hh[p->pairs] = r->hit, p->lab[p->pairs] = bp->label;
    }
    p->pairs++;
    if (bo && !ho) p->b++;
    else if (!bo && ho) p->c++;
  }
  return 0;
}

static void pairing_free(pairing *p) {
  for (size_t i = 0; i < p->n; i++) free(p->v[i].fp), free(p->v[i].label);
  free(p->v), free(p->bh), free(p->hh), free(p->lab);
  memset(p, 0, sizeof *p);
}

static int pair_predictions(cl_store *s, int64_t base_eval, int64_t head_eval, pairing *p,
                            cl_error *e) {
  int rc = cl_store_each_correct(s, base_eval, base_pred, p, e);
  if (!rc) rc = cl_store_each_correct(s, head_eval, head_pred, p, e);
  return rc;
}

/* Whether a side's stored outcomes stand for the metric: top-k needs its hits (none before
 * schema 8, 9 for retrieval: then a right top-1 has no hit), and a per-example top-k's
 * outcomes give its stored value (hits are NULL beyond the ranks a prediction kept). */
static int outcomes_hold(tally *t, const pairing *p, const cell *c) {
  if ((p->k > 1 || p->macro) && (t->correct_no_hit > 0 || (t->n_hit == 0 && c->has_value && c->value > 0)))
    return 0;
  /* top-1 pairs predictions.correct as it always has */
  return p->k == 1 || p->macro || !c->has_value || fabs(tally_value(t) - c->value) <= 1e-9;
}

static int by_label(const void *a, const void *b, void *ud) {
  const char **l = ud;
  int x = *(const int *)a, y = *(const int *)b, c = strcmp(l[x], l[y]);
  return c ? c : (x > y) - (x < y);
}

/* Two-sided paired bootstrap of a macro top-k over the paired queries: the same draws for
 * both sides (one seed, the same n), p = min(1, 2 (min(#d <= 0, #d >= 0) + 1) / (B + 1)) over
 * the resampled differences d = head - base. */
static int paired_bootstrap_macro(const pairing *p, int B, uint64_t seed, double *pv, cl_error *e) {
  const int n = (int)p->pairs;
  int *cls = cl_xmalloc((size_t)n * sizeof *cls), *ord = cl_xmalloc((size_t)n * sizeof *ord), ncls = 0;
  for (int i = 0; i < n; i++) ord[i] = i;
  qsort_r(ord, (size_t)n, sizeof *ord, by_label, (void *)p->lab);
  for (int i = 0; i < n; i++) {
    if (i == 0 || strcmp(p->lab[ord[i]], p->lab[ord[i - 1]])) ncls++;
    cls[ord[i]] = ncls - 1;
  }
  double *mi = cl_xmalloc((size_t)B * sizeof *mi), *mb = cl_xmalloc((size_t)B * sizeof *mb),
         *mh = cl_xmalloc((size_t)B * sizeof *mh);
  cl_boot_queries qb = {.n = n, .ncls = ncls, .cls = cls, .hit = p->bh}, qh = qb;
  qh.hit = p->hh;
  int rc = cl_boot_retrieval(&qb, &p->k, 1, B, seed, mi, mb, e);
  if (!rc) rc = cl_boot_retrieval(&qh, &p->k, 1, B, seed, mi, mh, e);
  if (!rc) {
    int64_t le = 0, ge = 0;
    for (int b = 0; b < B; b++) le += mh[b] - mb[b] <= DELTA_EPS, ge += mh[b] - mb[b] >= -DELTA_EPS;
    double q = 2.0 * (double)((le < ge ? le : ge) + 1) / (double)(B + 1);
    *pv = q > 1.0 ? 1.0 : q;
  }
  free(cls), free(ord), free(mi), free(mb), free(mh);
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
  r->query = cl_strdup(c->ax_query);
  r->key = cl_strdup(c->ax_key);
  r->split = cl_strdup(c->ax_split);
  r->rank = cl_strdup(c->ax_rank);
  r->test = "none";
  r->delta = NAN;
  r->p = NAN;
}

/* One run's cells, with its per-trial values loaded on first need. */
typedef struct side_cells {
  cells cs;
  int64_t run;
  int trials_loaded;
} side_cells;

static int need_trials(cl_store *s, side_cells *sc, cl_error *e) {
  if (sc->trials_loaded) return CL_OK;
  sc->trials_loaded = 1;
  return cl_store_each_result(s, sc->run, trial_row, &sc->cs, e);
}

/* k of a metric with per-example outcomes (top<k>, micro_top<k>) or of a class average
 * (macro_top<k>, *macro set); 0 for any other. */
static int metric_k(const char *m, int *macro) {
  *macro = 0;
  int k = cl_stats_topk(m);
  return k ? k : cl_stats_retrieval_k(m, macro);
}

/* The paired test of one matched cell: McNemar on the paired outcomes (a class average: a
 * paired bootstrap), else a t-test on trials. */
static int test_cell(cl_store *s, side_cells *bs, side_cells *hs, const cell *b, const cell *h,
                     const cl_compare_opts *o, cl_compare_row *r, cl_error *e) {
  int rc, macro;
  const int k = metric_k(b->metric, &macro);
  if (b->n_pred > 0 && h->n_pred > 0 && k > 0) {
    pairing p = {.k = k, .macro = macro};
    if ((rc = pair_predictions(s, b->eval_id, h->eval_id, &p, e))) {
      pairing_free(&p);
      return rc;
    }
    if (p.pairs > 0 && p.pairs <= INT_MAX && outcomes_hold(&p.tb, &p, b) && outcomes_hold(&p.th, &p, h)) {
      r->n_pairs = p.pairs, r->b = p.b, r->c = p.c;
      if (macro) {
        r->test = "paired_bootstrap";
        rc = paired_bootstrap_macro(&p, o->resamples > 0 ? o->resamples : CL_STATS_RESAMPLES, o->seed, &r->p, e);
      } else {
        r->test = "mcnemar";
        r->p = cl_compare_mcnemar_p(p.b, p.c);
      }
      r->has_p = !rc && !isnan(r->p);
      pairing_free(&p);
      return rc;
    }
    pairing_free(&p);
  }
  if (b->n_trials >= 2 && h->n_trials >= 2) {
    if ((rc = need_trials(s, bs, e)) || (rc = need_trials(s, hs, e))) return rc;
    int n = b->n_trial_v < h->n_trial_v ? b->n_trial_v : h->n_trial_v, m = 0;
    double *x = cl_xmalloc((size_t)(n ? n : 1) * sizeof *x), *y = cl_xmalloc((size_t)(n ? n : 1) * sizeof *y);
    for (int t = 0; t < n; t++)
      if (!isnan(b->trial_v[t]) && !isnan(h->trial_v[t])) x[m] = b->trial_v[t], y[m++] = h->trial_v[t];
    double p = cl_compare_paired_t_p(x, y, m);
    free(x), free(y);
    if (!isnan(p)) {
      r->test = "paired_t";
      r->n_pairs = m;
      r->p = p;
      r->has_p = 1;
    }
  }
  return CL_OK;
}

static int verdict(const cl_compare_row *r, const cl_compare_opts *o) {
  if (!r->has_base || !r->has_head) return CL_COMPARE_UNTESTED;
  int down = r->delta <= -o->min_delta + DELTA_EPS, up = r->delta >= o->min_delta - DELTA_EPS;
  if (!down && !up) return CL_COMPARE_SAME; /* too small to matter, whatever the test says */
  if (!r->has_p) return CL_COMPARE_UNTESTED;
  if (!(r->p < o->alpha)) return CL_COMPARE_SAME; /* within noise */
  return r->delta < 0 ? CL_COMPARE_REGRESSED : CL_COMPARE_IMPROVED;
}

static cl_compare_row *push_row(cl_compare_result *out, size_t *cap) {
  if (out->n == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    cl_compare_row *nv = realloc(out->rows, *cap * sizeof *nv);
    if (!nv) return NULL;
    out->rows = nv;
  }
  cl_compare_row *r = &out->rows[out->n++];
  memset(r, 0, sizeof *r);
  return r;
}

/* The cell whose key is key, by binary search over order (sorted by key, keys unique). */
static cell *find_key(cells *cs, const size_t *order, const char *key) {
  size_t lo = 0, hi = cs->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(cs->v[order[mid]].key, key);
    if (c == 0) return &cs->v[order[mid]];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

int cl_compare_runs(cl_store *s, const cl_compare_side *base, const cl_compare_side *head,
                    const cl_compare_opts *o, cl_compare_result *out, cl_error *e) {
  memset(out, 0, sizeof *out);
  out->base = *base;
  out->head = *head;
  out->opts = *o;
  side_cells bs = {.run = base->run_id}, hs = {.run = head->run_id};
  size_t *bix = NULL, *hix = NULL, cap = 0;
  int rc;
  int retrieval = 0;
  if ((rc = load_cells(s, base->run_id, o->metric, &bs.cs, &retrieval, e)) ||
      (rc = load_cells(s, head->run_id, o->metric, &hs.cs, &retrieval, e)))
    goto done;
  /* no metric asked for: each cell's headline, said in the summary */
  if (!o->metric) out->opts.metric = retrieval ? HEADLINE " (" HEADLINE_RETRIEVAL " for retrieval cells)" : HEADLINE;
  int d1 = make_keys(&bs.cs, &bix, e), d2 = d1 < 0 ? -1 : make_keys(&hs.cs, &hix, e);
  if (d1 < 0 || d2 < 0) {
    rc = CL_ENOMEM;
    goto done;
  }
  out->duplicates = d1 + d2;
  /* base order: matched or removed */
  for (size_t i = 0; i < bs.cs.n; i++) {
    cell *b = &bs.cs.v[i];
    cell *h = find_key(&hs.cs, hix, b->key);
    cl_compare_row *r = push_row(out, &cap);
    if (!r) {
      rc = cl_err(e, CL_ENOMEM, "out of memory comparing runs");
      goto done;
    }
    row_from(r, b);
    r->metric = b->metric;
    r->has_base = b->has_value, r->base = b->value, r->base_eval = b->eval_id;
    if (!h) {
      r->verdict = CL_COMPARE_REMOVED;
      continue;
    }
    h->matched = 1;
    r->has_head = h->has_value, r->head = h->value, r->head_eval = h->eval_id;
    if (r->has_base && r->has_head) r->delta = r->head - r->base;
    if ((rc = test_cell(s, &bs, &hs, b, h, &out->opts, r, e))) goto done;
    r->verdict = verdict(r, &out->opts);
  }
  /* then what only head has, in head's order */
  for (size_t i = 0; i < hs.cs.n; i++) {
    cell *h = &hs.cs.v[i];
    if (h->matched) continue;
    cl_compare_row *r = push_row(out, &cap);
    if (!r) {
      rc = cl_err(e, CL_ENOMEM, "out of memory comparing runs");
      goto done;
    }
    row_from(r, h);
    r->metric = h->metric;
    r->has_head = h->has_value, r->head = h->value, r->head_eval = h->eval_id;
    r->verdict = CL_COMPARE_ADDED;
  }
  for (size_t i = 0; i < out->n; i++) out->count[out->rows[i].verdict]++;
done:
  free(bix), free(hix);
  cells_free(&bs.cs);
  cells_free(&hs.cs);
  if (rc) cl_compare_free(out);
  return rc;
}

int cl_compare_intervals(cl_store *s, cl_compare_result *r, const cl_stats_opts *o, cl_error *e) {
  if (o->method == CL_CI_NONE) return CL_OK;
  r->ci_resamples = o->resamples, r->ci_seed = o->seed;
  cl_stats *st[2] = {NULL, NULL};
  int rc = cl_stats_get(s, r->base.run_id, o, &st[0], e);
  if (!rc && r->head.run_id != r->base.run_id) rc = cl_stats_get(s, r->head.run_id, o, &st[1], e);
  const cl_stats *hs = st[1] ? st[1] : st[0];
  for (size_t i = 0; i < r->n && !rc; i++) {
    cl_compare_row *x = &r->rows[i];
    const cl_stats_cell *b = x->base_eval ? cl_stats_find(st[0], x->base_eval, -1, x->metric) : NULL;
    const cl_stats_cell *h = x->head_eval ? cl_stats_find(hs, x->head_eval, -1, x->metric) : NULL;
    if (b) x->has_base_ci = 1, x->base_lo = b->lo, x->base_hi = b->hi;
    if (h) x->has_head_ci = 1, x->head_lo = h->lo, x->head_hi = h->hi;
  }
  for (int k = 0; k < 2; k++)
    if (st[k] && cl_stats_warning(st[k])) fprintf(stderr, "clade: warning: compare: %s\n", cl_stats_warning(st[k]));
  cl_stats_free(st[0]), cl_stats_free(st[1]);
  return rc;
}

void cl_compare_free(cl_compare_result *r) {
  for (size_t i = 0; i < r->n; i++) {
    cl_compare_row *x = &r->rows[i];
    free(x->experiment), free(x->model), free(x->dataset), free(x->protocol), free(x->text_type);
    free(x->query), free(x->key), free(x->split), free(x->rank);
  }
  free(r->rows);
  r->rows = NULL;
  r->n = 0;
}

/* ---- rendering ---- */


static char *pct(int has, double v) { return has ? cl_asprintf("%.2f", 100 * v) : cl_strdup("-"); }
static char *points(int has, double d) { return has ? cl_asprintf("%+.2f", 100 * d) : cl_strdup("-"); }
static char *pval(const cl_compare_row *r) { return r->has_p ? cl_asprintf("%.3g", r->p) : cl_strdup("-"); }

static char *side_caption(const cl_compare_side *sd) {
  char commit[64] = "no commit";
  if (sd->commit[0])
    snprintf(commit, sizeof commit, "commit %.7s%s", sd->commit, sd->dirty == 1 ? " (dirty)" : "");
  char from[160] = "";
  /* a hash that is the commit says nothing more */
  if (sd->from_rev && strncasecmp(sd->spec, sd->commit, strlen(sd->spec)) != 0)
    snprintf(from, sizeof from, " from '%s'", sd->spec);
  return cl_asprintf("run %lld: %s%s, %s, %s", (long long)sd->run_id, commit, from, sd->status, sd->file);
}

static char *summary(const cl_compare_result *r) {
  const int *n = r->count;
  return cl_asprintf("%d regressed, %d improved, %d same, %d untested, %d added, %d removed "
             "(min delta %.2f points, alpha %g, %s)",
             n[CL_COMPARE_REGRESSED], n[CL_COMPARE_IMPROVED], n[CL_COMPARE_SAME],
             n[CL_COMPARE_UNTESTED], n[CL_COMPARE_ADDED], n[CL_COMPARE_REMOVED],
             100 * r->opts.min_delta, r->opts.alpha, r->opts.metric);
}

#define NCOLS 12
static const char *const HEAD[NCOLS] = {"experiment", "model", "dataset", "protocol", "text_type",
                                        "shots", "retrieval", "base", "head", "delta", "p", "verdict"};
#define AXES_COL 6 /* shown only when a row has retrieval axes */

static void row_cells(const cl_compare_row *r, char *c[NCOLS]) {
  c[0] = cl_strdup(r->experiment);
  c[1] = cl_strdup(r->model);
  c[2] = cl_strdup(r->dataset);
  c[3] = cl_strdup(r->protocol);
  c[4] = cl_strdup(*r->text_type ? r->text_type : "-");
  c[5] = cl_asprintf("%d", r->shots);
  c[6] = cl_store_axes_text(r->query, r->key, r->split, r->rank);
  if (!*c[6]) free(c[6]), c[6] = cl_strdup("-");
  c[7] = r->has_base && r->has_base_ci ? cl_asprintf("%.2f [%.2f, %.2f]", 100 * r->base, 100 * r->base_lo, 100 * r->base_hi)
                                        : pct(r->has_base, r->base);
  c[8] = r->has_head && r->has_head_ci ? cl_asprintf("%.2f [%.2f, %.2f]", 100 * r->head, 100 * r->head_lo, 100 * r->head_hi)
                                        : pct(r->has_head, r->head);
  c[9] = points(r->has_base && r->has_head, r->delta);
  c[10] = pval(r);
  c[11] = cl_strdup(cl_compare_verdict_name(r->verdict));
}

static int any_axes(const cl_compare_result *r) {
  for (size_t i = 0; i < r->n; i++)
    if (*r->rows[i].query || *r->rows[i].key || *r->rows[i].split || *r->rows[i].rank) return 1;
  return 0;
}

/* Display width of UTF-8 text in code points. */
static size_t width(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

static void write_table(FILE *f, const cl_compare_result *r) {
  char *cap = side_caption(&r->base);
  fprintf(f, "base: %s\n", cap);
  free(cap);
  cap = side_caption(&r->head);
  fprintf(f, "head: %s\n", cap);
  free(cap);
  char **cells = cl_xcalloc(r->n * NCOLS + 1, sizeof *cells);
  size_t w[NCOLS];
  for (int c = 0; c < NCOLS; c++) w[c] = width(HEAD[c]);
  for (size_t i = 0; i < r->n; i++) {
    row_cells(&r->rows[i], cells + i * NCOLS);
    for (int c = 0; c < NCOLS; c++)
      if (width(cells[i * NCOLS + c]) > w[c]) w[c] = width(cells[i * NCOLS + c]);
  }
  /* text columns left, numbers right, the verdict left; no trailing blanks */
  int ax = any_axes(r);
  for (long i = -1; i < (long)r->n; i++) {
    for (int c = 0; c < NCOLS; c++) {
      if (c == AXES_COL && !ax) continue;
      const char *s = i < 0 ? HEAD[c] : cells[i * NCOLS + c];
      int right = c == 5 || (c >= 7 && c <= 10);
      size_t pad = w[c] - width(s);
      if (c) fputs("  ", f);
      if (right)
        for (size_t k = 0; k < pad; k++) fputc(' ', f);
      fputs(s, f);
      if (!right && c < NCOLS - 1)
        for (size_t k = 0; k < pad; k++) fputc(' ', f);
    }
    fputc('\n', f);
  }
  if (!r->n) fputs("(no cells on either side)\n", f);
  for (size_t i = 0; i < r->n * NCOLS; i++) free(cells[i]);
  free(cells);
  char *sum = summary(r);
  fprintf(f, "%s; base and head in %%, delta in points\n", sum);
  free(sum);
}

/* A markdown table cell: no pipe or newline breaks the row, no HTML is interpreted. */
static void md_cell(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '|': fputs("\\|", f); break;
    case '\n': case '\r': fputc(' ', f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '*': case '_': case '`': case '[': case ']': case '\\': fputc('\\', f), fputc(*s, f); break;
    default: fputc(*s, f);
    }
  }
}

static void md_rows(FILE *f, const cl_compare_result *r, int changed) {
  int ax = any_axes(r);
  fprintf(f, "| experiment | model | dataset | protocol | text type | shots | %sbase %% | head %% | "
          "Δ points | p | verdict |\n|---|---|---|---|---|--:|%s--:|--:|--:|--:|---|\n",
          ax ? "retrieval | " : "", ax ? "---|" : "");
  for (size_t i = 0; i < r->n; i++) {
    const cl_compare_row *x = &r->rows[i];
    if ((x->verdict != CL_COMPARE_SAME) != changed) continue;
    char *c[NCOLS];
    row_cells(x, c);
    fputc('|', f);
    for (int k = 0; k < NCOLS; k++) {
      if (k == AXES_COL && !ax) {
        free(c[k]);
        continue;
      }
      fputc(' ', f);
      int strong = k == NCOLS - 1 && x->verdict == CL_COMPARE_REGRESSED;
      if (strong) fputs("**", f);
      md_cell(f, c[k]);
      if (strong) fputs("**", f);
      fputs(" |", f);
      free(c[k]);
    }
    fputc('\n', f);
  }
}

static void write_markdown(FILE *f, const cl_compare_result *r) {
  int reg = r->count[CL_COMPARE_REGRESSED];
  char *sum = summary(r), *bc = side_caption(&r->base), *hc = side_caption(&r->head);
  fprintf(f, "**clade compare: %s** — ", reg ? "significant regression" : "no significant regression");
  md_cell(f, sum);
  fputs("\n\nbase: ", f);
  md_cell(f, bc);
  fputs("  \nhead: ", f);
  md_cell(f, hc);
  fputs("\n\n", f);
  free(sum), free(bc), free(hc);
  int same = r->count[CL_COMPARE_SAME];
  if ((size_t)same < r->n) {
    md_rows(f, r, 1);
    fputc('\n', f);
  }
  if (same) {
    /* cells inside the noise folded away: the comment shows what moved */
    fprintf(f, "<details><summary>%d cell%s the same within noise</summary>\n\n", same, same == 1 ? "" : "s");
    md_rows(f, r, 0);
    fputs("\n</details>\n", f);
  }
  if (!r->n) fputs("(no cells on either side)\n", f);
}

static void json_num(cJSON *o, const char *k, int has, double v) {
  if (has && isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

/* A side's interval as {"level", "low", "high", "resamples", "seed"}, or null. */
static void json_ci(cJSON *o, const char *k, int has, double lo, double hi, const cl_compare_result *r) {
  if (!has || !r->ci_resamples) {
    cJSON_AddNullToObject(o, k);
    return;
  }
  cJSON *c = cJSON_AddObjectToObject(o, k);
  cJSON_AddNumberToObject(c, "level", CL_BOOT_LEVEL);
  char buf[40]; /* %.17g: cJSON's own printing may round (it compares with a tolerance) */
  snprintf(buf, sizeof buf, "%.17g", lo);
  cJSON_AddRawToObject(c, "low", buf);
  snprintf(buf, sizeof buf, "%.17g", hi);
  cJSON_AddRawToObject(c, "high", buf);
  cJSON_AddNumberToObject(c, "resamples", r->ci_resamples);
  cJSON_AddNumberToObject(c, "seed", (double)r->ci_seed);
}

static int write_json(FILE *f, const cl_compare_result *r) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < r->n; i++) {
    const cl_compare_row *x = &r->rows[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "experiment", x->experiment);
    cJSON_AddStringToObject(o, "model", x->model);
    cJSON_AddStringToObject(o, "dataset", x->dataset);
    cJSON_AddStringToObject(o, "protocol", x->protocol);
    cJSON_AddStringToObject(o, "text_type", x->text_type);
    cJSON_AddNumberToObject(o, "shots", x->shots);
    cJSON_AddStringToObject(o, "query", x->query);
    cJSON_AddStringToObject(o, "key", x->key);
    cJSON_AddStringToObject(o, "split", x->split);
    cJSON_AddStringToObject(o, "rank", x->rank);
    cJSON_AddStringToObject(o, "metric", x->metric);
    json_num(o, "base", x->has_base, x->base);
    json_num(o, "head", x->has_head, x->head);
    json_num(o, "delta", x->has_base && x->has_head, x->delta);
    json_num(o, "p_value", x->has_p, x->p);
    json_ci(o, "base_ci", x->has_base_ci, x->base_lo, x->base_hi, r);
    json_ci(o, "head_ci", x->has_head_ci, x->head_lo, x->head_hi, r);
    cJSON_AddStringToObject(o, "verdict", cl_compare_verdict_name(x->verdict));
    cJSON_AddStringToObject(o, "test", x->test);
    cJSON_AddNumberToObject(o, "n_pairs", (double)x->n_pairs);
    cJSON_AddNumberToObject(o, "base_only_correct", (double)x->b);
    cJSON_AddNumberToObject(o, "head_only_correct", (double)x->c);
    cJSON_AddNumberToObject(o, "base_run", (double)r->base.run_id);
    cJSON_AddNumberToObject(o, "head_run", (double)r->head.run_id);
    cJSON_AddItemToArray(arr, o);
  }
  char *txt = cJSON_Print(arr);
  cJSON_Delete(arr);
  if (!txt) return -1;
  fprintf(f, "%s\n", txt);
  cJSON_free(txt);
  return 0;
}

int cl_compare_write(FILE *f, const cl_compare_result *r, const char *format) {
  if (strcmp(format, "table") == 0) write_table(f, r);
  else if (strcmp(format, "markdown") == 0) write_markdown(f, r);
  else if (strcmp(format, "json") == 0) return write_json(f, r);
  else return -1;
  return 0;
}
