/* cl_report: the HTML report of a run: tables per experiment and four SVG plots. */
#define _GNU_SOURCE
#include "cl_report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_report_svg.h"
#include "cl_stats.h"

#define MAX_METRICS 32
#define PLOT_W 960.0 /* fits a 1200 px window beside the margins; wider plots scroll */
#define PLOT_H 260.0
#define ML 64.0 /* left margin: the y tick labels and the axis title */
#define MR 16.0
#define MT 14.0

/* ---- small containers ---- */

/* Strings in order of first appearance. */
typedef struct strlist {
  char **v;
  int n, cap;
} strlist;

static int sl_find(const strlist *l, const char *s) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0) return i;
  return -1;
}

static int sl_add(strlist *l, const char *s) {
  int i = sl_find(l, s);
  if (i >= 0) return i;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    char **nv = realloc(l->v, (size_t)l->cap * sizeof *nv);
    if (!nv) abort(); /* the report holds a run's cells: tiny */
    l->v = nv;
  }
  l->v[l->n] = cl_strdup(s);
  return l->n++;
}

static void sl_free(strlist *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}


/* ---- the run's cells ---- */

typedef struct rcell {
  int64_t eval_id;
  char *experiment, *model, *dataset, *protocol, *text_type;
  char *axes; /* the retrieval axes as text ("" when none) */
  int shots, ntrials;
  int64_t n;
  int nm;
  char *mname[MAX_METRICS];
  double mval[MAX_METRICS];
  int mhas[MAX_METRICS];
} rcell;

typedef struct run_data {
  rcell *c;
  int n, cap;
  const cl_stats *st; /* top1 intervals and ties (empty with --ci none) */
  char *describe;     /* how they were made */
} run_data;

/* The top1 interval of a cell's aggregate, or NULL. */
static const cl_stats_cell *ci_of(const run_data *d, const rcell *c) {
  return cl_stats_find(d->st, c->eval_id, -1, "top1");
}

static int result_row(const cl_result_row *r, void *ud, cl_error *e) {
  run_data *d = ud;
  if (!d->n || d->c[d->n - 1].eval_id != r->eval_id) {
    if (d->n == d->cap) {
      d->cap = d->cap ? 2 * d->cap : 64;
      rcell *nv = realloc(d->c, (size_t)d->cap * sizeof *nv);
      if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading results");
      d->c = nv;
    }
    rcell *c = &d->c[d->n++];
    memset(c, 0, sizeof *c);
    c->eval_id = r->eval_id;
    c->experiment = cl_strdup(r->experiment ? r->experiment : "");
    c->model = cl_strdup(r->model ? r->model : "");
    c->dataset = cl_strdup(r->dataset ? r->dataset : "");
    c->protocol = cl_strdup(r->protocol ? r->protocol : "");
    c->text_type = cl_strdup(r->text_type ? r->text_type : "");
    c->axes = cl_store_axes_text(r->query, r->key, r->split, r->rank);
    c->shots = r->shots;
    c->n = r->n_examples;
  }
  rcell *c = &d->c[d->n - 1];
  if (r->trial >= 0) {
    if (r->trial + 1 > c->ntrials) c->ntrials = r->trial + 1;
    return 0;
  }
  if (c->nm == MAX_METRICS) return 0; /* more aggregates than a table can show: drop */
  c->mname[c->nm] = cl_strdup(r->metric);
  c->mval[c->nm] = r->value;
  c->mhas[c->nm] = r->has_value;
  c->nm++;
  return 0;
}

static void run_data_free(run_data *d) {
  for (int i = 0; i < d->n; i++) {
    rcell *c = &d->c[i];
    free(c->experiment), free(c->model), free(c->dataset), free(c->protocol), free(c->text_type);
    free(c->axes);
    for (int m = 0; m < c->nm; m++) free(c->mname[m]);
  }
  free(d->c);
}

static int metric(const rcell *c, const char *name, double *v) {
  for (int m = 0; m < c->nm; m++)
    if (c->mhas[m] && strcmp(c->mname[m], name) == 0) {
      *v = c->mval[m];
      return 1;
    }
  return 0;
}

static int is_zero_shot(const rcell *c) { return strcmp(c->protocol, "zero_shot") == 0; }

static int ci_any(const run_data *d) {
  for (int i = 0; i < d->n; i++)
    if (ci_of(d, &d->c[i])) return 1;
  return 0;
}

/* Whether any metric of any cell has an interval. */
static int ci_any_metric(const run_data *d) {
  for (int i = 0; i < d->n; i++)
    for (int m = 0; m < d->c[i].nm; m++)
      if (cl_stats_find(d->st, d->c[i].eval_id, -1, d->c[i].mname[m])) return 1;
  return 0;
}

/* top-k and acc* are fractions, shown in % */
static int is_fraction(const char *m) { return cl_store_metric_is_fraction(m); }

/* ---- run provenance ---- */

typedef struct run_meta {
  int64_t id;
  char *file, *commit, *branch, *status, *started, *backend, *device, *precision;
  int dirty, has_wall;
  double wall;
  int64_t images_encoded, images_cached, texts_encoded, texts_cached;
} run_meta;

typedef struct run_list {
  run_meta *v;
  int n, cap;
} run_list;

static char *dup_or_null(const char *s) { return s ? cl_strdup(s) : NULL; }

static int run_row(const cl_run_row *r, void *ud, cl_error *e) {
  run_list *l = ud;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 32;
    run_meta *nv = realloc(l->v, (size_t)l->cap * sizeof *nv);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory reading runs");
    l->v = nv;
  }
  l->v[l->n++] = (run_meta){
      .id = r->id,
      .file = dup_or_null(r->file),
      .commit = dup_or_null(r->git_commit),
      .branch = dup_or_null(r->git_branch),
      .status = dup_or_null(r->status),
      .started = dup_or_null(r->started_at),
      .backend = dup_or_null(r->backend),
      .device = dup_or_null(r->device),
      .precision = dup_or_null(r->precision),
      .dirty = r->git_dirty,
      .has_wall = r->has_wall,
      .wall = r->wall_seconds,
      .images_encoded = r->images_encoded,
      .images_cached = r->images_cached,
      .texts_encoded = r->texts_encoded,
      .texts_cached = r->texts_cached,
  };
  return 0;
}

