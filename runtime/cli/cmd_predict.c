/* clade predict: pybioclip's `bioclip predict` — Tree of Life ranks, custom labels, bins,
 * subsets — on a model folder, in one command. Everything the user gives is checked (label
 * set, subset, bins, labels, images found) before any image is encoded; an unreadable image
 * is reported and skipped. */
#define _GNU_SOURCE /* strcasestr */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
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
#include "sched/cl_sched.h"

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
  cl_error emb_err;   /* --embeddings could not be kept (out of memory): the predictions still are */
} run;

/* One image's ranking: m rows of (label or group, the label it names, score). */
typedef struct ranked {
  int m, *idx, *lab;
  float *score;
} ranked;

/* Ranks one image's probabilities p; w: this thread's group scratch (ranks above species, bins). */
static void rank_image(const run *r, const float *p, cl_predict_groups *w, ranked *out) {
  if (r->gid) { /* bins keep every class (pybioclip sums them all); ranks drop p <= min_prob = 1e-9 */
    const float min_prob = r->cust_emb ? -1.0f : 1e-9f;
    out->m = cl_predict_group_topk(w, p, r->L.K, r->gid, min_prob, r->k, out->idx, out->score, out->lab);
    return;
  }
  cl_predict_topk(p, r->L.K, r->k, out->idx); /* species, custom labels */
  for (int i = 0; i < r->k; i++) out->lab[i] = out->idx[i], out->score[i] = p[out->idx[i]];
  out->m = r->k;
}

static void emit(run *r, const char *file, const ranked *x) {
  const char *cells[12];
  char buf[2048];
  cells[0] = file;
  for (int i = 0; i < x->m; i++) {
    if (r->cust_emb) { /* custom labels, bins */
      cells[1] = r->cu.bin_of ? r->cu.bin_names.v[x->idx[i]] : r->cu.classes.v[x->idx[i]];
    } else {
      const int t = r->L.idx ? r->L.idx[x->lab[i]] : x->lab[i];
      for (int k = 0; k <= r->rank; k++) cells[1 + k] = cl_taxa_name(&r->taxa, t, k);
      if (r->rank == CL_RANK_SPECIES) {
        cells[8] = cl_taxa_value(&r->taxa, t, CL_RANK_SPECIES, buf, sizeof buf);
        cells[9] = cl_taxa_name(&r->taxa, t, CL_NRANKS);
      }
    }
    cl_ptable_add(&r->out, cells, x->score[i]);
  }
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

/* The images as a stream through the embedding pipeline (sched/cl_sched.h): decoding on
 * libuv's pool overlaps the encoding of the batch before; each batch is scored and ranked on
 * the encoder's thread right after it is encoded, images in parallel. */
typedef struct stream_ctx {
  run *r;
  const strv *files;
  float scale, *probs;
  cl_predict_groups *groups; /* one per thread, ranks above species and bins */
  ranked *res;               /* one per image scored together */
  float *pend;               /* embeddings waiting to be scored, [SCORE_ROWS - 1 + batch][D] */
  int *pend_file;            /* their files' indices */
  int npend;
  double t_rank;
} stream_ctx;

/* Images scored together: each group streams the whole label matrix (0.9 GB at 450k taxa in
 * fp32) through the product once, so groups of at least this many images, whatever
 * --batch-size is, keep that pass a small share of the encoding (the default batch of 10 would
 * stream it 3x as often). Results and their order do not depend on it. */
#define SCORE_ROWS 32

static int predict_read(const cl_tower *t, const char *path, void *input, cl_error *e) {
  const run *r = t->ctx;
  const cl_clip_config *c = &r->enc->cfg;
  if (r->squash) return cl_img_squash_preprocess_file(path, c->vision.image_size, NULL, NULL, input, e);
  return cl_img_preprocess_file_decode(path, c->vision.image_size, CL_IMG_DECODE_FULL, c->mean, c->std, input, e);
}

static int predict_encode(const cl_tower *t, const void *pixels, int n, float *out, cl_error *e) {
  const run *r = t->ctx;
  return cl_clip_encode_images(r->enc->clip, pixels, n, out, e);
}

/* --embeddings: the batch's embeddings kept for the file written at the end. Out of memory,
 * they are dropped and the error kept for the end: the predictions go on and are written. */
static void keep_embeddings(run *r, const cl_sched_batch *b, const strv *files) {
  if (r->emb_err.code) return;
  const int D = r->enc->cfg.embed_dim;
  float *grown = realloc(r->all_emb, (size_t)(r->ok_files.n + b->nok) * D * sizeof *grown);
  if (!grown) {
    cl_err(&r->emb_err, CL_ENOMEM,
           "%s: out of memory keeping the embeddings of %d images (%d x %d floats): not written (the predictions are)",
           r->o->embeddings, r->ok_files.n + b->nok, r->ok_files.n + b->nok, D);
    free(r->all_emb);
    r->all_emb = NULL;
    return;
  }
  r->all_emb = grown;
  memcpy(r->all_emb + (size_t)r->ok_files.n * D, b->emb, (size_t)b->nok * D * sizeof *b->emb);
  for (int i = 0; i < b->nok; i++) strv_push(&r->ok_files, cl_strdup(files->v[b->ok[i]]));
}

/* Scores and ranks the pending images, emitted in their order. */
static int score_pending(stream_ctx *c, cl_error *e) {
  run *r = c->r;
  const int n = c->npend, K = r->L.K;
  if (!n) return CL_OK;
  const double t0 = now();
  CL_TRY(cl_predict_probs(c->pend, n, &r->L, c->scale, c->probs, e));
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; i++)
    rank_image(r, c->probs + (size_t)i * K, c->groups ? &c->groups[omp_get_thread_num()] : NULL, &c->res[i]);
  for (int i = 0; i < n; i++) emit(r, c->files->v[c->pend_file[i]], &c->res[i]);
  c->npend = 0;
  c->t_rank += now() - t0;
  return CL_OK;
}

