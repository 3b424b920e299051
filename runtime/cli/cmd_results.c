/* clade results | predictions | log: read the results database (never create it).
 * Data goes to stdout as an aligned table (rounded for people), RFC 4180 CSV or JSON (full
 * precision, %.17g; each row a cJSON object); one error line to stderr. Exit 0, 1 on a runtime error, 2 on usage. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cl_cli.h"
#include "eval/cl_bootstrap.h"
#include "io/cl_csvtab.h"
#include "report/cl_stats.h"
#include "store/cl_store.h"
#include "train/cl_train_job.h"

typedef struct opts {
  const char *db;
  int64_t run; /* 0: the latest */
  const char *format;
  long limit;       /* log: the last N runs; 0 all */
  cl_stats_opts ci; /* results: the intervals and ties */
} opts;

int cl_cli_ci_option(const char *cmd, int argc, char **argv, int *i, cl_stats_opts *o) {
  static const char *const names[] = {"--ci-resamples", "--ci-seed", "--ci"};
  const char *val = NULL;
  const int which = cl_cli_option(cmd, argc, argv, i, names, 3, &val);
  if (which == -2) return -1;
  if (which < 0) return 0;
  if (which == 2) {
    if (cl_stats_parse_method(val, &o->method)) {
      cl_cli_fail("%s: --ci %s: choose none or bootstrap", cmd, val);
      return -1;
    }
    return 1;
  }
  char *end;
  errno = 0;
  long long v = strtoll(val, &end, 10);
  if (errno || end == val || *end || v < 0 || (which == 0 && (v < 1 || v > 1000000))) {
    cl_cli_fail("%s: %s %s: expected %s", cmd, names[which], val,
                which == 0 ? "a number of resamples from 1 to 1000000" : "a seed >= 0");
    return -1;
  }
  if (which == 0) o->resamples = (int)v;
  else o->seed = (uint64_t)v;
  return 1;
}

void cl_cli_ci_defaults(cl_stats_opts *o) {
  *o = (cl_stats_opts){.method = CL_CI_BOOTSTRAP, .resamples = CL_STATS_RESAMPLES, .seed = 0};
}

/* Options shared by the three commands; `formats` lists the allowed ones, the first being
 * the default. Returns 0, or 2 after printing the problem and the usage. */
static int parse(int argc, char **argv, const char *const *formats, int allow_limit, int allow_ci, opts *o) {
  const char *cmd = argv[0];
  o->db = CL_STORE_DEFAULT_PATH;
  o->run = 0;
  o->format = formats[0];
  o->limit = 0;
  cl_cli_ci_defaults(&o->ci);
  for (int i = 1; i < argc; i++) {
    if (allow_ci) {
      int took = cl_cli_ci_option(cmd, argc, argv, &i, &o->ci);
      if (took < 0) return cl_cli_usage(cmd);
      if (took) continue;
    }
    const char *a = argv[i], *val = NULL;
    static const char *const names[] = {"--db", "--run", "--format", "-n"};
    const int which = cl_cli_option(cmd, argc, argv, &i, names, 4, &val);
    if (which == -2) return cl_cli_usage(cmd);
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      char *hv[] = {"help", (char *)cmd};
      cl_cmd_help(2, hv);
      exit(0);
    }
    if (which < 0 || (which == 3 && !allow_limit)) {
      cl_cli_fail("%s: unknown %s '%s'", cmd, a[0] == '-' ? "option" : "argument", a);
      return cl_cli_usage(cmd);
    }
    if (which == 0) {
      if (!*val) {
        cl_cli_fail("%s: --db needs a path", cmd);
        return cl_cli_usage(cmd);
      }
      o->db = val;
    } else if (which == 1 || which == 3) {
      char *end;
      errno = 0;
      long long v = strtoll(val, &end, 10);
      if (errno || end == val || *end || v <= 0) {
        cl_cli_fail("%s: %s: '%s' is not a positive integer", cmd, which == 1 ? "--run" : "-n",
                    val);
        return cl_cli_usage(cmd);
      }
      if (which == 1) o->run = v;
      else o->limit = (long)v;
    } else {
      int ok = 0;
      for (const char *const *f = formats; *f; f++) ok |= strcmp(*f, val) == 0;
      if (!ok) {
        cl_cli_fail("%s: unknown format '%s'", cmd, val);
        return cl_cli_usage(cmd);
      }
      o->format = val;
    }
  }
  return 0;
}

/* ---- output helpers ---- */

/* RFC 4180: a field holding a comma, a quote, CR or LF is quoted (by libcsv, inner quotes
 * doubled); others are written as they are. */
void cl_cli_csv_field(FILE *f, const char *s) { cl_csv_write_cell(f, s); }

/* JSON rows are cJSON objects, members in the order they are added, printed on one line. */

