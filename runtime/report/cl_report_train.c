/* cl_report_train: the report's plots of training, drawn when the run trained models or
 * evaluated trained ones (train "name" { ... } declarations): the loss of each training job per
 * step, and the train-type x test-type table as heatmaps of zero-shot top-1 (rows: the trained
 * models with the text types they trained on; columns: the text types they were tested with;
 * one heatmap per dataset, e.g. seen and held-out species). Read from train_jobs,
 * train_steps and the trained models' evaluations (cl_store_each_train_*). */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cl_report.h"
#include "cl_report_svg.h"

#define PLOT_W 960.0
#define PLOT_H 260.0
#define ML 64.0
#define MR 16.0
#define MT 14.0

typedef struct tjob {
  int64_t id;
  char *name, *label; /* label: name and the training text types */
  double *step, *loss;
  int n, cap;
} tjob;

typedef struct tjobs {
  tjob *v;
  int n, cap;
} tjobs;

/* "common", or "common 1/3 + taxonomic 2/3" from [{"type": t, "weight": w}, ...]. */
static char *mixture_text(const char *json) {
  cJSON *a = json ? cJSON_Parse(json) : NULL;
  double total = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, a) total += cJSON_GetNumberValue(cJSON_GetObjectItem(p, "weight"));
  char *out = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&out, &len);
  int n = cJSON_GetArraySize(a), i = 0;
  cJSON_ArrayForEach(p, a) {
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(p, "type"));
    double w = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "weight"));
    if (n == 1) fprintf(m, "%s", t ? t : "?");
    else fprintf(m, "%s%s %.2g", i ? " + " : "", t ? t : "?", total > 0 ? w / total : w);
    i++;
  }
  if (!n) fputs("?", m);
  fclose(m);
  cJSON_Delete(a);
  return out;
}

static tjob *job_add(tjobs *js, int64_t id, const char *name, const char *mixture_json) {
  for (int i = 0; i < js->n; i++)
    if (js->v[i].id == id) return &js->v[i];
  if (js->n == js->cap) {
    js->cap = js->cap ? 2 * js->cap : 8;
    js->v = realloc(js->v, (size_t)js->cap * sizeof *js->v);
    if (!js->v) abort();
  }
  tjob *j = &js->v[js->n++];
  memset(j, 0, sizeof *j);
  j->id = id;
  j->name = cl_strdup(name ? name : "?");
  char *mix = mixture_text(mixture_json);
  j->label = cl_asprintf("%s (%s)", j->name, mix);
  free(mix);
  return j;
}

static int job_row(const cl_train_job_row *r, void *ud, cl_error *e) {
  (void)e;
  job_add(ud, r->id, r->name, r->mixture_json);
  return 0;
}

/* The trained models' zero-shot cells: (job, dataset, text type) -> mean top-1. */
typedef struct tcell {
  int job;
  char *dataset, *text_type, *what;
  double sum;
  int cnt;
} tcell;

typedef struct tevals {
  tjobs *jobs;
  tcell *v;
  int n, cap;
} tevals;

static int eval_row(const cl_train_eval_row *r, void *ud, cl_error *e) {
  (void)e;
  tevals *t = ud;
  tjob *j = job_add(t->jobs, r->train_id, r->train_name, r->mixture_json);
  if (!r->has_value || strcmp(r->protocol, "zero_shot") != 0) return 0;
  int ji = (int)(j - t->jobs->v);
  tcell *c = NULL;
  for (int i = 0; i < t->n && !c; i++)
    if (t->v[i].job == ji && !strcmp(t->v[i].dataset, r->dataset) && !strcmp(t->v[i].text_type, r->text_type))
      c = &t->v[i];
  if (!c) {
    if (t->n == t->cap) {
      t->cap = t->cap ? 2 * t->cap : 32;
      t->v = realloc(t->v, (size_t)t->cap * sizeof *t->v);
      if (!t->v) abort();
    }
    c = &t->v[t->n++];
    *c = (tcell){.job = ji, .dataset = cl_strdup(r->dataset), .text_type = cl_strdup(r->text_type)};
  }
  c->sum += r->value;
  c->cnt++;
  char *w = cl_asprintf("%s%s%s %.2f%%", c->what ? c->what : "", c->what ? "; " : "", r->experiment, 100 * r->value);
  free(c->what);
  c->what = w;
  return 0;
}