static void run_list_free(run_list *l) {
  for (int i = 0; i < l->n; i++) {
    run_meta *m = &l->v[i];
    free(m->file), free(m->commit), free(m->branch), free(m->status), free(m->started);
    free(m->backend), free(m->device), free(m->precision);
  }
  free(l->v);
}

/* "abc1234", "abc1234*" when dirty, "run 7" without git */
static char *short_commit(const run_meta *m) {
  if (!m->commit) return cl_asprintf("run %lld", (long long)m->id);
  return cl_asprintf("%.7s%s", m->commit, m->dirty == 1 ? "*" : "");
}

/* Series labels made of the fields that differ between series (the others go to the
 * caption): k fields per series, row-major; fallback: the field used when none differs. */
static char **compact_labels(char **fields, int n, int k, int fallback) {
  int vary[8] = {0};
  for (int j = 0; j < k && j < 8; j++)
    for (int i = 1; i < n && !vary[j]; i++) vary[j] = strcmp(fields[i * k + j], fields[j]) != 0;
  int any = 0;
  for (int j = 0; j < k; j++) any |= vary[j];
  if (!any) vary[fallback] = 1;
  char **out = cl_xcalloc((size_t)(n ? n : 1), sizeof *out);
  for (int i = 0; i < n; i++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    int first = 1;
    for (int j = 0; j < k; j++) {
      const char *s = fields[i * k + j];
      if (!vary[j] || !*s) continue;
      fprintf(m, "%s%s", first ? "" : " \xc2\xb7 ", s);
      first = 0;
    }
    fclose(m);
    out[i] = buf;
  }
  return out;
}

