/* clade predict: pybioclip's `bioclip predict` — Tree of Life ranks, custom labels, bins,
 * subsets — on a model folder, in one command. Everything the user gives is checked (label
 * set, subset, bins, labels, images found) before any image is encoded; an unreadable image
 * is reported and skipped. */
#define _GNU_SOURCE /* strcasestr */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cl_cli.h"
#include "eval/cl_predict.h"
#include "eval/cl_taxa.h"
#include "io/cl_csvtab.h"
#include "io/cl_embout.h"
#include "model/cl_encoder.h"
#include "predict_table.h"

/* ---- options ---- */
typedef struct opts {
  const char *model, *rank_s, *cls, *bins, *subset, *format, *output, *backend, *precision, *preprocess,
      *embeddings, *config, *label_dtype;
  int k, batch, list_taxa;
  const char **inputs;
  int ninputs;
} opts;

/* ---- image files: arguments as given, directories walked (sorted, recursively) ---- */
typedef struct strv {
  char **v;
  int n, cap;
} strv;

static void strv_push(strv *s, char *p) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->v = realloc(s->v, (size_t)s->cap * sizeof *s->v);
    if (!s->v) abort();
  }
  s->v[s->n++] = p;
}

static void strv_free(strv *s) {
  for (int i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

static int is_image_name(const char *name) {
  static const char *const ext[] = {".jpg", ".jpeg", ".png", ".jpe", ".jfif"};
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof ext / sizeof *ext; i++)
    if (!strcasecmp(dot, ext[i])) return 1;
  return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk(const char *dir, strv *out, cl_error *e) {
  DIR *d = opendir(dir);
  if (!d) return cl_err(e, CL_EIO, "%s: %s", dir, strerror(errno));
  strv names = {0};
  for (struct dirent *de; (de = readdir(d));)
    if (de->d_name[0] != '.') strv_push(&names, cl_strdup(de->d_name));
  closedir(d);
  if (names.n) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_name);
  int rc = CL_OK;
  for (int i = 0; i < names.n && !rc; i++) {
    const size_t dl = strlen(dir);
    char *p = cl_asprintf("%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", names.v[i]);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      rc = walk(p, out, e);
      free(p);
    } else if (is_image_name(names.v[i])) {
      strv_push(out, p);
    } else {
      free(p);
    }
  }
  strv_free(&names);
  return rc;
}