typedef struct steps_ctx {
  tjob *j;
} steps_ctx;

static int step_row(const cl_train_step_row *r, void *ud, cl_error *e) {
  (void)e;
  tjob *j = ((steps_ctx *)ud)->j;
  if (isnan(r->loss)) return 0;
  if (j->n == j->cap) {
    j->cap = j->cap ? 2 * j->cap : 256;
    j->step = realloc(j->step, (size_t)j->cap * sizeof *j->step);
    j->loss = realloc(j->loss, (size_t)j->cap * sizeof *j->loss);
    if (!j->step || !j->loss) abort();
  }
  j->step[j->n] = (double)r->step;
  j->loss[j->n++] = r->loss;
  return 0;
}

static void plot_loss(FILE *f, const tjobs *js) {
  cl_report_figure_open(f, "plot-loss", "Training loss.",
                        "The contrastive loss (ClipLoss, before each step's update) of each training job per step.");
  double xmax = 1, lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < js->n; i++)
    for (int k = 0; k < js->v[i].n; k++) {
      xmax = fmax(xmax, js->v[i].step[k]);
      lo = fmin(lo, js->v[i].loss[k]), hi = fmax(hi, js->v[i].loss[k]);
    }
  if (!(hi >= lo)) {
    cl_report_note(f, "note omitted", "No training step recorded: plot omitted.");
    fputs("</figure>\n", f);
    return;
  }
  const char **labels = cl_xcalloc((size_t)js->n, sizeof *labels);
  for (int i = 0; i < js->n; i++) labels[i] = js->v[i].label;
  const double pw = PLOT_W - ML - MR, W = PLOT_W, lh = cl_report_svg_legend_height(W - ML, js->n, labels);
  const double H = MT + PLOT_H + 40 + lh + 8;
  cl_report_svg_open(f, W, H, "training loss per step");
  cl_report_frame fr = {ML, MT, pw, PLOT_H, 0, 1};
  cl_report_svg_yaxis(f, &fr, fmin(lo, 0), hi, 0, INFINITY, 0, "loss");
  double x0 = 0, x1 = xmax, ticks[12];
  int nt = cl_report_svg_ticks(&x0, &x1, 0, INFINITY, ticks, 8);
#define XPOS(s) (fr.x0 + fr.w * ((s) - x0) / (x1 > x0 ? x1 - x0 : 1))
  for (int i = 0; i < nt; i++) {
    char lab[32];
    snprintf(lab, sizeof lab, "%.0f", ticks[i]);
    cl_report_svg_text(f, XPOS(ticks[i]), fr.y0 + fr.h + 14, "middle", 10, 0, NULL, lab);
  }
  cl_report_svg_text(f, fr.x0 + fr.w / 2, fr.y0 + fr.h + 30, "middle", 11, 0, "class=\"axis-title\"", "step");
  fputc('\n', f);
  for (int i = 0; i < js->n; i++) {
    const tjob *j = &js->v[i];
    const char *col = cl_report_svg_color(i), *dash = cl_report_svg_dash(i);
    fputs("<g><title>", f);
    char *tip = cl_asprintf("%s: %d steps, loss %.4g to %.4g", j->label, j->n, j->n ? j->loss[0] : NAN,
                            j->n ? j->loss[j->n - 1] : NAN);
    cl_report_html(f, tip);
    free(tip);
    fprintf(f, "</title><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s%s%s points=\"", col,
            *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
    for (int k = 0; k < j->n; k++) fprintf(f, "%.1f,%.1f ", XPOS(j->step[k]), cl_report_ymap(&fr, j->loss[k]));
    fputs("\"/></g>\n", f);
  }
#undef XPOS
  cl_report_svg_legend(f, ML, MT + PLOT_H + 40, W - ML, js->n, labels, "line");
  fputs("</svg>\n</figure>\n", f);
  free(labels);
}

/* Strings in order of first appearance: the index of s, added when new. */
static int find_add(char ***v, int *n, const char *s) {
  for (int i = 0; i < *n; i++)
    if (!strcmp((*v)[i], s)) return i;
  *v = realloc(*v, (size_t)(*n + 1) * sizeof **v);
  if (!*v) abort();
  (*v)[*n] = cl_strdup(s);
  return (*n)++;
}