static int on_batch(void *ud, const cl_sched_batch *b, cl_error *e) {
  stream_ctx *c = ud;
  run *r = c->r;
  const int D = r->enc->cfg.embed_dim;
  for (int i = 0; i < b->nfailed; i++) fprintf(stderr, "clade: predict: skipping %s\n", b->errs[i].msg);
  if (!b->nok) return CL_OK;
  /* fewer than SCORE_ROWS wait, so a batch always fits */
  memcpy(c->pend + (size_t)c->npend * D, b->emb, (size_t)b->nok * D * sizeof *b->emb);
  for (int i = 0; i < b->nok; i++) c->pend_file[c->npend + i] = b->ok[i];
  c->npend += b->nok;
  if (c->npend >= SCORE_ROWS) CL_TRY(score_pending(c, e));
  if (r->o->embeddings) keep_embeddings(r, b, c->files);
  return CL_OK;
}

static int predict_all(run *r, const strv *files, cl_error *e) {
  const opts *o = r->o;
  const int S = r->enc->cfg.vision.image_size, B = o->batch, nt = omp_get_max_threads();
  const cl_tower t = {.mod = cl_modality_find("image"), .dim = r->enc->cfg.embed_dim, .batch = B,
                      .input_bytes = (size_t)3 * S * S * sizeof(float), .ctx = r,
                      .read = predict_read, .encode = predict_encode};
  stream_ctx c = {.r = r, .files = files, .scale = expf(cl_clip_logit_scale(r->enc->clip))}; /* logit_scale.exp() */
  const int cap = SCORE_ROWS - 1 + B, D = r->enc->cfg.embed_dim;
  c.probs = malloc((size_t)cap * r->L.K * sizeof *c.probs);
  c.res = calloc((size_t)cap, sizeof *c.res);
  c.pend = malloc((size_t)cap * D * sizeof *c.pend);
  c.pend_file = malloc((size_t)cap * sizeof *c.pend_file);
  int *rows = malloc((size_t)cap * r->k * 2 * sizeof *rows);
  float *scores = malloc((size_t)cap * r->k * sizeof *scores);
  int rc = c.probs && c.res && c.pend && c.pend_file && rows && scores ? CL_OK
         : cl_err(e, CL_ENOMEM, "out of memory for %d x %d probabilities (--batch-size %d)", cap, r->L.K, B);
  for (int i = 0; i < cap && !rc; i++)
    c.res[i] = (ranked){.idx = rows + (size_t)2 * i * r->k, .lab = rows + (size_t)(2 * i + 1) * r->k,
                        .score = scores + (size_t)i * r->k};
  if (!rc && r->gid) {
    c.groups = calloc((size_t)nt, sizeof *c.groups);
    if (!c.groups) rc = cl_err(e, CL_ENOMEM, "out of memory for the groups' scratch");
    for (int i = 0; i < nt && !rc; i++) rc = cl_predict_groups_init(&c.groups[i], r->ngroups, e);
  }
  /* batches in flight: one encoding, the next ones reading (two where a batch's pixels are large) */
  cl_sched_opts so = {.progress = CL_PROGRESS_OFF, .batches_in_flight = B > 256 ? 2 : 3};
  cl_sched_stats st = {0};
  cl_sched_stream s = {.on_batch = on_batch, .ud = &c};
  if (!rc) rc = cl_sched_stream_run(&t, &so, (const char *const *)files->v, files->n, &s, &st, e);
  if (!rc) rc = score_pending(&c, e); /* the last, smaller group */
  const int mi = cl_modality_index(t.mod);
  if (!rc) /* what benchmarks/cpu/predict compares: ranking beside encoding; read = waiting for pixels */
    fprintf(stderr, "clade: predict: seconds: read %.3f, encode %.3f, score and rank %.3f\n", st.wait_seconds[mi],
            st.encode_seconds[mi], c.t_rank);
  for (int i = 0; c.groups && i < nt; i++) cl_predict_groups_free(&c.groups[i]);
  free(c.groups), free(c.probs), free(c.res), free(c.pend), free(c.pend_file), free(rows), free(scores);
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
  /* "--name VALUE" or "--name=VALUE" (cl_cli_option); the last two take whole numbers */
  static const char *const names[] = {"--model", "--rank", "--cls", "--bins", "--subset", "--format", "--output",
                                      "--backend", "--precision", "--preprocess", "--embeddings", "--config",
                                      "--label-dtype", "--k", "--batch-size"};
  const char **slots[] = {&o.model, &o.rank_s, &o.cls, &o.bins, &o.subset, &o.format, &o.output,
                          &o.backend, &o.precision, &o.preprocess, &o.embeddings, &o.config, &o.label_dtype};
  const int nnames = (int)(sizeof names / sizeof *names), nslots = (int)(sizeof slots / sizeof *slots);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i], *v = NULL;
    const int which = cl_cli_option("predict", argc, argv, &i, names, nnames, &v);
    if (which == -2) {
      free(o.inputs);
      return 2;
    }
    if (which >= 0 && which < nslots) {
      *slots[which] = v;
    } else if (which >= nslots) {
      char *end;
      long n = strtol(v, &end, 10);
      const int is_k = !strcmp(names[which], "--k");
      const long most = is_k ? 1000000 : 4096; /* a batch's pixels: 4096 x 3 x S x S floats */
      if (*end || end == v || n < 1 || n > most) {
        cl_cli_fail("predict: %s %s: give a whole number from 1 to %ld", names[which], v, most);
        free(o.inputs);
        return 2;
      }
      if (is_k) o.k = (int)n;
      else o.batch = (int)n;
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
  if (!rc && r.emb_err.code) e = r.emb_err, rc = e.code;
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