static int collect_images(const opts *o, strv *out, cl_error *e) {
  for (int i = 0; i < o->ninputs; i++) {
    struct stat st;
    if (stat(o->inputs[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      int before = out->n;
      CL_TRY(walk(o->inputs[i], out, e));
      if (out->n == before)
        return cl_err(e, CL_EINVAL, "%s: directory without images (.jpg, .jpeg, .png)", o->inputs[i]);
    } else {
      strv_push(out, cl_strdup(o->inputs[i])); /* unreadable files are reported when read */
    }
  }
  return CL_OK;
}

/* ---- custom labels and bins ---- */
typedef struct custom {
  strv classes;    /* labels, stripped */
  strv bin_names;  /* bins, in order of first appearance */
  int *bin_of;     /* per class: its bin, or NULL without --bins */
  char *buf;       /* --cls file contents */
} custom;

static char *strip(const char *s, size_t n) {
  while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
  char *d = cl_xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

/* --cls: a file (one label a line) when such a file exists, else a comma list (pybioclip) */
static int read_cls(const char *cls, custom *c, cl_error *e) {
  struct stat st;
  if (stat(cls, &st) == 0 && S_ISREG(st.st_mode)) {
    char **lines;
    int n;
    CL_TRY(cl_cli_read_lines(cls, &c->buf, &lines, &n, e));
    for (int i = 0; i < n; i++) strv_push(&c->classes, strip(lines[i], strlen(lines[i])));
    free(lines);
    if (!c->classes.n) return cl_err(e, CL_EINVAL, "%s: no labels in the --cls file", cls);
  } else {
    for (const char *p = cls;;) {
      const char *q = strchr(p, ',');
      size_t n = q ? (size_t)(q - p) : strlen(p);
      strv_push(&c->classes, strip(p, n));
      if (!q) break;
      p = q + 1;
    }
  }
  for (int i = 0; i < c->classes.n; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(c->classes.v[i], c->classes.v[j]))
        return cl_err(e, CL_EINVAL, "--cls: the label '%s' is given twice", c->classes.v[i]);
  return CL_OK;
}

/* --bins: CSV, first column the class, second its bin (pybioclip's parse_bins_csv) */
static int read_bins(const char *path, custom *c, cl_error *e) {
  cl_csvtab t;
  CL_TRY(cl_csvtab_read(path, &t, e));
  int rc = CL_OK;
  if (t.ncols < 2) rc = cl_err(e, CL_EINVAL, "%s: a bins CSV needs two columns (class, bin)", path);
  else if (!t.nrows) rc = cl_err(e, CL_EINVAL, "%s: no classes under the header", path);
  c->bin_of = cl_xmalloc((size_t)(t.nrows ? t.nrows : 1) * sizeof *c->bin_of);
  for (int i = 0; i < t.nrows && !rc; i++) {
    const char *cls = t.rows[i][0], *bin = t.rows[i][1];
    if (!*bin) {
      rc = cl_err(e, CL_EINVAL, "%s:%d: empty bin for class '%s' (empty, null or nan bins are not allowed)", path,
                  t.line[i], cls);
      break;
    }
    for (int j = 0; j < c->classes.n && !rc; j++)
      if (!strcmp(c->classes.v[j], cls))
        rc = cl_err(e, CL_EINVAL, "%s:%d: class '%s' is listed twice", path, t.line[i], cls);
    int b = 0;
    while (b < c->bin_names.n && strcmp(c->bin_names.v[b], bin)) b++;
    if (b == c->bin_names.n) strv_push(&c->bin_names, cl_strdup(bin));
    c->bin_of[c->classes.n] = b;
    strv_push(&c->classes, strip(cls, strlen(cls)));
  }
  cl_csvtab_free(&t);
  return rc;
}

static void custom_free(custom *c) {
  strv_free(&c->classes);
  strv_free(&c->bin_names);
  free(c->bin_of);
  free(c->buf);
}

/* Each label's embedding: the mean of its L2-normalised embeddings over pybioclip's 80 OpenAI
 * templates, renormalised; into out [D, C] (a column per label, as the Tree of Life's). */
static int custom_embeddings(cl_encoder *enc, const custom *c, float *out, cl_error *e) {
  char path[4200], *buf;
  char **lines;
  int nl;
  cl_resource_path(path, sizeof path, "lua/clade/templates/bioclip81.txt");
  CL_TRY(cl_cli_read_lines(path, &buf, &lines, &nl, e));
  int rc = CL_OK;
  if (nl != 81 || strcmp(lines[0], "a photo of {}.")) rc = cl_err(e, CL_EFORMAT, "%s: not the 81 BioCLIP templates", path);
  const int T = 80, D = enc->cfg.embed_dim, C = c->classes.n;
  char **texts = cl_xcalloc((size_t)T, sizeof *texts);
  float *emb = cl_xmalloc((size_t)T * D * sizeof *emb);
  for (int k = 0; k < C && !rc; k++) {
    for (int t = 0; t < T; t++) {
      const char *tpl = lines[t + 1], *at = strstr(tpl, "{}");
      free(texts[t]);
      texts[t] = cl_asprintf("%.*s%s%s", (int)(at - tpl), tpl, c->classes.v[k], at + 2);
    }
    if ((rc = cl_encoder_texts(enc, (const char *const *)texts, T, emb, NULL, e))) break;
    double mean[4096] = {0}, s = 0;
    for (int t = 0; t < T; t++) {
      double nr = 0;
      for (int d = 0; d < D; d++) nr += (double)emb[(size_t)t * D + d] * emb[(size_t)t * D + d];
      nr = sqrt(nr) > 1e-12 ? sqrt(nr) : 1e-12;
      for (int d = 0; d < D; d++) mean[d] += emb[(size_t)t * D + d] / nr / T;
    }
    for (int d = 0; d < D; d++) s += mean[d] * mean[d];
    for (int d = 0; d < D; d++) out[(size_t)d * C + k] = (float)(mean[d] / sqrt(s));
  }
  for (int t = 0; t < T; t++) free(texts[t]);
  free(texts), free(emb), free(lines), free(buf);
  return rc;
}

/* ---- the run ---- */
/* The label set, its embeddings as --label-dtype says: fp32 (default) the .npy as the hub
 * has it, fp16 its float16 variant (made once, see cl_taxa_fp16_path). */
static int open_taxa(const opts *o, int D, cl_taxa *t, cl_error *e) {
  if (!o->label_dtype || !strcmp(o->label_dtype, "fp32")) return cl_taxa_open(o->model, D, t, e);
  if (!strcmp(o->label_dtype, "fp16")) return cl_taxa_open_fp16(o->model, D, t, e);
  return cl_err(e, CL_EINVAL, "--label-dtype %s: choose fp32 or fp16", o->label_dtype);
}

static int list_taxa(const opts *o, cl_error *e) {
  cl_taxa t;
  CL_TRY(open_taxa(o, 0, &t, e));
  FILE *f = stdout;
  fputs("kingdom,phylum,class,order,family,genus,species_epithet,species,common_name\n", f);
  char buf[2048];
  for (int i = 0; i < t.N; i++) {
    for (int r = 0; r < CL_NRANKS; r++) {
      cl_csv_write_cell(f, cl_taxa_name(&t, i, r));
      fputc(',', f);
    }
    cl_csv_write_cell(f, cl_taxa_value(&t, i, CL_RANK_SPECIES, buf, sizeof buf));
    fputc(',', f);
    cl_csv_write_cell(f, cl_taxa_name(&t, i, CL_NRANKS));
    fputc('\n', f);
  }
  cl_taxa_close(&t);
  return fflush(f) == 0 ? CL_OK : cl_err(e, CL_EIO, "stdout: write failed");
}

typedef struct run {
  const opts *o;
  int rank, squash, k;
  cl_encoder *enc;
  cl_taxa taxa;
  int have_taxa;
  int *keep, nkeep;   /* --subset */
  custom cu;
  float *cust_emb;    /* [D, C] */
  cl_labels L;
  int32_t *gid;       /* per label: its group at rank (ranks above species) */
  int ngroups;
  cl_ptable out;
  float *all_emb;     /* --embeddings: [n_ok, D] */
  strv ok_files;
} run;

static int read_image(const run *r, const char *path, float *chw, cl_error *e) {
  const cl_clip_config *c = &r->enc->cfg;
  if (r->squash) return cl_img_squash_preprocess_file(path, c->vision.image_size, NULL, NULL, chw, e);
  return cl_img_preprocess_file_decode(path, c->vision.image_size, CL_IMG_DECODE_FULL, c->mean, c->std, chw, e);
}

static void emit(run *r, const char *file, const float *p) {
  const char *cells[12];
  char buf[2048];
  cells[0] = file;
  if (r->cust_emb && !r->cu.bin_of) { /* custom labels */
    int *idx = cl_xmalloc((size_t)r->k * sizeof *idx);
    cl_predict_topk(p, r->L.K, r->k, idx);
    for (int i = 0; i < r->k; i++) {
      cells[1] = r->cu.classes.v[idx[i]];
      cl_ptable_add(&r->out, cells, p[idx[i]]);
    }
    free(idx);
    return;
  }
  if (r->cust_emb || r->rank != CL_RANK_SPECIES) { /* bins, or ranks above species */
    float *acc = cl_xcalloc((size_t)r->ngroups, sizeof *acc), *sum = cl_xmalloc((size_t)r->k * sizeof *sum);
    int *g = cl_xmalloc((size_t)r->k * sizeof *g), *lab = cl_xmalloc((size_t)r->k * sizeof *lab);
    /* bins keep every class (pybioclip sums them all); ranks drop p <= min_prob = 1e-9 */
    const float min_prob = r->cust_emb ? -1.0f : 1e-9f;
    int m = cl_predict_group_topk(p, r->L.K, r->gid, r->ngroups, min_prob, r->k, acc, g, sum, lab);
    for (int i = 0; i < m; i++) {
      if (r->cust_emb) {
        cells[1] = r->cu.bin_names.v[g[i]];
      } else {
        const int t = r->L.idx ? r->L.idx[lab[i]] : lab[i];
        for (int k = 0; k <= r->rank; k++) cells[1 + k] = cl_taxa_name(&r->taxa, t, k);
      }
      cl_ptable_add(&r->out, cells, sum[i]);
    }
    free(acc), free(sum), free(g), free(lab);
    return;
  }
  int *idx = cl_xmalloc((size_t)r->k * sizeof *idx);
  cl_predict_topk(p, r->L.K, r->k, idx);
  for (int i = 0; i < r->k; i++) {
    const int t = r->L.idx ? r->L.idx[idx[i]] : idx[i];
    for (int k = 0; k < CL_NRANKS; k++) cells[1 + k] = cl_taxa_name(&r->taxa, t, k);
    cells[8] = cl_taxa_value(&r->taxa, t, CL_RANK_SPECIES, buf, sizeof buf);
    cells[9] = cl_taxa_name(&r->taxa, t, CL_NRANKS);
    cl_ptable_add(&r->out, cells, p[idx[i]]);
  }
  free(idx);
}

/* Everything the user gave, checked before any image is encoded. */
static int prepare(run *r, cl_error *e) {
  const opts *o = r->o;
  if (o->cls && o->bins) return cl_err(e, CL_EINVAL, "--cls and --bins: give one");
  if ((o->cls || o->bins) && (o->rank_s || o->subset))
    return cl_err(e, CL_EINVAL, "--%s with --%s: custom labels have no ranks or Tree of Life subsets",
                  o->cls ? "cls" : "bins", o->rank_s ? "rank" : "subset");
  r->rank = CL_RANK_SPECIES;
  if (o->rank_s && (r->rank = cl_rank_parse(o->rank_s)) < 0)
    return cl_err(e, CL_EINVAL, "--rank %s: choose kingdom, phylum, class, order, family, genus or species", o->rank_s);
  if (strcmp(o->format, "csv") && strcmp(o->format, "table") && strcmp(o->format, "json"))
    return cl_err(e, CL_EINVAL, "--format %s: choose csv, table or json", o->format);
  if (o->preprocess && strcmp(o->preprocess, "squash") && strcmp(o->preprocess, "open_clip"))
    return cl_err(e, CL_EINVAL, "--preprocess %s: choose open_clip or squash", o->preprocess);
  if (o->batch < 1) return cl_err(e, CL_EINVAL, "--batch-size must be at least 1");
  if (o->label_dtype && (o->cls || o->bins))
    return cl_err(e, CL_EINVAL, "--label-dtype with --%s: custom labels are embedded here, in float32; "
                  "--label-dtype chooses the Tree of Life label set's", o->cls ? "cls" : "bins");
  if (o->cls) CL_TRY(read_cls(o->cls, &r->cu, e));
  if (o->bins) CL_TRY(read_bins(o->bins, &r->cu, e));
  /* pybioclip squashes for its BioCLIP models (its hf-hub:imageomics/bioclip[-2]): here, a folder
   * with the Tree of Life label set, or whose path names BioCLIP (the hub cache's
   * models--imageomics--bioclip-2/snapshots/...) */
  r->squash = o->preprocess ? !strcmp(o->preprocess, "squash") : cl_taxa_present(o->model) || strcasestr(o->model, "bioclip");
  cl_encoder_spec spec = {.path = o->model, .config = o->config, .backend = o->backend, .precision = o->precision};
  char ckpt[4096];
  cl_clip_config cfg;
  CL_TRY(cl_encoder_locate(&spec, ckpt, sizeof ckpt, &cfg, e));
  if (!o->cls && !o->bins) {
    CL_TRY(open_taxa(o, cfg.embed_dim, &r->taxa, e));
    r->have_taxa = 1;
    if (o->subset) CL_TRY(cl_taxa_subset_csv(&r->taxa, o->subset, &r->keep, &r->nkeep, e));
    r->L = (cl_labels){.data = r->taxa.emb.t.data, .dtype = r->taxa.emb.t.dtype, .D = r->taxa.D,
                       .stride = r->taxa.N, .idx = r->keep, .K = o->subset ? r->nkeep : r->taxa.N};
    if (r->rank != CL_RANK_SPECIES) {
      r->gid = cl_xmalloc((size_t)r->L.K * sizeof *r->gid);
      for (int j = 0; j < r->L.K; j++) r->gid[j] = r->taxa.group[r->rank][r->keep ? r->keep[j] : j];
      r->ngroups = r->taxa.ngroups[r->rank];
    }
  }
  CL_TRY(cl_encoder_open(&spec, &r->enc, e));
  if (!r->enc->clip) return cl_err(e, CL_EUNSUP, "%s: predict needs an open_clip model (image and text towers)", o->model);
  if (r->cu.classes.n) {
    const int C = r->cu.classes.n, D = r->enc->cfg.embed_dim;
    if (D > 4096) return cl_err(e, CL_EUNSUP, "embedding width %d", D);
    r->cust_emb = cl_xmalloc((size_t)D * C * sizeof *r->cust_emb);
    CL_TRY(custom_embeddings(r->enc, &r->cu, r->cust_emb, e));
    r->L = (cl_labels){.data = r->cust_emb, .dtype = CL_F32, .D = D, .stride = C, .K = C};
    if (r->cu.bin_of) {
      r->gid = cl_xmalloc((size_t)C * sizeof *r->gid);
      for (int j = 0; j < C; j++) r->gid[j] = r->cu.bin_of[j];
      r->ngroups = r->cu.bin_names.n;
    }
  }
  /* --k: 5 on the Tree of Life, every label or bin with custom labels; clamped */
  const int nsel = r->gid ? r->ngroups : r->L.K;
  r->k = o->k > 0 ? o->k : r->cust_emb ? nsel : 5;
  if (r->k > nsel) r->k = nsel;
  /* columns */
  cl_ptable *t = &r->out;
  t->cols[t->ncols++] = "file_name";
  if (r->cust_emb) {
    t->cols[t->ncols++] = "classification";
  } else {
    for (int k = 0; k <= r->rank; k++) {
      if (k == CL_RANK_SPECIES) t->cols[t->ncols++] = "species_epithet";
      t->cols[t->ncols++] = cl_rank_name(k);
    }
    if (r->rank == CL_RANK_SPECIES) t->cols[t->ncols++] = "common_name";
  }
  return CL_OK;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int predict_all(run *r, const strv *files, cl_error *e) {
  const opts *o = r->o;
  const int S = r->enc->cfg.vision.image_size, D = r->enc->cfg.embed_dim, B = o->batch;
  const size_t px = (size_t)3 * S * S;
  float *pix = cl_xmalloc((size_t)B * px * sizeof *pix), *emb = cl_xmalloc((size_t)B * D * sizeof *emb);
  float *probs = malloc((size_t)B * r->L.K * sizeof *probs);
  int *ok = cl_xmalloc((size_t)B * sizeof *ok), *slot = cl_xmalloc((size_t)B * sizeof *slot);
  cl_error *errs = cl_xmalloc((size_t)B * sizeof *errs);
  const float scale = expf(cl_clip_logit_scale(r->enc->clip)); /* the checkpoint's logit_scale.exp() */
  int rc = probs ? CL_OK : cl_err(e, CL_ENOMEM, "out of memory for %d x %d probabilities", B, r->L.K);
  double t_read = 0, t_enc = 0, t_rank = 0, t0 = now();
  for (int b0 = 0; b0 < files->n && !rc; b0 += B) {
    const int nb = files->n - b0 < B ? files->n - b0 : B;
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < nb; i++) ok[i] = read_image(r, files->v[b0 + i], pix + (size_t)i * px, &errs[i]) == CL_OK;
    int n = 0;
    for (int i = 0; i < nb; i++) {
      if (!ok[i]) {
        fprintf(stderr, "clade: predict: skipping %s\n", errs[i].msg);
        continue;
      }
      if (n != i) memmove(pix + (size_t)n * px, pix + (size_t)i * px, px * sizeof *pix);
      slot[n++] = b0 + i;
    }
    if (!n) continue;
    const double t1 = now();
    t_read += t1 - t0;
    if ((rc = cl_clip_encode_images(r->enc->clip, pix, n, emb, e))) break;
    const double t2 = now();
    t_enc += t2 - t1;
    if ((rc = cl_predict_probs(emb, n, &r->L, scale, probs, e))) break;
    for (int i = 0; i < n; i++) emit(r, files->v[slot[i]], probs + (size_t)i * r->L.K);
    t0 = now();
    t_rank += t0 - t2;
    if (o->embeddings) {
      r->all_emb = realloc(r->all_emb, (size_t)(r->ok_files.n + n) * D * sizeof *r->all_emb);
      if (!r->all_emb) abort();
      memcpy(r->all_emb + (size_t)r->ok_files.n * D, emb, (size_t)n * D * sizeof *emb);
      for (int i = 0; i < n; i++) strv_push(&r->ok_files, cl_strdup(files->v[slot[i]]));
    }
  }
  if (!rc) /* what benchmarks/cpu/predict compares: ranking beside encoding */
    fprintf(stderr, "clade: predict: seconds: read %.3f, encode %.3f, score and rank %.3f\n", t_read, t_enc, t_rank);
  free(pix), free(emb), free(probs), free(ok), free(slot), free(errs);
  return rc;
}

static int write_output(run *r, cl_error *e) {
  const opts *o = r->o;
  char how[6000], model[4200];
  snprintf(how, sizeof how,
           "\"model\":%s,\"checkpoint_hash\":\"%s\",\"preprocess\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\","
           "\"mode\":\"%s\",\"rank\":\"%s\",\"k\":%d,\"label_dtype\":\"%s\"",
           cl_ptable_json_esc(o->model, model, sizeof model), r->enc->hash, r->squash ? "squash" : "open_clip", r->enc->backend_name, r->enc->precision,
           r->cu.bin_of ? "bins" : r->cust_emb ? "cls" : o->subset ? "tree_of_life_subset" : "tree_of_life",
           r->cust_emb ? "" : cl_rank_name(r->rank), r->k, r->L.dtype == CL_F16 ? "fp16" : "fp32");
  if (!o->output || !strcmp(o->output, "stdout")) {
    cl_ptable_write(stdout, &r->out, o->format, how);
    return fflush(stdout) == 0 ? CL_OK : cl_err(e, CL_EIO, "stdout: write failed");
  }
  char *tmp = cl_asprintf("%s.tmp%d", o->output, (int)getpid());
  FILE *f = fopen(tmp, "w");
  int rc = CL_OK;
  if (!f) {
    rc = cl_err(e, CL_EIO, "%s: %s", o->output, strerror(errno));
  } else {
    cl_ptable_write(f, &r->out, o->format, how);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, o->output) != 0) rc = cl_err(e, CL_EIO, "%s: write failed", o->output);
  }
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}

int cl_cmd_predict(int argc, char **argv) {
  opts o = {.format = "csv", .batch = 10};
  o.inputs = cl_xcalloc((size_t)argc, sizeof *o.inputs);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--model") ? &o.model : !strcmp(s, "--rank") ? &o.rank_s
                      : !strcmp(s, "--cls") ? &o.cls : !strcmp(s, "--bins") ? &o.bins
                      : !strcmp(s, "--subset") ? &o.subset : !strcmp(s, "--format") ? &o.format
                      : !strcmp(s, "--output") ? &o.output : !strcmp(s, "--backend") ? &o.backend
                      : !strcmp(s, "--precision") ? &o.precision : !strcmp(s, "--preprocess") ? &o.preprocess
                      : !strcmp(s, "--embeddings") ? &o.embeddings : !strcmp(s, "--config") ? &o.config
                      : !strcmp(s, "--label-dtype") ? &o.label_dtype : NULL;
    const char *ival = NULL;
    if (!strcmp(s, "--k") || !strcmp(s, "--batch-size")) slot = &ival;
    if (slot) {
      if (i + 1 >= argc) {
        cl_cli_fail("predict: %s needs a value", s);
        free(o.inputs);
        return 2;
      }
      *slot = argv[++i];
      if (ival) {
        char *end;
        long v = strtol(ival, &end, 10);
        const long most = !strcmp(s, "--k") ? 1000000 : 4096; /* a batch's pixels: 4096 x 3 x S x S floats */
        if (*end || end == ival || v < 1 || v > most) {
          cl_cli_fail("predict: %s %s: give a whole number from 1 to %ld", s, ival, most);
          free(o.inputs);
          return 2;
        }
        if (!strcmp(s, "--k")) o.k = (int)v;
        else o.batch = (int)v;
      }
    } else if (!strcmp(s, "--list-taxa")) {
      o.list_taxa = 1;
    } else if (s[0] == '-' && s[1]) {
      cl_cli_fail("predict: unknown option %s", s);
      free(o.inputs);
      return cl_cli_usage("predict");
    } else {
      o.inputs[o.ninputs++] = s;
    }
  }
  if (!o.model || (!o.ninputs && !o.list_taxa)) {
    cl_cli_fail("predict: --model and at least one image or directory are required");
    free(o.inputs);
    return cl_cli_usage("predict");
  }
  cl_error e = {0};
  int rc;
  if (o.list_taxa) {
    rc = list_taxa(&o, &e);
    if (rc) cl_cli_fail("%s", e.msg);
    free(o.inputs);
    return rc != CL_OK;
  }
  run r = {.o = &o};
  strv files = {0};
  cl_embout_fmt ef = CL_EMBOUT_SAFETENSORS;
  rc = collect_images(&o, &files, &e);
  if (!rc && o.embeddings) rc = cl_embout_format(o.embeddings, NULL, &ef, &e);
  if (!rc) rc = prepare(&r, &e);
  if (!rc) {
    fprintf(stderr, "clade: predict: %d images, %d labels (%s), preprocess %s, %s/%s\n", files.n, r.L.K,
            r.L.dtype == CL_F16 ? "fp16" : "fp32", r.squash ? "squash" : "open_clip", r.enc->backend_name,
            r.enc->precision);
    rc = predict_all(&r, &files, &e);
  }
  if (!rc) rc = write_output(&r, &e);
  if (!rc && o.embeddings) {
    char meta[512];
    snprintf(meta, sizeof meta, "{\"checkpoint_hash\":\"%s\",\"preprocess\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\"}",
             r.enc->hash, r.squash ? "squash" : "open_clip", r.enc->backend_name, r.enc->precision);
    rc = cl_embout_write(o.embeddings, ef, "image_embeddings", r.all_emb, r.ok_files.n, r.enc->cfg.embed_dim,
                         "file_name", (const char *const *)r.ok_files.v, meta, &e);
  }
  if (rc) cl_cli_fail("%s", e.msg);
  cl_ptable_free(&r.out);
  strv_free(&files);
  strv_free(&r.ok_files);
  free(r.all_emb);
  custom_free(&r.cu);
  free(r.cust_emb);
  free(r.gid);
  free(r.keep);
  if (r.have_taxa) cl_taxa_close(&r.taxa);
  cl_encoder_close(r.enc);
  free(o.inputs);
  return rc != CL_OK;
}