/* A string member, or null. */
static void json_str(cJSON *o, const char *k, const char *s) {
  if (s) cJSON_AddStringToObject(o, k, s);
  else cJSON_AddNullToObject(o, k);
}

/* A number member written with %.17g (round-trips a double); JSON has no NaN, so a NULL value
 * is null there. */
static void json_num(cJSON *o, const char *k, double v, int has) {
  char buf[40];
  snprintf(buf, sizeof buf, "%.17g", v);
  if (has) cJSON_AddRawToObject(o, k, buf);
  else cJSON_AddNullToObject(o, k);
}

static void json_int(cJSON *o, const char *k, int64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  cJSON_AddRawToObject(o, k, buf);
}

/* A member holding stored JSON text as a JSON value when it parses, else as a string. */
static void json_value(cJSON *o, const char *k, const char *text) {
  cJSON *v = text ? cJSON_Parse(text) : NULL;
  if (v) cJSON_AddRawToObject(o, k, text);
  else json_str(o, k, text);
  cJSON_Delete(v);
}

/* Prints o on one line and frees it. */
static void json_print(FILE *f, cJSON *o) {
  char *t = cJSON_PrintUnformatted(o);
  if (!t) {
    fprintf(stderr, "clade: out of memory\n");
    abort();
  }
  fputs(t, f);
  cJSON_free(t);
  cJSON_Delete(o);
}

/* Display width of UTF-8 text: code points (no wide-character tables). */
static size_t width(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

static void pad(FILE *f, const char *s, size_t w, int right) {
  size_t n = width(s);
  if (right)
    for (size_t i = n; i < w; i++) fputc(' ', f);
  fputs(s, f);
  if (!right)
    for (size_t i = n; i < w; i++) fputc(' ', f);
}

static int finish_output(void) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cl_cli_fail("writing to stdout: %s", strerror(errno));
    return 1;
  }
  return 0;
}