static void free_strs(char **v, int n) {
  for (int i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

/* ---- bar plots: one group per dataset (zero-shot top-1) or per retrieval cell (query->key,
 * split and rank: micro top-1), one bar per model with its 95% interval as an error bar ---- */

typedef struct bar_spec {
  const char *id, *title, *caption, *metric, *ylabel, *svg_title, *none;
  int retrieval; /* groups: the retrieval axes of retrieval cells; else zero-shot cells' datasets */
} bar_spec;

static size_t max_len(const strlist *l) {
  size_t n = 0;
  for (int i = 0; i < l->n; i++)
    if (strlen(l->v[i]) > n) n = strlen(l->v[i]);
  return n;
}

static int bar_cell(const bar_spec *b, const rcell *c, double *v) {
  return (b->retrieval ? *c->axes != 0 : is_zero_shot(c)) && metric(c, b->metric, v);
}

static void plot_bars(FILE *f, const run_data *d, const bar_spec *b) {
  strlist ds = {0}, ms = {0};
  int any_ci = 0;
  for (int i = 0; i < d->n; i++) {
    double v;
    if (!bar_cell(b, &d->c[i], &v)) continue;
    sl_add(&ds, b->retrieval ? d->c[i].axes : d->c[i].dataset);
    sl_add(&ms, d->c[i].model);
    any_ci |= cl_stats_find(d->st, d->c[i].eval_id, -1, b->metric) != NULL;
  }
  char *cap = cl_asprintf("%s%s", b->caption, any_ci ? " Error bars: the 95% bootstrap confidence interval." : "");
  cl_report_figure_open(f, b->id, b->title, cap);
  free(cap);
  if (!ds.n) {
    cl_report_note(f, "note omitted", b->none);
    fputs("</figure>\n", f);
    return;
  }
  int G = ds.n, S = ms.n;
  double *val = cl_xmalloc((size_t)G * S * sizeof *val);
  const rcell **best = cl_xcalloc((size_t)G * S, sizeof *best);
  for (int i = 0; i < G * S; i++) val[i] = NAN;
  double vmax = 0;
  for (int i = 0; i < d->n; i++) {
    double v;
    const rcell *c = &d->c[i];
    if (!bar_cell(b, c, &v)) continue;
    int k = sl_find(&ds, b->retrieval ? c->axes : c->dataset) * S + sl_find(&ms, c->model);
    if (isnan(val[k]) || v > val[k]) val[k] = v, best[k] = c;
    const cl_stats_cell *ci = cl_stats_find(d->st, c->eval_id, -1, b->metric);
    if (v > vmax) vmax = v;
    if (ci && ci->hi > vmax) vmax = ci->hi;
  }
  /* a retrieval cell's label ("image+dna->image+dna test_unseen species") needs room: wider, scrolled */
  double gw = fmax(fmax((PLOT_W - ML - MR) / G, S * 10.0 + 16), b->retrieval ? 6.0 * (double)max_len(&ds) : 0), pw = gw * G;
  double W = ML + pw + MR, lh = cl_report_svg_legend_height(W - ML, S, (const char *const *)ms.v);
  double H = MT + PLOT_H + 30 + (S > 1 ? lh + 8 : 0);
  cl_report_svg_open(f, W, H, b->svg_title);
  cl_report_frame fr = {ML, MT, pw, PLOT_H, 0, 1};
  cl_report_svg_yaxis(f, &fr, 0, vmax, 0, 1, 1, b->ylabel);
  double bw = fmin(gw * 0.8 / S, 56); /* a lone bar need not fill its group */
  for (int g = 0; g < G; g++) {
    double gx = ML + g * gw, bx = gx + (gw - bw * S) / 2;
    for (int s = 0; s < S; s++) {
      double v = val[g * S + s];
      if (isnan(v)) continue;
      const rcell *c = best[g * S + s];
      double x = bx + s * bw, y = cl_report_ymap(&fr, v), h = fr.y0 + fr.h - y;
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
              x, y, fmax(bw - 1, 1), fmax(h, 0.5), cl_report_svg_color(s));
      const cl_stats_cell *ci = cl_stats_find(d->st, c->eval_id, -1, b->metric);
      char *t = b->retrieval ? cl_asprintf("%s on %s, %s: %s %.2f%% (%s)", c->model, c->dataset, c->axes, b->metric,
                                           100 * v, c->experiment)
                             : cl_asprintf("%s on %s: %.2f%% (text type %s, %s)", c->model, c->dataset, 100 * v,
                                           *c->text_type ? c->text_type : "-", c->experiment);
      if (ci) {
        char *u = cl_asprintf("%s; 95%% CI %.2f to %.2f%%%s%s", t, 100 * ci->lo, 100 * ci->hi, ci->tie ? "; " : "",
                              cl_stats_tie_name(ci->tie));
        free(t);
        t = u;
      }
      cl_report_html(f, t);
      free(t);
      fputs("</title></rect>\n", f);
      if (ci) { /* the 95% interval as an error bar */
        double cx = x + (bw - 1) / 2, y1 = cl_report_ymap(&fr, ci->lo), y2 = cl_report_ymap(&fr, ci->hi), cap = fmin(4, bw / 4);
        fprintf(f, "<path class=\"ci\" d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"#222\" "
                "fill=\"none\"/>\n", cx, y1, y2, cx - cap, y1, cx + cap, cx - cap, y2, cx + cap);
      }
      if (bw >= 26) { /* room for the value above the bar */
        char lab[16];
        snprintf(lab, sizeof lab, "%.1f", 100 * v);
        cl_report_svg_text(f, x + bw / 2, y - 3, "middle", 10, 0, "class=\"value\"", lab);
      }
    }
    cl_report_svg_text(f, gx + gw / 2, fr.y0 + fr.h + 16, "middle", 11, gw - 4, NULL, ds.v[g]);
    fputc('\n', f);
  }
  if (S > 1) cl_report_svg_legend(f, ML, MT + PLOT_H + 30, W - ML, S, (const char *const *)ms.v, "box");
  else cl_report_svg_text(f, W - MR, MT + 10, "end", 11, W / 2, "class=\"value\"", ms.v[0]);
  fputs("</svg>\n</figure>\n", f);
  free(val);
  free(best);
  sl_free(&ds);
  sl_free(&ms);
}

/* ---- plot 2: accuracy vs shots, one line per (experiment, model, dataset, protocol) ---- */

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static void plot_shots(FILE *f, const run_data *d) {
  strlist keys = {0};
  int *shots = cl_xmalloc((size_t)(d->n ? d->n : 1) * sizeof *shots), nshots = 0;
  for (int i = 0; i < d->n; i++) {
    const rcell *c = &d->c[i];
    double v;
    if (c->shots <= 0 || is_zero_shot(c) || !metric(c, "top1", &v)) continue;
    char *k = cl_asprintf("%s\x1f%s\x1f%s\x1f%s", c->experiment, c->model, c->dataset, c->protocol);
    sl_add(&keys, k);
    free(k);
    int seen = 0;
    for (int j = 0; j < nshots; j++) seen |= shots[j] == c->shots;
    if (!seen) shots[nshots++] = c->shots;
  }
  cl_report_figure_open(f, "plot-shots", "Accuracy vs shots.",
              ci_any(d) ? "Top-1 per protocol with trials (few-shot, linear probe): mean over trials; error bars the 95% "
                          "bootstrap confidence interval (over trials and examples; one standard deviation where no "
                          "per-example predictions are stored)."
                        : "Top-1 per protocol with trials (few-shot, linear probe): mean over trials, error bars one standard deviation.");
  if (!keys.n) {
    cl_report_note(f, "note omitted", "No few-shot or linear-probe results in this run: plot omitted.");
    fputs("</figure>\n", f);
    free(shots);
    return;
  }
  qsort(shots, (size_t)nshots, sizeof *shots, cmp_int);
  int S = keys.n;
  double *mean = cl_xmalloc((size_t)S * nshots * sizeof *mean), *sd = cl_xmalloc((size_t)S * nshots * sizeof *sd);
  double *elo = cl_xmalloc((size_t)S * nshots * sizeof *elo), *ehi = cl_xmalloc((size_t)S * nshots * sizeof *ehi);
  for (int i = 0; i < S * nshots; i++) mean[i] = sd[i] = elo[i] = ehi[i] = NAN;
  double lo = 1, hi = 0;
  for (int i = 0; i < d->n; i++) {
    const rcell *c = &d->c[i];
    double v, s = 0;
    if (c->shots <= 0 || is_zero_shot(c) || !metric(c, "top1", &v)) continue;
    char *k = cl_asprintf("%s\x1f%s\x1f%s\x1f%s", c->experiment, c->model, c->dataset, c->protocol);
    int si = sl_find(&keys, k), xi = 0;
    free(k);
    while (shots[xi] != c->shots) xi++;
    if (!isnan(mean[si * nshots + xi])) continue; /* a repeated cell: the first one */
    if (!metric(c, "top1_std", &s)) s = 0;
    mean[si * nshots + xi] = v, sd[si * nshots + xi] = s;
    const cl_stats_cell *ci = ci_of(d, c); /* the error bar: the interval, else +- std */
    elo[si * nshots + xi] = ci ? ci->lo : v - s, ehi[si * nshots + xi] = ci ? ci->hi : v + s;
    lo = fmin(lo, elo[si * nshots + xi]), hi = fmax(hi, ehi[si * nshots + xi]);
  }
  /* labels from the fields that tell series apart */
  char **fields = cl_xmalloc((size_t)S * 4 * sizeof *fields);
  for (int i = 0; i < S; i++) {
    char *p = cl_strdup(keys.v[i]);
    for (int j = 0; j < 4; j++) {
      char *sep = strchr(p, '\x1f');
      if (sep) *sep = 0;
      fields[i * 4 + j] = cl_strdup(p);
      if (sep) memmove(p, sep + 1, strlen(sep + 1) + 1);
    }
    free(p);
  }
  char **labels = compact_labels(fields, S, 4, 1);
  double spacing = fmax((PLOT_W - ML - MR - 60) / (nshots > 1 ? nshots - 1 : 1), 40);
  double pw = spacing * (nshots > 1 ? nshots - 1 : 1) + 60, W = ML + pw + MR;
  double lh = cl_report_svg_legend_height(W - ML, S, (const char *const *)labels), H = MT + PLOT_H + 40 + lh + 8;
  cl_report_svg_open(f, W, H, "accuracy versus number of shots");
  cl_report_frame fr = {ML, MT, pw, PLOT_H, 0, 1};
  cl_report_svg_yaxis(f, &fr, fmax(lo, 0), fmin(hi, 1), 0, 1, 1, "top-1 accuracy");
  double x0 = ML + 30;
  for (int j = 0; j < nshots; j++) {
    double x = x0 + (nshots > 1 ? j * spacing : pw / 2 - 30);
    char lab[16];
    snprintf(lab, sizeof lab, "%d", shots[j]);
    cl_report_svg_text(f, x, fr.y0 + fr.h + 16, "middle", 11, spacing, NULL, lab);
  }
  cl_report_svg_text(f, ML + pw / 2, fr.y0 + fr.h + 32, "middle", 11, pw, "class=\"axis-title\"",
                     "shots per class");
  fputc('\n', f);
  /* series side by side around each x, so error bars do not hide each other */
  double jit = fmin(4, spacing * 0.3 / S);
  for (int s = 0; s < S; s++) {
    const char *col = cl_report_svg_color(s), *dash = cl_report_svg_dash(s);
    double off = (s - (S - 1) / 2.0) * jit;
    fprintf(f, "<g><title>");
    cl_report_html(f, labels[s]);
    fprintf(f, "</title><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"", col,
            *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
    for (int j = 0; j < nshots; j++) {
      double m = mean[s * nshots + j];
      if (isnan(m)) continue;
      double x = x0 + (nshots > 1 ? j * spacing : pw / 2 - 30) + off;
      fprintf(f, "%.1f,%.1f ", x, cl_report_ymap(&fr, m));
    }
    fputs("\"/>\n", f);
    for (int j = 0; j < nshots; j++) {
      double m = mean[s * nshots + j], e = sd[s * nshots + j];
      if (isnan(m)) continue;
      double x = x0 + (nshots > 1 ? j * spacing : pw / 2 - 30) + off;
      double y1 = cl_report_ymap(&fr, elo[s * nshots + j]), y2 = cl_report_ymap(&fr, ehi[s * nshots + j]);
      if (ehi[s * nshots + j] > elo[s * nshots + j])
        fprintf(f, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"%s\" fill=\"none\"/>",
                x, y1, y2, x - 3, y1, x + 3, x - 3, y2, x + 3, col);
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", x, cl_report_ymap(&fr, m), col);
      char *t = cl_asprintf("%s, %d shots: %.2f%% \xc2\xb1 %.2f; error bar %.2f to %.2f%%", labels[s], shots[j],
                            100 * m, 100 * e, 100 * elo[s * nshots + j], 100 * ehi[s * nshots + j]);
      cl_report_html(f, t);
      free(t);
      fputs("</title></circle>\n", f);
    }
    fputs("</g>\n", f);
  }
  cl_report_svg_legend(f, ML, MT + PLOT_H + 44, W - ML, S, (const char *const *)labels, "line");
  fputs("</svg>\n</figure>\n", f);
  free_strs(labels, S);
  free_strs(fields, S * 4);
  free(mean), free(sd), free(elo), free(ehi), free(shots);
  sl_free(&keys);
}

/* ---- plot 3: text type x model heatmap of zero-shot top1 ---- */

static void plot_heatmap(FILE *f, const run_data *d) {
  strlist tts = {0}, ms = {0};
  for (int i = 0; i < d->n; i++) {
    double v;
    if (!is_zero_shot(&d->c[i]) || !metric(&d->c[i], "top1", &v)) continue;
    sl_add(&tts, *d->c[i].text_type ? d->c[i].text_type : "-");
    sl_add(&ms, d->c[i].model);
  }
  cl_report_figure_open(f, "plot-heatmap", "Text type \xc3\x97 model.",
              "Zero-shot top-1, the mean over the datasets (and experiments) that evaluate the pair; hover a cell for them.");
  if (!tts.n) {
    cl_report_note(f, "note omitted", "No zero-shot results in this run: heatmap omitted.");
    fputs("</figure>\n", f);
    return;
  }
  int R = tts.n, C = ms.n;
  double *sum = cl_xcalloc((size_t)R * C, sizeof *sum);
  int *cnt = cl_xcalloc((size_t)R * C, sizeof *cnt);
  char **what = cl_xcalloc((size_t)R * C, sizeof *what);
  for (int i = 0; i < d->n; i++) {
    double v;
    const rcell *c = &d->c[i];
    if (!is_zero_shot(c) || !metric(c, "top1", &v)) continue;
    int k = sl_find(&tts, *c->text_type ? c->text_type : "-") * C + sl_find(&ms, c->model);
    sum[k] += v, cnt[k]++;
    char *w = cl_asprintf("%s%s%s %.2f%%", what[k] ? what[k] : "", what[k] ? "; " : "", c->dataset, 100 * v);
    free(what[k]);
    what[k] = w;
  }
  double *val = cl_xcalloc((size_t)R * C, sizeof *val);
  char **tips = cl_xcalloc((size_t)R * C, sizeof *tips);
  for (int k = 0; k < R * C; k++) {
    val[k] = cnt[k] ? sum[k] / cnt[k] : NAN;
    if (cnt[k]) tips[k] = cl_asprintf("%s, %s: %.2f%% (%s)", ms.v[k % C], tts.v[k / C], 100 * val[k], what[k]);
  }
  cl_report_svg_heatmap(f, "heat-scale", "zero-shot top-1 by text type and model", R, C, (const char *const *)tts.v,
                        (const char *const *)ms.v, val, (const char *const *)tips);
  free_strs(tips, R * C);
  free(val);
  fputs("</figure>\n", f);
  free_strs(what, R * C);
  free(sum), free(cnt);
  sl_free(&tts);
  sl_free(&ms);
}

/* ---- plot 4: top1 of each cell over the complete runs ---- */

typedef struct hist_ctx {
  strlist *keys;
  double *row; /* one value per series for the run being read */
  int hits;
} hist_ctx;

static char *cell_key(const char *x, const char *m, const char *d, const char *p, const char *t,
                      int shots, const char *axes) {
  return cl_asprintf("%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d\x1f%s", x, m, d, p, t, shots, axes);
}

static int hist_cell(const cl_cell_row *r, void *ud, cl_error *e) {
  (void)e;
  hist_ctx *h = ud;
  if (!r->has_value) return 0;
  char *axes = cl_store_axes_text(r->query, r->key, r->split, r->rank);
  char *k = cell_key(r->experiment, r->model, r->dataset, r->protocol, r->text_type, r->shots, axes);
  int i = sl_find(h->keys, k);
  free(k), free(axes);
  if (i >= 0 && isnan(h->row[i])) h->row[i] = r->value, h->hits++; /* first of duplicates */
  return 0;
}

static int plot_history(FILE *f, cl_store *s, int64_t run_id, const run_data *d, const run_list *runs,
                        cl_error *e) {
  strlist keys = {0};
  const rcell **sc = cl_xcalloc((size_t)(d->n ? d->n : 1), sizeof *sc);
  for (int i = 0; i < d->n; i++) {
    double v;
    const rcell *c = &d->c[i];
    if (!metric(c, "top1", &v)) continue;
    char *k = cell_key(c->experiment, c->model, c->dataset, c->protocol, c->text_type, c->shots, c->axes);
    if (sl_find(&keys, k) < 0) sc[sl_add(&keys, k)] = c;
    free(k);
  }
  int S = keys.n, rc = CL_OK;
  /* runs (complete, and the reported one) holding any of these cells; the latest N */
  int nr = 0;
  int *ri = cl_xmalloc((size_t)(runs->n ? runs->n : 1) * sizeof *ri);
  double *val = cl_xmalloc((size_t)(runs->n ? runs->n : 1) * (S ? S : 1) * sizeof *val);
  for (int i = 0; S && i < runs->n; i++) {
    const run_meta *m = &runs->v[i];
    if (m->id != run_id && (!m->status || strcmp(m->status, "complete") != 0)) continue;
    double *row = val + (size_t)nr * S;
    for (int k = 0; k < S; k++) row[k] = NAN;
    hist_ctx h = {&keys, row, 0};
    if ((rc = cl_store_each_cell(s, m->id, "top1", hist_cell, &h, e))) goto done;
    if (h.hits) ri[nr++] = i;
  }
  int first = nr > CL_REPORT_HISTORY_MAX ? nr - CL_REPORT_HISTORY_MAX : 0;
  /* Many cells make a plot of noise: keep the ones that moved most (the tables have all). */
  int K = 0, *keep = cl_xmalloc((size_t)(S ? S : 1) * sizeof *keep);
  double *spread = cl_xmalloc((size_t)(S ? S : 1) * sizeof *spread);
  for (int k = 0; k < S; k++) {
    double a = INFINITY, b = -INFINITY;
    for (int x = first; x < nr; x++) {
      double v = val[(size_t)x * S + k];
      if (!isnan(v)) a = fmin(a, v), b = fmax(b, v);
    }
    spread[k] = b >= a ? b - a : -1;
    if (spread[k] >= 0) keep[K++] = k;
  }
  if (K > CL_REPORT_HISTORY_SERIES) {
    /* stable selection: the largest spreads, ties to the earlier cell, then back in cell order */
    for (int i = 1; i < K; i++)
      for (int j = i; j > 0 && spread[keep[j]] > spread[keep[j - 1]]; j--) {
        int t = keep[j];
        keep[j] = keep[j - 1], keep[j - 1] = t;
      }
    qsort(keep, CL_REPORT_HISTORY_SERIES, sizeof *keep, cmp_int);
  }
  int shown = K > CL_REPORT_HISTORY_SERIES ? CL_REPORT_HISTORY_SERIES : K;
  char latest[64] = "", subset[128] = "";
  if (first) snprintf(latest, sizeof latest, "; the latest %d of %d runs", CL_REPORT_HISTORY_MAX, nr);
  if (shown < K)
    snprintf(subset, sizeof subset, " Shown: the %d of %d cells whose top-1 moved most.", shown, K);
  char *cap = cl_asprintf("Top-1 of each cell of this run over the complete runs that evaluated it, oldest first, "
                  "labelled by commit (* = dirty tree)%s.%s", latest, subset);
  cl_report_figure_open(f, "plot-history", "History across commits.", cap);
  free(cap);
  if (!shown) {
    cl_report_note(f, "note omitted", "No top-1 results to follow across runs: plot omitted.");
    fputs("</figure>\n", f);
    free(keep), free(spread);
    goto done;
  }
  int X = nr - first;
  double lo = 1, hi = 0;
  for (int x = first; x < nr; x++)
    for (int i = 0; i < shown; i++) {
      double v = val[(size_t)x * S + keep[i]];
      if (!isnan(v)) lo = fmin(lo, v), hi = fmax(hi, v);
    }
  char **fields = cl_xmalloc((size_t)shown * 6 * sizeof *fields);
  for (int i = 0; i < shown; i++) {
    const rcell *c = sc[keep[i]];
    fields[i * 6 + 0] = cl_strdup(c->experiment);
    fields[i * 6 + 1] = cl_strdup(c->model);
    fields[i * 6 + 2] = cl_strdup(c->dataset);
    fields[i * 6 + 3] = cl_strdup(c->protocol);
    fields[i * 6 + 4] = cl_strdup(c->text_type);
    fields[i * 6 + 5] = c->shots ? cl_asprintf("%d-shot", c->shots) : cl_strdup(c->axes);
  }
  char **labels = compact_labels(fields, shown, 6, 1);
  double spacing = X > 1 ? fmax((PLOT_W - ML - MR - 60) / (X - 1), 22) : 0;
  double pw = X > 1 ? spacing * (X - 1) + 60 : PLOT_W - ML - MR, W = ML + pw + MR;
  int rotate = X > 1 && spacing < 64;
  double xl = rotate ? 56 : 24, lh = cl_report_svg_legend_height(W - ML, shown, (const char *const *)labels);
  double H = MT + PLOT_H + xl + 14 + lh + 8;
  cl_report_svg_open(f, W, H, "top-1 of each cell across runs");
  cl_report_frame fr = {ML, MT, pw, PLOT_H, 0, 1};
  cl_report_svg_yaxis(f, &fr, lo, hi, 0, 1, 1, "top-1 accuracy");
#define XPOS(x) (X > 1 ? ML + 30 + ((x) - first) * spacing : ML + pw / 2)
  for (int x = first; x < nr; x++) {
    const run_meta *m = &runs->v[ri[x]];
    char *lab = short_commit(m);
    double px = XPOS(x), py = fr.y0 + fr.h + 14;
    /* the reported run in bold: with --run, later runs may follow it */
    char tr[128];
    snprintf(tr, sizeof tr, "%s", m->id == run_id ? "font-weight=\"bold\"" : "");
    if (rotate)
      snprintf(tr + strlen(tr), sizeof tr - strlen(tr), " transform=\"rotate(-40 %.1f %.1f)\"", px, py);
    fprintf(f, "<g><title>");
    char *tip = cl_asprintf("run %lld%s: %s%s, %s, %s", (long long)m->id, m->id == run_id ? " (this report)" : "",
                    m->commit ? m->commit : "no git commit", m->dirty == 1 ? " (dirty)" : "",
                    m->file ? m->file : "?", m->started ? m->started : "?");
    cl_report_html(f, tip);
    free(tip);
    fputs("</title>", f);
    cl_report_svg_text(f, px, py, rotate ? "end" : "middle", 10, rotate ? 70 : fmax(spacing, 80),
                       *tr ? tr : NULL, lab);
    fputs("</g>\n", f);
    free(lab);
  }
  for (int i = 0; i < shown; i++) {
    int k = keep[i];
    const char *col = cl_report_svg_color(i), *dash = cl_report_svg_dash(i);
    fprintf(f, "<g><title>");
    cl_report_html(f, labels[i]);
    fprintf(f, "</title><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"", col,
            *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
    for (int x = first; x < nr; x++) {
      double v = val[(size_t)x * S + k];
      if (!isnan(v)) fprintf(f, "%.1f,%.1f ", XPOS(x), cl_report_ymap(&fr, v));
    }
    fputs("\"/>\n", f);
    for (int x = first; x < nr; x++) {
      double v = val[(size_t)x * S + k];
      if (isnan(v)) continue;
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", XPOS(x), cl_report_ymap(&fr, v), col);
      char *t = cl_asprintf("%s, run %lld: %.2f%%", labels[i], (long long)runs->v[ri[x]].id, 100 * v);
      cl_report_html(f, t);
      free(t);
      fputs("</title></circle>", f);
    }
    fputs("</g>\n", f);
  }
#undef XPOS
  cl_report_svg_legend(f, ML, MT + PLOT_H + xl + 14, W - ML, shown, (const char *const *)labels, "line");
  fputs("</svg>\n", f);
  if (X == 1) cl_report_note(f, "note", "Only one run holds these cells so far: each line is a single point.");
  fputs("</figure>\n", f);
  free_strs(labels, shown);
  free_strs(fields, shown * 6);
  free(keep), free(spread);
done:
  free(ri), free(val), free(sc);
  sl_free(&keys);
  return rc;
}

/* ---- tables ---- */

static void value_cell(FILE *f, const run_data *d, const rcell *c, const char *m) {
  double v, sd;
  const cl_stats_cell *ci = cl_stats_find(d->st, c->eval_id, -1, m);
  const char *why = ci ? NULL : cl_stats_note(d->st, c->eval_id, -1, m);
  if (ci && ci->tie) fprintf(f, "<td class=\"num %s\" title=\"%s\">", cl_stats_tie_name(ci->tie),
                             ci->tie == CL_TIE_WORSE ? "significantly worse than the best"
                             : ci->tie == CL_TIE_BEST ? "the best" : "not significantly worse than the best");
  else if (why) { /* no interval: hovering says why */
    fputs("<td class=\"num\" title=\"", f);
    cl_report_html(f, why);
    fputs("\">", f);
  } else fputs("<td class=\"num\">", f);
  if (!metric(c, m, &v)) {
    int stored = 0;
    for (int k = 0; k < c->nm; k++) stored |= strcmp(c->mname[k], m) == 0;
    fputs(stored ? "nan" : "", f);
  } else {
    char *std_name = cl_asprintf("%s_std", m), buf[96];
    int frac = is_fraction(m), has_sd = metric(c, std_name, &sd);
    free(std_name);
    if (frac) snprintf(buf, sizeof buf, "%.2f", 100 * v);
    else snprintf(buf, sizeof buf, "%.4g", v);
    int strong = ci && (ci->tie == CL_TIE_BEST || ci->tie == CL_TIE_TIED);
    fprintf(f, "%s%s%s", strong ? "<strong>" : "", buf, strong ? "</strong>" : "");
    if (ci) fprintf(f, " <span class=\"ci\">[%.2f, %.2f]</span>", 100 * ci->lo, 100 * ci->hi);
    if (has_sd) {
      if (frac) snprintf(buf, sizeof buf, "%.2f", 100 * sd);
      else snprintf(buf, sizeof buf, "%.4g", sd);
      fprintf(f, " <span class=\"sd\">\xc2\xb1 %s</span>", buf);
    }
  }
  fputs("</td>", f);
}

static void tables(FILE *f, const run_data *d) {
  strlist xs = {0};
  for (int i = 0; i < d->n; i++) sl_add(&xs, d->c[i].experiment);
  fputs("<section id=\"tables\">\n<h2>Results by experiment</h2>\n", f);
  if (!xs.n) cl_report_note(f, "note", "This run holds no results.");
  else if (ci_any_metric(d)) {
    char *t = cl_asprintf("In bold: the best of its dataset, protocol and shots in that metric, or tied with it; "
                          "[a, b]: %s.",
                          d->describe);
    cl_report_note(f, "note ci", t);
    free(t);
  }
  for (int x = 0; x < xs.n; x++) {
    /* metric columns: every aggregate but X_std beside its X (shown as X \u00b1 std) */
    strlist ms = {0};
    for (int i = 0; i < d->n; i++) {
      const rcell *c = &d->c[i];
      if (strcmp(c->experiment, xs.v[x]) != 0) continue;
      for (int m = 0; m < c->nm; m++) {
        const char *n = c->mname[m];
        size_t l = strlen(n);
        if (l > 4 && strcmp(n + l - 4, "_std") == 0) {
          char *base = strndup(n, l - 4);
          int paired = 0;
          for (int k = 0; k < c->nm; k++) paired |= strcmp(c->mname[k], base) == 0;
          free(base);
          if (paired) continue;
        }
        sl_add(&ms, n);
      }
    }
    fprintf(f, "<h3 id=\"exp-%d\">", x + 1);
    cl_report_html(f, xs.v[x]);
    int ax = 0; /* a retrieval column when a cell of the experiment has axes */
    for (int i = 0; i < d->n; i++) ax |= strcmp(d->c[i].experiment, xs.v[x]) == 0 && *d->c[i].axes;
    fprintf(f, "</h3>\n<div class=\"scroll\"><table>\n<thead><tr><th>model</th><th>dataset</th>"
            "<th>protocol</th><th>text type</th><th class=\"num\">shots</th>%s<th class=\"num\">n</th>"
            "<th class=\"num\">trials</th>", ax ? "<th>retrieval</th>" : "");
    for (int m = 0; m < ms.n; m++) {
      fputs("<th class=\"num\">", f);
      cl_report_html(f, ms.v[m]);
      fputs(is_fraction(ms.v[m]) ? " %</th>" : "</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int i = 0; i < d->n; i++) {
      const rcell *c = &d->c[i];
      if (strcmp(c->experiment, xs.v[x]) != 0) continue;
      fputs("<tr><td>", f);
      cl_report_html(f, c->model);
      fputs("</td><td>", f);
      cl_report_html(f, c->dataset);
      fputs("</td><td>", f);
      cl_report_html(f, c->protocol);
      fputs("</td><td class=\"tt\">", f);
      cl_report_html(f, *c->text_type ? c->text_type : "-");
      fprintf(f, "</td><td class=\"num\">%d</td>", c->shots);
      if (ax) {
        fputs("<td>", f);
        cl_report_html(f, *c->axes ? c->axes : "-");
        fputs("</td>", f);
      }
      fprintf(f, "<td class=\"num\">%lld</td><td class=\"num\">", (long long)c->n);
      if (c->ntrials) fprintf(f, "%d", c->ntrials);
      else fputs("-", f);
      fputs("</td>", f);
      for (int m = 0; m < ms.n; m++) value_cell(f, d, c, ms.v[m]);
      fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
    sl_free(&ms);
  }
  fputs("</section>\n", f);
  sl_free(&xs);
}

/* ---- the page ---- */

static const char CSS[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px auto;"
    "max-width:1120px;padding:0 16px;color:#222;background:#fff;line-height:1.4}"
    "h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:4px;"
    "margin-top:32px}h3{font-size:1.05em;margin:20px 0 6px}"
    ".meta{color:#555;margin:2px 0;font-size:.92em}.meta code{font-size:.95em}"
    "nav{margin:12px 0;font-size:.92em}nav a{margin-right:12px;color:#2b5d9c;text-decoration:none}"
    "figure{margin:18px 0 28px}figcaption{margin-bottom:6px;font-size:.93em;color:#333}"
    ".plot,.scroll{overflow-x:auto}"
    "svg{display:block;font-family:inherit}svg text{fill:#333}svg .value{fill:#555}"
    "svg .axis-title{fill:#555}svg .grid{stroke:#e6e6e6}svg .axis{stroke:#888}"
    "svg .on-dark{fill:#fff}svg .on-light{fill:#111}svg .empty{fill:#f4f4f4;stroke:#ddd}"
    ".note{color:#555;background:#f6f6f6;border:1px solid #e2e2e2;padding:8px 12px;border-radius:4px}"
    ".note.omitted{color:#7a5b00;background:#fff8e1;border-color:#f0dca0}"
    "table{border-collapse:collapse;font-size:.9em;margin:4px 0 12px}"
    "th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}"
    "th{background:#f6f6f6;border-bottom:1px solid #ccc}.num{text-align:right;font-variant-numeric:tabular-nums}"
    "th,td.num{white-space:nowrap}td.tt{max-width:22em;overflow-wrap:break-word}.sd{color:#777}"
    ".ci{color:#777;font-size:.9em}td.worse{color:#666}"
    "footer{margin-top:40px;color:#888;font-size:.85em}";

static void header(FILE *f, const run_meta *m, const char *db, int trained, int retrieval) {
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        /* an empty icon: the browser asks for nothing */
        "<link rel=\"icon\" href=\"data:,\">\n<title>clade report: run ", f);
  fprintf(f, "%lld</title>\n<style>%s</style>\n</head>\n<body>\n<header>\n<h1>clade report: run %lld</h1>\n",
          (long long)m->id, CSS, (long long)m->id);
  fputs("<p class=\"meta\">", f);
  cl_report_html(f, m->file);
  fputs(" \xc2\xb7 ", f);
  if (m->commit) {
    fputs("commit <code title=\"", f);
    cl_report_html(f, m->commit);
    fprintf(f, "\">%.10s</code>", m->commit);
    if (m->branch) {
      fputs(" on ", f);
      cl_report_html(f, m->branch);
    }
    if (m->dirty == 1) fputs(" (dirty tree)", f);
  } else {
    fputs("no git commit", f);
  }
  fputs(" \xc2\xb7 ", f);
  cl_report_html(f, m->status);
  fputs("</p>\n<p class=\"meta\">started ", f);
  cl_report_html(f, m->started ? m->started : "?");
  if (m->has_wall) fprintf(f, ", %.1f s", m->wall);
  if (m->backend) {
    fputs(" \xc2\xb7 ", f);
    cl_report_html(f, m->backend);
    if (m->device) fputs(" ", f), cl_report_html(f, m->device);
    if (m->precision) fputs(" ", f), cl_report_html(f, m->precision);
  }
  fprintf(f, " \xc2\xb7 images encoded %lld, cached %lld \xc2\xb7 texts encoded %lld, cached %lld</p>\n",
          (long long)m->images_encoded, (long long)m->images_cached, (long long)m->texts_encoded,
          (long long)m->texts_cached);
  fputs("<p class=\"meta\">database ", f);
  cl_report_html(f, db);
  fputs("</p>\n</header>\n<nav><a href=\"#plot-bars\">zero-shot</a><a href=\"#plot-shots\">shots</a>"
        "<a href=\"#plot-heatmap\">text types</a><a href=\"#plot-history\">history</a>", f);
  if (retrieval) fputs("<a href=\"#plot-retrieval\">retrieval</a>", f);
  if (trained) fputs("<a href=\"#plot-loss\">training</a><a href=\"#plot-train-types\">train \xc3\x97 test type</a>", f);
  fputs("<a href=\"#tables\">tables</a></nav>\n", f);
}

int cl_report_write(cl_store *s, int64_t run_id, const cl_stats_opts *ci, FILE *f, cl_error *e) {
  run_list runs = {0};
  run_data d = {0};
  cl_stats *st = NULL;
  cl_stats_opts def = {.method = CL_CI_BOOTSTRAP, .resamples = CL_STATS_RESAMPLES, .seed = 0};
  if (!ci) ci = &def;
  int rc = cl_store_check_run(s, run_id, e);
  if (!rc) rc = cl_store_each_run(s, 0, run_row, &runs, e);
  if (!rc) rc = cl_store_each_result(s, run_id, result_row, &d, e);
  if (!rc) rc = cl_stats_get(s, run_id, ci, &st, e);
  if (rc) goto done;
  d.st = st;
  int any_axes = 0;
  for (int i = 0; i < d.n; i++) any_axes |= *d.c[i].axes != 0;
  d.describe = cl_stats_describe(ci, any_axes);
  const run_meta *me = NULL;
  for (int i = 0; i < runs.n; i++)
    if (runs.v[i].id == run_id) me = &runs.v[i];
  if (!me) {
    rc = cl_err(e, CL_EINVAL, "%s: no run %lld", cl_store_path(s), (long long)run_id);
    goto done;
  }
  int trained = 0; /* a first pass only asks whether the run trained (or evaluated trained) models */
  if ((rc = cl_report_train_plots(NULL, s, run_id, &trained, e))) goto done;
  header(f, me, cl_store_path(s), trained, any_axes);
  fputs("<section id=\"plots\">\n<h2>Plots</h2>\n<div class=\"plot\">\n", f);
  static const bar_spec zero_shot = {
      .id = "plot-bars", .title = "Zero-shot top-1 by dataset.", .metric = "top1", .ylabel = "top-1 accuracy",
      .caption = "One bar per model: its best text type on that dataset (hover a bar for which).",
      .svg_title = "zero-shot top-1 accuracy per dataset and model",
      .none = "No zero-shot results in this run: plot omitted."};
  static const bar_spec retrieval = {
      .id = "plot-retrieval", .title = "Retrieval micro top-1 by query and key, split and rank.",
      .metric = "micro_top1", .ylabel = "micro top-1 accuracy", .retrieval = 1,
      .caption = "One bar per model: the share of queries whose closest key has their label (CLIBD's micro "
                 "top-1; every metric is in the tables).",
      .svg_title = "retrieval micro top-1 accuracy per cell and model",
      .none = "No retrieval results in this run: plot omitted."};
  plot_bars(f, &d, &zero_shot);
  if (any_axes) plot_bars(f, &d, &retrieval);
  plot_shots(f, &d);
  plot_heatmap(f, &d);
  if ((rc = plot_history(f, s, run_id, &d, &runs, e))) goto done;
  if (trained && (rc = cl_report_train_plots(f, s, run_id, NULL, e))) goto done;
  fputs("</div>\n</section>\n", f);
  tables(f, &d);
  fprintf(f, "<footer>Written by clade %s. Accuracies in %%; \xc2\xb1 is one standard deviation over "
             "trials. Hover plot elements for exact values.</footer>\n</body>\n</html>\n", CLADE_VERSION);
done:
  free(d.describe);
  cl_stats_free(st);
  run_data_free(&d);
  run_list_free(&runs);
  return rc;
}

int cl_report_write_file(cl_store *s, int64_t run_id, const cl_stats_opts *ci, const char *path, cl_error *e) {
  char *tmp = cl_asprintf("%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) {
    int rc = cl_err(e, CL_EIO, "writing %s (through %s): %s", path, tmp, strerror(errno));
    free(tmp);
    return rc;
  }
  int rc = cl_report_write(s, run_id, ci, f, e);
  if (ferror(f) && !rc) rc = cl_err(e, CL_EIO, "%s: writing: %s", tmp, strerror(errno));
  if (fclose(f) != 0 && !rc) rc = cl_err(e, CL_EIO, "%s: closing: %s", tmp, strerror(errno));
  if (!rc && rename(tmp, path) != 0) rc = cl_err(e, CL_EIO, "renaming %s to %s: %s", tmp, path, strerror(errno));
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}