static void plot_types(FILE *f, const tjobs *js, const tevals *t) {
  cl_report_figure_open(f, "plot-train-types", "Train type \xc3\x97 test type.",
                        "Zero-shot top-1 of each trained model (rows: the text types it trained on) with each text type "
                        "it was tested with (columns), one table per dataset; hover a cell for the experiments.");
  if (!t->n) {
    cl_report_note(f, "note omitted", "No zero-shot evaluation of a trained model in this run: heatmap omitted.");
    fputs("</figure>\n", f);
    return;
  }
  char **ds = NULL, **tts = NULL;
  int nd = 0, nt = 0;
  for (int i = 0; i < t->n; i++) find_add(&ds, &nd, t->v[i].dataset), find_add(&tts, &nt, t->v[i].text_type);
  for (int d = 0; d < nd; d++) {
    /* the rows: the jobs evaluated on this dataset, in job order */
    int *rows = cl_xcalloc((size_t)js->n, sizeof *rows), R = 0;
    for (int j = 0; j < js->n; j++)
      for (int i = 0; i < t->n; i++)
        if (t->v[i].job == j && !strcmp(t->v[i].dataset, ds[d])) {
          rows[R++] = j;
          break;
        }
    double *val = cl_xmalloc((size_t)R * nt * sizeof *val);
    char **tips = cl_xcalloc((size_t)R * nt, sizeof *tips);
    const char **rl = cl_xcalloc((size_t)R, sizeof *rl);
    for (int r = 0; r < R; r++) {
      rl[r] = js->v[rows[r]].label;
      for (int c = 0; c < nt; c++) {
        val[r * nt + c] = NAN;
        for (int i = 0; i < t->n; i++) {
          const tcell *x = &t->v[i];
          if (x->job != rows[r] || strcmp(x->dataset, ds[d]) || strcmp(x->text_type, tts[c])) continue;
          val[r * nt + c] = x->sum / x->cnt;
          tips[r * nt + c] = cl_asprintf("trained %s, tested with %s on %s: %.2f%% (%s)", rl[r], tts[c], ds[d],
                                         100 * val[r * nt + c], x->what);
        }
      }
    }
    fputs("<h4>", f);
    cl_report_html(f, ds[d]);
    fputs("</h4>\n", f);
    char id[32], *label = cl_asprintf("zero-shot top-1 on %s by training and test text type", ds[d]);
    snprintf(id, sizeof id, "train-scale-%d", d);
    cl_report_svg_heatmap(f, id, label, R, nt, rl, (const char *const *)tts, val, (const char *const *)tips);
    free(label);
    for (int k = 0; k < R * nt; k++) free(tips[k]);
    free(tips), free(val), free(rl), free(rows);
  }
  fputs("</figure>\n", f);
  for (int i = 0; i < nd; i++) free(ds[i]);
  for (int i = 0; i < nt; i++) free(tts[i]);
  free(ds), free(tts);
}

int cl_report_train_plots(FILE *f, cl_store *s, int64_t run_id, int *drawn, cl_error *e) {
  tjobs js = {0};
  tevals t = {.jobs = &js};
  int rc = cl_store_each_train_job(s, run_id, job_row, &js, e);
  if (!rc) rc = cl_store_each_train_eval(s, run_id, "top1", eval_row, &t, e);
  for (int i = 0; i < js.n && !rc && f; i++) {
    steps_ctx c = {&js.v[i]};
    rc = cl_store_each_train_step(s, js.v[i].id, step_row, &c, e);
  }
  if (drawn) *drawn = !rc && js.n > 0;
  if (!rc && js.n && f) {
    plot_loss(f, &js);
    plot_types(f, &js, &t);
  }
  for (int i = 0; i < js.n; i++) free(js.v[i].name), free(js.v[i].label), free(js.v[i].step), free(js.v[i].loss);
  free(js.v);
  for (int i = 0; i < t.n; i++) free(t.v[i].dataset), free(t.v[i].text_type), free(t.v[i].what);
  free(t.v);
  return rc;
}