static cl_store *open_db(const opts *o) {
  cl_store *s = NULL;
  cl_error e = {0};
  if (cl_store_open_existing(o->db, &s, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    return NULL;
  }
  if (cl_store_warning(s)) fprintf(stderr, "clade: warning: %s\n", cl_store_warning(s));
  return s;
}

static int pick_run(cl_store *s, int64_t *run, cl_error *e) {
  if (*run) return cl_store_check_run(s, *run, e);
  return cl_store_latest_run(s, run, e);
}

/* A growable list of string rows (the table views need every row before printing). */
typedef struct grid {
  char **cells;
  int ncols, nrows, cap;
} grid;

static char **grid_row(grid *g) {
  if (g->nrows == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    g->cells = realloc(g->cells, (size_t)g->cap * g->ncols * sizeof *g->cells);
    if (!g->cells) {
      fprintf(stderr, "clade: out of memory\n");
      exit(1);
    }
  }
  char **r = g->cells + (size_t)g->nrows++ * g->ncols;
  for (int c = 0; c < g->ncols; c++) r[c] = NULL;
  return r;
}

static void grid_free(grid *g) {
  for (long i = 0; i < (long)g->nrows * g->ncols; i++) free(g->cells[i]);
  free(g->cells);
}

/* Columns separated by two spaces, no trailing blanks; right_from: columns from this index on
 * align right (numbers). */
static void grid_print(FILE *f, const grid *g, const char *const *head, int right_from,
                       int rule) {
  size_t *w = cl_xcalloc((size_t)g->ncols, sizeof *w), total = 0;
  for (int c = 0; c < g->ncols; c++) w[c] = head ? width(head[c]) : 0;
  for (int r = 0; r < g->nrows; r++)
    for (int c = 0; c < g->ncols; c++) {
      const char *s = g->cells[(size_t)r * g->ncols + c];
      size_t n = s ? width(s) : 0;
      if (n > w[c]) w[c] = n;
    }
  for (int c = 0; c < g->ncols; c++) total += w[c] + (c ? 2 : 0);
  char *line = NULL;
  size_t len = 0;
  for (int r = head ? -1 : 0; r < g->nrows; r++) {
    FILE *m = open_memstream(&line, &len);
    if (!m) break;
    for (int c = 0; c < g->ncols; c++) {
      const char *s = r < 0 ? head[c] : g->cells[(size_t)r * g->ncols + c];
      if (c) fputs("  ", m);
      pad(m, s ? s : "", w[c], c >= right_from);
    }
    fclose(m);
    while (len && line[len - 1] == ' ') line[--len] = 0;
    fprintf(f, "%s\n", line);
    free(line);
    line = NULL;
    if (r < 0 && rule) {
      for (size_t i = 0; i < total; i++) fputc('-', f);
      fputc('\n', f);
    }
  }
  free(w);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return cl_strdup(buf);
}

/* ---- clade results ---- */

typedef struct res_ctx {
  FILE *out;
  const char *format;
  long n;
  /* table: one line per (evaluation, trial), one column per metric */
  grid g;
  char *metrics[64];
  int nmetrics;
  int64_t last_eval;
  int last_trial;
  char **line;
  int any_axes; /* a row has retrieval axes: the table shows them */
  const cl_stats *st; /* intervals and ties (empty with --ci none) */
  const cl_stats_opts *ci;
  int any_ci, any_tie;
  const char *note; /* a cell's reason for having no interval (the first one) */
} res_ctx;

/* The interval and tie of a row as CSV fields ci_low,ci_high,ci_resamples,ci_seed,tie (empty
 * where the row has none), or JSON members "ci" and "tie". */
static void csv_ci(FILE *f, const cl_stats_cell *k, const cl_stats_opts *o) {
  if (k) fprintf(f, "%.17g,%.17g,%d,%llu,%s", k->lo, k->hi, o->resamples, (unsigned long long)o->seed,
                 cl_stats_tie_name(k->tie));
  else fputs(",,,,", f);
}

static void json_ci(cJSON *o, const cl_stats_cell *k, const cl_stats_opts *ci, const char *note) {
  if (!k) {
    cJSON_AddNullToObject(o, "ci");
    cJSON_AddNullToObject(o, "tie");
    if (note) json_str(o, "ci_note", note); /* why there is none */
    return;
  }
  cJSON *c = cJSON_AddObjectToObject(o, "ci");
  cJSON_AddNumberToObject(c, "level", CL_BOOT_LEVEL);
  json_num(c, "low", k->lo, 1);
  json_num(c, "high", k->hi, 1);
  json_str(c, "method", "bootstrap");
  json_int(c, "resamples", ci->resamples);
  json_int(c, "seed", (int64_t)ci->seed);
  if (!k->tie) {
    cJSON_AddNullToObject(o, "tie");
    return;
  }
  json_str(o, "tie", cl_stats_tie_name(k->tie));
  json_num(o, "tie_p", k->p, 1);
  json_int(o, "tie_group", k->group_size);
}

/* The retrieval axes as four CSV fields, and as JSON members (empty strings when none). */
static void csv_axes(FILE *f, const char *query, const char *key, const char *split, const char *rank) {
  cl_cli_csv_field(f, query), fputc(',', f);
  cl_cli_csv_field(f, key), fputc(',', f);
  cl_cli_csv_field(f, split), fputc(',', f);
  cl_cli_csv_field(f, rank);
}

static void json_axes(cJSON *o, const char *query, const char *key, const char *split, const char *rank) {
  json_str(o, "query", query ? query : "");
  json_str(o, "key", key ? key : "");
  json_str(o, "split", split ? split : "");
  json_str(o, "rank", rank ? rank : "");
}

/* The members every result and prediction row starts with. */
static cJSON *json_cell(int64_t run, const char *experiment, const char *model, const char *dataset,
                        const char *protocol, const char *text_type, int shots, int trial) {
  cJSON *o = cJSON_CreateObject();
  json_int(o, "run", run);
  json_str(o, "experiment", experiment);
  json_str(o, "model", model);
  json_str(o, "dataset", dataset);
  json_str(o, "protocol", protocol);
  json_str(o, "text_type", text_type);
  json_int(o, "shots", shots);
  if (trial < 0) cJSON_AddStringToObject(o, "trial", "all");
  else json_int(o, "trial", trial);
  return o;
}

/* top-k accuracies (and their std) are fractions shown as percentages in the table. */
static int is_fraction(const char *metric) { return cl_store_metric_is_fraction(metric); }

static int res_row(const cl_result_row *r, void *ud, cl_error *e) {
  (void)e;
  res_ctx *c = ud;
  FILE *f = c->out;
  const cl_stats_cell *k = cl_stats_find(c->st, r->eval_id, r->trial, r->metric);
  if (strcmp(c->format, "csv") == 0) {
    fprintf(f, "%lld,", (long long)r->run_id);
    cl_cli_csv_field(f, r->experiment), fputc(',', f);
    cl_cli_csv_field(f, r->model), fputc(',', f);
    cl_cli_csv_field(f, r->dataset), fputc(',', f);
    cl_cli_csv_field(f, r->protocol), fputc(',', f);
    cl_cli_csv_field(f, r->text_type), fprintf(f, ",%d,", r->shots);
    if (r->trial < 0) fputs("all,", f);
    else fprintf(f, "%d,", r->trial);
    cl_cli_csv_field(f, r->metric), fputc(',', f);
    if (r->has_value) fprintf(f, "%.17g", r->value);
    fprintf(f, ",%lld,", (long long)r->n_examples);
    csv_axes(f, r->query, r->key, r->split, r->rank), fputc(',', f);
    csv_ci(f, k, c->ci), fputc('\n', f);
  } else if (strcmp(c->format, "json") == 0) {
    fputs(c->n ? ",\n" : "\n", f);
    cJSON *o = json_cell(r->run_id, r->experiment, r->model, r->dataset, r->protocol, r->text_type, r->shots, r->trial);
    json_str(o, "metric", r->metric);
    json_num(o, "value", r->value, r->has_value);
    json_int(o, "n", r->n_examples);
    json_int(o, "eval", r->eval_id);
    json_axes(o, r->query, r->key, r->split, r->rank);
    json_ci(o, k, c->ci, cl_stats_note(c->st, r->eval_id, r->trial, r->metric));
    json_str(o, "model_hash", r->model_hash);
    json_str(o, "config_hash", r->config_hash);
    json_print(f, o);
  } else {
    int m = 0;
    while (m < c->nmetrics && strcmp(c->metrics[m], r->metric) != 0) m++;
    if (m == c->nmetrics) {
      if (m == (int)(sizeof c->metrics / sizeof *c->metrics))
        return cl_err(e, CL_EUNSUP, "more than %d metric names in one run", m);
      c->metrics[c->nmetrics++] = cl_strdup(r->metric);
    }
    if (!c->line || r->eval_id != c->last_eval || r->trial != c->last_trial) {
      c->line = grid_row(&c->g);
      c->line[0] = cl_strdup(r->experiment);
      c->line[1] = cl_strdup(r->model);
      c->line[2] = cl_strdup(r->dataset);
      c->line[3] = cl_strdup(r->protocol);
      c->line[4] = cl_strdup(r->text_type && *r->text_type ? r->text_type : "-");
      c->line[5] = fmt("%d", r->shots);
      c->line[6] = r->trial < 0 ? cl_strdup("all") : fmt("%d", r->trial);
      c->line[7] = fmt("%lld", (long long)r->n_examples);
      c->line[8] = cl_store_axes_text(r->query, r->key, r->split, r->rank);
      c->any_axes |= *c->line[8] != 0;
      c->line[9] = cl_strdup("");
      c->last_eval = r->eval_id;
      c->last_trial = r->trial;
    }
    char **cell = &c->line[10 + m];
    free(*cell);
    if (!r->has_value) *cell = cl_strdup("nan");
    else if (k) *cell = fmt("%.2f [%.2f, %.2f]", 100 * r->value, 100 * k->lo, 100 * k->hi);
    else if (is_fraction(r->metric)) *cell = fmt("%.2f", 100 * r->value);
    else *cell = fmt("%.4g", r->value);
    c->any_ci |= k != NULL;
    if (cl_stats_note(c->st, r->eval_id, r->trial, r->metric) && !c->note)
      c->note = cl_stats_note(c->st, r->eval_id, r->trial, r->metric);
    if (k && k->tie && (!strcmp(k->metric, "top1") || !strcmp(k->metric, "micro_top1"))) { /* the column: top-1's */
      free(c->line[9]);
      c->line[9] = cl_strdup(cl_stats_tie_name(k->tie));
      c->any_tie = 1;
    }
  }
  c->n++;
  return 0;
}

/* A merged run left incomplete: its shards not merged complete, as clade merge names them
 * ("1 (missing), 2 (interrupted, 1 of 2 jobs, shards/2.db)"), malloc'd; NULL otherwise. */
static char *incomplete_shards(cl_store *s, const cl_run_row *r) {
  if (!(r->shard_count > 0 && r->shard_index < 0 && r->status && !strcmp(r->status, "incomplete"))) return NULL;
  char *inc = NULL, *rerun = NULL;
  cl_error e;
  if (cl_store_merged_shards(s, r->id, &inc, &rerun, &e)) return NULL;
  free(rerun);
  return inc;
}

typedef struct run_caption {
  char text[2048];
  cl_store *s;
} run_caption;

static int caption_row(const cl_run_row *r, void *ud, cl_error *e) {
  (void)e;
  run_caption *c = ud;
  char commit[64] = "no git";
  if (r->git_commit)
    snprintf(commit, sizeof commit, "commit %.7s%s", r->git_commit,
             r->git_dirty == 1 ? " (dirty)" : "");
  char *inc = incomplete_shards(c->s, r);
  snprintf(c->text, sizeof c->text, "run %lld: %s, %s, %s%s%s%s, %s", (long long)r->id, r->file, commit, r->status,
           inc ? " (shards " : "", inc ? inc : "", inc ? ")" : "", r->started_at ? r->started_at : "?");
  free(inc);
  return 0;
}

int cl_cmd_results(int argc, char **argv) {
  static const char *const formats[] = {"table", "csv", "json", NULL};
  opts o;
  int rc = parse(argc, argv, formats, 0, 1, &o);
  if (rc) return rc;
  cl_store *s = open_db(&o);
  if (!s) return 1;
  cl_error e = {0};
  if (pick_run(s, &o.run, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_store_close(s);
    return 1;
  }
  /* Sized for every metric column the table may need (grid rows are fixed width). */
  cl_stats *st = NULL;
  if (cl_stats_get(s, o.run, &o.ci, &st, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_store_close(s);
    return 1;
  }
  if (cl_stats_warning(st)) fprintf(stderr, "clade: warning: %s\n", cl_stats_warning(st));
  if (cl_stats_warning(st)) fprintf(stderr, "clade: warning: %s\n", cl_stats_warning(st));
  res_ctx c = {.out = stdout, .format = o.format, .g = {.ncols = 10 + 64}, .last_trial = -2, .st = st, .ci = &o.ci};
  if (strcmp(o.format, "csv") == 0)
    fputs("run,experiment,model,dataset,protocol,text_type,shots,trial,metric,value,n,query,key,split,rank,"
          "ci_low,ci_high,ci_resamples,ci_seed,tie\n",
          stdout);
  else if (strcmp(o.format, "json") == 0)
    fputs("[", stdout);
  rc = cl_store_each_result(s, o.run, res_row, &c, &e);
  if (rc == CL_OK && strcmp(o.format, "json") == 0) fputs(c.n ? "\n]\n" : "]\n", stdout);
  if (rc == CL_OK && strcmp(o.format, "table") == 0) {
    run_caption cap = {"", s};
    rc = cl_store_each_run(s, o.run, caption_row, &cap, &e);
    if (rc == CL_OK) {
      printf("%s\n", cap.text);
      if (c.g.nrows == 0) {
        printf("(no results)\n");
      } else {
        /* narrow the grid to the metric columns in use, and the retrieval axes when any */
        int ax = c.any_axes, tie = c.any_tie, nh = 8 + ax;
        grid g = {.ncols = nh + c.nmetrics + tie};
        for (int r = 0; r < c.g.nrows; r++) {
          char **src = c.g.cells + (size_t)r * c.g.ncols, **dst = grid_row(&g);
          for (int k = 0; k < g.ncols; k++) {
            int from = k < nh ? k : k < nh + c.nmetrics ? k - nh + 10 : 9;
            dst[k] = src[from], src[from] = NULL;
          }
        }
        const char *head[10 + 64] = {"experiment", "model", "dataset", "protocol", "text_type",
                                     "shots", "trial", "n", "retrieval"};
        for (int m = 0; m < c.nmetrics; m++) head[nh + m] = c.metrics[m];
        if (tie) head[nh + c.nmetrics] = "vs best";
        grid_print(stdout, &g, head, 5, 1);
        grid_free(&g);
        int any_pct = 0;
        for (int m = 0; m < c.nmetrics; m++) any_pct |= is_fraction(c.metrics[m]);
        if (any_pct) printf("(accuracies in %%; `--format csv` gives full precision)\n");
        if (c.any_ci) {
          char *d = cl_stats_describe(&o.ci, c.any_axes);
          printf("(%s)\n", d);
          free(d);
        }
        if (c.note) printf("(cells without an interval: %s)\n", c.note);
      }
    }
  }
  for (int m = 0; m < c.nmetrics; m++) free(c.metrics[m]);
  grid_free(&c.g);
  cl_stats_free(st);
  cl_store_close(s);
  if (rc != CL_OK) {
    fflush(stdout);
    cl_cli_fail("%s", e.msg);
    return 1;
  }
  return finish_output();
}

/* ---- clade predictions ---- */

static int pred_row(const cl_prediction_row *r, void *ud, cl_error *e) {
  (void)e;
  res_ctx *c = ud;
  FILE *f = c->out;
  if (strcmp(c->format, "csv") == 0) {
    cl_cli_csv_field(f, r->model), fputc(',', f);
    cl_cli_csv_field(f, r->dataset), fputc(',', f);
    cl_cli_csv_field(f, r->protocol), fputc(',', f);
    cl_cli_csv_field(f, r->text_type), fprintf(f, ",%d,", r->shots);
    if (r->trial < 0) fputs("all,", f);
    else fprintf(f, "%d,", r->trial);
    cl_cli_csv_field(f, r->filepath), fputc(',', f);
    cl_cli_csv_field(f, r->label), fputc(',', f);
    cl_cli_csv_field(f, r->prediction), fputc(',', f);
    csv_axes(f, r->query, r->key, r->split, r->rank), fputc(',', f);
    if (r->retrieved) cl_cli_csv_field(f, r->retrieved);
    fputc('\n', f);
  } else {
    fputs(c->n ? ",\n" : "\n", f);
    cJSON *o = json_cell(r->run_id, r->experiment, r->model, r->dataset, r->protocol, r->text_type, r->shots, r->trial);
    json_int(o, "example", r->example);
    json_int(o, "eval", r->eval_id);
    json_str(o, "filepath", r->filepath);
    json_str(o, "label", r->label);
    json_str(o, "prediction", r->prediction);
    cJSON_AddBoolToObject(o, "correct", r->correct);
    if (r->hit) json_int(o, "hit", r->hit);
    else cJSON_AddNullToObject(o, "hit");
    json_axes(o, r->query, r->key, r->split, r->rank);
    if (r->retrieved) json_value(o, "retrieved", r->retrieved); /* stored as a JSON array */
    json_print(f, o);
  }
  c->n++;
  return 0;
}

int cl_cmd_predictions(int argc, char **argv) {
  static const char *const formats[] = {"csv", "json", NULL};
  opts o;
  int rc = parse(argc, argv, formats, 0, 0, &o);
  if (rc) return rc;
  cl_store *s = open_db(&o);
  if (!s) return 1;
  cl_error e = {0};
  if (pick_run(s, &o.run, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_store_close(s);
    return 1;
  }
  res_ctx c = {.out = stdout, .format = o.format};
  int csv = strcmp(o.format, "csv") == 0;
  fputs(csv ? "model,dataset,protocol,text_type,shots,trial,filepath,label,prediction,query,key,split,rank,"
              "retrieved\n"
            : "[",
        stdout);
  rc = cl_store_each_prediction(s, o.run, pred_row, &c, &e);
  if (rc == CL_OK && !csv) fputs(c.n ? "\n]\n" : "]\n", stdout);
  cl_store_close(s);
  if (rc != CL_OK) {
    fflush(stdout);
    cl_cli_fail("%s", e.msg);
    return 1;
  }
  return finish_output();
}

/* ---- clade log ---- */

typedef struct log_ctx {
  const char *format;
  grid g;
  char **json; /* one object text per run */
  long n, cap;
  cl_store *s;
  int *starts; /* the grid row where each run's lines begin (a run, then its training jobs) */
} log_ctx;

/* "2024-05-01T12:00:03.123Z" (UTC) as local "2024-05-01 14:00:03". */
static char *local_time(const char *iso) {
  struct tm tm = {0};
  if (!iso || sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return cl_strdup(iso ? iso : "-");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  struct tm lt;
  char buf[64];
  localtime_r(&t, &lt);
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &lt);
  return cl_strdup(buf);
}

static char *duration(double s) {
  if (s < 60) return fmt("%.1fs", s);
  long t = (long)(s + 0.5);
  if (t < 3600) return fmt("%ldm%02lds", t / 60, t % 60);
  return fmt("%ldh%02ldm", t / 3600, t / 60 % 60);
}

/* A run's training jobs, one line each under the run: "train 'name' from parent", the
 * trained checkpoint's hash, status, start, duration, steps done of steps, the last loss. */
static int log_train_line(const cl_train_job_row *t, void *ud, cl_error *e) {
  (void)e;
  grid *g = ud;
  char **l = grid_row(g);
  l[0] = cl_strdup("");
  l[1] = fmt("  train '%s' from %s", t->name, t->parent);
  l[2] = t->model_hash ? fmt("%.7s", t->model_hash) : cl_strdup("-");
  l[3] = cl_strdup("");
  l[4] = cl_strdup(t->status ? t->status : "-");
  l[5] = local_time(t->started_at);
  l[6] = t->has_wall ? duration(t->wall_seconds) : cl_strdup("-");
  l[7] = fmt("%lld/%lld steps", (long long)t->steps_done, (long long)t->steps);
  l[8] = isfinite(t->last_loss) ? fmt("loss %.4f", t->last_loss) : cl_strdup("-");
  return 0;
}

/* The same as JSON objects into f: [{"id", "name", "parent", ...}, ...]. */
/* One training job of a run: an object of its "training" array (ud). */
static int log_train_json(const cl_train_job_row *t, void *ud, cl_error *e) {
  (void)e;
  cJSON *o = cJSON_CreateObject();
  json_int(o, "id", t->id);
  json_str(o, "name", t->name);
  json_str(o, "parent", t->parent);
  json_str(o, "parent_hash", t->parent_hash);
  json_str(o, "model_hash", t->model_hash);
  json_str(o, "content_key", t->content_key);
  json_str(o, "out_dir", t->out_dir);
  json_str(o, "status", t->status);
  json_int(o, "n_examples", t->n_examples);
  json_int(o, "steps", t->steps);
  json_int(o, "steps_done", t->steps_done);
  json_num(o, "last_loss", t->last_loss, isfinite(t->last_loss));
  /* spec, mixture and data are JSON already */
  json_value(o, "spec", t->spec_json);
  json_value(o, "mixture", t->mixture_json);
  json_value(o, "data", t->data_json);
  json_str(o, "started_at", t->started_at);
  json_num(o, "wall_seconds", t->wall_seconds, t->has_wall);
  cJSON_AddItemToArray(ud, o);
  return 0;
}

static int log_row(const cl_run_row *r, void *ud, cl_error *e) {
  log_ctx *c = ud;
  if (c->n % 64 == 0) c->starts = realloc(c->starts, (size_t)(c->n + 64) * sizeof *c->starts);
  if (!c->starts) return cl_err(e, CL_ENOMEM, "out of memory listing runs");
  c->starts[c->n] = c->g.nrows;
  if (strcmp(c->format, "table") == 0) {
    char **l = grid_row(&c->g);
    l[0] = fmt("%lld", (long long)r->id);
    /* a shard says which; a merged run how many it folds, and incomplete while one is missing */
    if (r->shard_count > 0 && r->shard_index >= 0)
      l[1] = fmt("%s [shard %d/%d]", r->file ? r->file : "-", r->shard_index, r->shard_count);
    else if (r->shard_count > 0) l[1] = fmt("%s [merged %d shards]", r->file ? r->file : "-", r->shard_count);
    else l[1] = cl_strdup(r->file ? r->file : "-");
    l[2] = r->git_commit ? fmt("%.7s", r->git_commit) : cl_strdup("-");
    l[3] = cl_strdup(r->git_dirty < 0 ? "-" : r->git_dirty ? "dirty" : "clean");
    l[4] = cl_strdup(r->status ? r->status : "-");
    l[5] = local_time(r->started_at);
    l[6] = r->has_wall ? duration(r->wall_seconds) : cl_strdup("-");
    l[7] = fmt("%lld eval%s", (long long)r->n_evaluations, r->n_evaluations == 1 ? "" : "s");
    char how[64];
    cl_cli_run_how(r->backend, r->precision, r->decode, how, sizeof how);
    l[8] = cl_strdup(how);
    char *inc = incomplete_shards(c->s, r); /* under it, the shards that are not */
    if (inc) {
      l = grid_row(&c->g);
      l[1] = fmt("  shards not complete: %s", inc);
      free(inc);
    }
    if (cl_store_each_train_job(c->s, r->id, log_train_line, &c->g, e)) return e->code ? e->code : CL_EDB;
  } else {
    /* Built in memory so -n can keep the last N; runs are few. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cl_err(e, CL_ENOMEM, "open_memstream: %s", strerror(errno));
    cJSON *o = cJSON_CreateObject();
    json_int(o, "id", r->id);
    json_str(o, "file", r->file);
    json_str(o, "file_hash", r->file_hash);
    json_str(o, "commit", r->git_commit);
    json_str(o, "branch", r->git_branch);
    if (r->git_dirty < 0) cJSON_AddNullToObject(o, "dirty");
    else cJSON_AddBoolToObject(o, "dirty", r->git_dirty);
    json_str(o, "status", r->status);
    json_str(o, "started_at", r->started_at);
    json_str(o, "ended_at", r->ended_at);
    json_num(o, "wall_seconds", r->wall_seconds, r->has_wall);
    json_int(o, "images_encoded", r->images_encoded);
    json_int(o, "texts_encoded", r->texts_encoded);
    json_int(o, "images_cached", r->images_cached);
    json_int(o, "texts_cached", r->texts_cached);
    json_int(o, "evaluations", r->n_evaluations);
    json_str(o, "clade_version", r->clade_version);
    json_str(o, "backend", r->backend);
    json_str(o, "device", r->device);
    json_str(o, "precision", r->precision);
    json_str(o, "decode", r->decode);
    json_str(o, "host", r->host);
    json_int(o, "pid", r->pid);
    if (r->shard_index >= 0) json_int(o, "shard_index", r->shard_index);
    else cJSON_AddNullToObject(o, "shard_index");
    if (r->shard_count > 0) json_int(o, "shard_count", r->shard_count);
    else cJSON_AddNullToObject(o, "shard_count");
    char *inc = incomplete_shards(c->s, r);
    json_str(o, "incomplete_shards", inc); /* null unless a merged run is incomplete */
    free(inc);
    json_str(o, "plan_hash", r->plan_hash);
    json_str(o, "slurm_job", r->slurm_job);
    json_value(o, "stats", r->stats_json); /* a JSON value when it parses, else a string */
    int trc = cl_store_each_train_job(c->s, r->id, log_train_json, cJSON_AddArrayToObject(o, "training"), e);
    json_print(f, o);
    fclose(f);
    if (trc) {
      free(buf);
      return trc;
    }
    if (c->n == c->cap) {
      c->cap = c->cap ? 2 * c->cap : 64;
      c->json = realloc(c->json, (size_t)c->cap * sizeof *c->json);
      if (!c->json) return cl_err(e, CL_ENOMEM, "out of memory listing runs");
    }
    c->json[c->n] = buf;
  }
  c->n++;
  return 0;
}

/* 12345 -> "12.3 kB" */
static char *human_bytes(int64_t b) {
  static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, u++;
  return u ? fmt("%.1f %s", v, unit[u]) : fmt("%lld B", (long long)b);
}

/* 'path' for a POSIX shell */
static char *shell_quoted(const char *p) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return cl_strdup(p);
  fputc('\'', f);
  for (; *p; p++) *p == '\'' ? fputs("'\\''", f) : fputc(*p, f);
  fputc('\'', f);
  fclose(f);
  return buf;
}

/* The unfinished trainings' work folders in trained/ beside the database (every experiment
 * file recording into it shares that folder): a run of the same train declaration resumes
 * its own, one whose declaration changed is never resumed. None is removed here: trained/
 * is shared by every file writing to this database, and a declaration changed back resumes;
 * each is listed with its size, what the database knows of it and the command that removes
 * it (none for one a job is training now). */
static int log_partials(cl_store *s, FILE *out, cl_error *e) {
  const char *db = cl_store_path(s), *slash = strrchr(db, '/');
  char *root = slash ? fmt("%.*s/trained", (int)(slash - db), db) : cl_strdup("trained");
  cl_train_partial *p = NULL;
  int n = 0, rc = cl_train_partials(root, &p, &n, e);
  if (!rc && n)
    fprintf(out, "\nunfinished trainings in %s (a run of the same train declaration resumes one; one whose "
                 "declaration changed is never resumed):\n", root);
  for (int i = 0; !rc && i < n; i++) {
    char *size = human_bytes(p[i].bytes);
    cl_train_key_info ki;
    if ((rc = cl_store_train_key_info(s, p[i].key, &ki, e))) {
      free(size);
      break;
    }
    fprintf(out, "  %.12s.partial  %s  ", p[i].key, size);
    if (ki.id)
      fprintf(out, "train '%s' (run %lld, %s, %lld of %lld steps)", ki.name, (long long)ki.run_id, ki.status,
              (long long)ki.steps_done, (long long)ki.steps);
    else
      fputs("no training of it in this database", out);
    if (p[i].in_use) fputs(": being trained now\n", out);
    else {
      if (ki.superseded_run)
        fprintf(out, ": stale, its declaration changed and '%s' was trained since (run %lld)", ki.name,
                (long long)ki.superseded_run);
      char *q = shell_quoted(p[i].path);
      fprintf(out, "\n    remove: rm -rf %s\n", q);
      free(q);
    }
    free(size);
  }
  cl_train_partials_free(p, n);
  free(root);
  return rc;
}

int cl_cmd_log(int argc, char **argv) {
  static const char *const formats[] = {"table", "json", NULL};
  opts o;
  int rc = parse(argc, argv, formats, 1, 0, &o);
  if (rc) return rc;
  cl_store *s = open_db(&o);
  if (!s) return 1;
  cl_error e = {0};
  log_ctx c = {.format = o.format, .g = {.ncols = 9}, .s = s};
  rc = cl_store_each_run(s, o.run, log_row, &c, &e);
  /* after the runs (table only: json is the list of runs) */
  char *partials = NULL;
  size_t plen = 0;
  if (rc == CL_OK && strcmp(o.format, "table") == 0) {
    FILE *pf = open_memstream(&partials, &plen);
    if (!pf) rc = cl_err(&e, CL_ENOMEM, "out of memory listing trainings");
    else {
      rc = log_partials(s, pf, &e);
      fclose(pf);
    }
  }
  cl_store_close(s);
  long first = o.limit && c.n > o.limit ? c.n - o.limit : 0;
  if (rc == CL_OK) {
    if (strcmp(o.format, "table") == 0) {
      /* No header line: every run's line starts with its id, oldest first; its training
       * jobs follow it, indented. */
      grid tail = c.g;
      const int skip = first ? c.starts[first] : 0;
      tail.cells += (size_t)skip * c.g.ncols;
      tail.nrows -= skip;
      grid_print(stdout, &tail, NULL, 8, 0);
      if (partials) fputs(partials, stdout);
    } else {
      fputs("[", stdout);
      for (long i = first; i < c.n; i++) printf("%s\n%s", i > first ? "," : "", c.json[i]);
      fputs(c.n > first ? "\n]\n" : "]\n", stdout);
    }
  }
  for (long i = 0; c.json && i < c.n; i++) free(c.json[i]);
  free(c.json);
  free(partials);
  free(c.starts);
  grid_free(&c.g);
  if (rc != CL_OK) {
    cl_cli_fail("%s", e.msg);
    return 1;
  }
  return finish_output();
}
