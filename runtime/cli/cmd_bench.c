/* clade bench: encoder speed on this machine (image tower, text tower, end to end, GEMM
 * peak, peak memory), printed and recorded in the results database as a run with a bench
 * table, so speed regressions are tracked like accuracy ones. Timings are medians over
 * repetitions after a warm-up; nothing here asserts a speed. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/cl_bench.h"
#include "cl_cli.h"
#include "model/cl_encoder.h"
#include "sched/cl_sched.h"
#include "store/cl_store.h"

#define MAXB 16
#define MAXR 64

typedef struct bargs {
  const char *db, *model, *config, *gelu, *images, *only, *backend, *make_images, *precision, *decode;
  const char *random_name; /* --random NAME: a built-in config (ViT-B-16 by default) */
  int random, no_db, json, profile, repeat, n_images, text_classes, text_batch, seed, nb;
  int batch[MAXB];
  double min_seconds;
} bargs;

typedef struct measure {
  char name[32], unit[16];
  int batch, reps;
  int64_t n;
  double value, vmin, vmax, frac; /* frac < 0: none */
  cJSON *extra;                   /* more members of its JSON object, or NULL */
} measure;

typedef struct bench {
  bargs a;
  cl_encoder *enc;
  cl_backend *prof; /* the profiling wrapper when --profile */
  char model_name[256];
  int threads;
  double peak;     /* fp32 GEMM peak, GFLOP/s */
  double fma_peak; /* register-only FMA ceiling, GFLOP/s */
  const char *fma_isa;
  measure m[MAXR];
  int nm;
} bench;

static int parse_batches(const char *s, bargs *a) {
  a->nb = 0;
  for (const char *p = s; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 4096 || a->nb == MAXB) return -1;
    a->batch[a->nb++] = (int)v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return a->nb ? 0 : -1;
}

static int parse(int argc, char **argv, bargs *a) {
  memset(a, 0, sizeof *a);
  a->db = "results/clade.db";
  a->repeat = 3;
  a->n_images = 96;
  a->text_classes = 8;
  a->text_batch = 256;
  a->min_seconds = 2.0;
  parse_batches("1,8,32", a);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--db") ? &a->db : !strcmp(s, "--model") ? &a->model
                      : !strcmp(s, "--config") ? &a->config : !strcmp(s, "--gelu") ? &a->gelu
                      : !strcmp(s, "--images") ? &a->images : !strcmp(s, "--only") ? &a->only
                      : !strcmp(s, "--backend") ? &a->backend : !strcmp(s, "--make-images") ? &a->make_images
                      : !strcmp(s, "--precision") ? &a->precision : !strcmp(s, "--decode") ? &a->decode : NULL;
    int *islot = !strcmp(s, "--repeat") ? &a->repeat : !strcmp(s, "--n-images") ? &a->n_images
               : !strcmp(s, "--text-classes") ? &a->text_classes : !strcmp(s, "--text-batch") ? &a->text_batch
               : !strcmp(s, "--seed") ? &a->seed : NULL;
    int has_value = slot || islot || !strcmp(s, "--batch") || !strcmp(s, "--min-seconds");
    if (has_value && i + 1 >= argc) {
      cl_cli_fail("bench: %s needs a value", s);
      return 2;
    }
    if (slot) {
      *slot = argv[++i];
    } else if (islot) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 0 || v > 1000000) {
        cl_cli_fail("bench: %s %s: expected a number", s, argv[i]);
        return 2;
      }
      *islot = (int)v;
    } else if (!strcmp(s, "--batch")) {
      if (parse_batches(argv[++i], a)) {
        cl_cli_fail("bench: --batch %s: expected sizes like 1,8,32", argv[i]);
        return 2;
      }
    } else if (!strcmp(s, "--min-seconds")) {
      a->min_seconds = atof(argv[++i]);
    } else if (!strcmp(s, "--random-vitb16")) {
      a->random = 1;
    } else if (!strcmp(s, "--random")) {
      if (i + 1 >= argc) {
        cl_cli_fail("bench: --random needs a built-in model name (ViT-B-16, ViT-L-14, ...)");
        return 2;
      }
      a->random = 1;
      a->random_name = argv[++i];
    } else if (!strcmp(s, "--no-db")) {
      a->no_db = 1;
    } else if (!strcmp(s, "--json")) {
      a->json = 1;
    } else if (!strcmp(s, "--profile")) {
      a->profile = 1;
    } else {
      cl_cli_fail("bench: unknown argument %s", s);
      return cl_cli_usage("bench");
    }
  }
  if (a->model && a->random) {
    cl_cli_fail("bench: give --model PATH or --random NAME, not both");
    return 2;
  }
  if (a->random_name && a->config && strcmp(a->random_name, a->config)) {
    cl_cli_fail("bench: --random %s and --config %s name two models", a->random_name, a->config);
    return 2;
  }
  if (a->random_name) {
    cl_clip_config c;
    cl_error e = {0};
    if (cl_clip_config_builtin(a->random_name, &c, &e)) {
      cl_cli_fail("bench: --random: %s", e.msg);
      return 2;
    }
    a->config = a->random_name;
  }
  if (!a->model) a->random = 1;
  if (a->repeat < 1) a->repeat = 1;
  if (a->text_batch < 1) a->text_batch = 256;
  return 0;
}

static int want(const bench *b, const char *what) {
  if (!b->a.only) return 1;
  size_t n = strlen(what);
  for (const char *p = b->a.only; (p = strstr(p, what)); p += n)
    if ((p == b->a.only || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
  return 0;
}

static int cmp_dbl(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_dbl);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static measure *add(bench *b, const char *name, int batch, const char *unit, double *rates, int reps, int64_t n,
                    double flops_per_item) {
  measure *m = &b->m[b->nm < MAXR ? b->nm++ : MAXR - 1];
  cJSON_Delete(m->extra);
  memset(m, 0, sizeof *m);
  snprintf(m->name, sizeof m->name, "%s", name);
  snprintf(m->unit, sizeof m->unit, "%s", unit);
  m->batch = batch, m->reps = reps, m->n = n;
  m->value = median(rates, reps);
  m->vmin = rates[0], m->vmax = rates[reps - 1];
  m->frac = flops_per_item > 0 && b->peak > 0 ? m->value * flops_per_item * 1e-9 / b->peak : -1;
  return m;
}

static measure *add1(bench *b, const char *name, const char *unit, double value) {
  double v = value;
  measure *m = add(b, name, 0, unit, &v, 1, 0, 0);
  m->reps = 0;
  return m;
}

/* A number as the table shows it (v rounded to 1/scale), so the JSON carries no false digits. */
static double rounded(double v, double scale) { return round(v * scale) / scale; }

/* The measure's extra JSON members, made on first use. */
static cJSON *extra(measure *m) {
  if (!m->extra) m->extra = cJSON_CreateObject();
  return m->extra;
}

/* ---- the encoder ---- */

static int wrap_profile(void *ud, cl_backend *be, cl_backend **out, cl_error *e) {
  bench *b = ud;
  int rc = cl_bench_prof_wrap(be, out, e);
  if (rc == CL_OK) b->prof = *out;
  return rc;
}

/* The spec of the model benchmarked: the checkpoint named, or random weights of a built-in
 * config; opened (fp32 for the reference of another precision) as runs open them. */
static cl_encoder_spec bench_spec(const bench *b) {
  const bargs *a = &b->a;
  return (cl_encoder_spec){.path = a->model, .config = a->random && !a->config ? "ViT-B-16" : a->config,
                           .gelu = a->gelu, .backend = a->backend ? a->backend : "cpu", .precision = a->precision,
                           .decode = a->decode, .quiet = 1, .random = a->random, .seed = (uint64_t)a->seed};
}

static int open_encoder(bench *b, cl_error *e) {
  const bargs *a = &b->a;
  cl_encoder_spec spec = bench_spec(b);
  if (a->profile) spec.wrap_backend = wrap_profile, spec.wrap_ud = b;
  int rc = cl_encoder_open(&spec, &b->enc, e);
  if (rc) return rc;
  if (!b->enc->clip) /* its measures are those of CLIP's towers and FLOP counts */
    return cl_err(e, CL_EUNSUP, "%s: clade bench measures open_clip CLIP models only", a->model);
  if (a->random)
    snprintf(b->model_name, sizeof b->model_name, "%s%s (random weights, seed %d)", spec.config,
             b->enc->cfg.quick_gelu && !strstr(spec.config, "quickgelu") ? " quickgelu" : "", a->seed);
  else
    snprintf(b->model_name, sizeof b->model_name, "%s", a->model);
  return CL_OK;
}

/* ---- measures ---- */

/* deterministic pixels in [-2, 2) */
static void random_pixels(float *px, size_t n) {
  uint64_t s = 12345;
  for (size_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    px[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 4.0 - 2.0);
  }
}

/* The largest relative distance ||x_i - ref_i|| / ||ref_i|| over n rows of D (NaN wins). */
static double worst_rel_err(const float *x, const float *ref, int n, int D) {
  double worst = 0;
  for (int i = 0; i < n; i++) {
    double num = 0, den = 0;
    for (int j = 0; j < D; j++) {
      const double d = (double)x[(size_t)i * D + j] - ref[(size_t)i * D + j];
      num += d * d, den += (double)ref[(size_t)i * D + j] * ref[(size_t)i * D + j];
    }
    const double r = sqrt(num / (den > 0 ? den : 1e-30));
    worst = r > worst || r != r ? r : worst;
  }
  return worst;
}

/* What a precision other than fp32 costs: 8 image embeddings against the same random model
 * built again in fp32 on the same backend; the largest relative distance. */
static int bench_precision_error(bench *b, cl_error *e) {
  cl_encoder *enc = b->enc;
  const int S = enc->cfg.vision.image_size, D = enc->cfg.embed_dim, n = 8;
  float *px = cl_xmalloc((size_t)n * 3 * S * S * sizeof(float)), *lo = cl_xmalloc((size_t)2 * n * D * sizeof(float));
  float *ref = lo + (size_t)n * D;
  random_pixels(px, (size_t)n * 3 * S * S);
  cl_encoder_spec spec = bench_spec(b);
  spec.precision = NULL; /* the same model in fp32 */
  cl_encoder *ref32 = NULL;
  int rc = cl_clip_encode_images(enc->clip, px, n, lo, e);
  if (!rc) rc = cl_encoder_open(&spec, &ref32, e);
  if (!rc) rc = cl_clip_encode_images(ref32->clip, px, n, ref, e);
  if (!rc) {
    measure *me = add1(b, "error_vs_fp32", "rel err", worst_rel_err(lo, ref, n, D));
    cJSON_AddNumberToObject(extra(me), "images", n);
    cJSON_AddStringToObject(extra(me), "precision", enc->precision);
  }
  cl_encoder_close(ref32);
  free(px), free(lo);
  return rc;
}

static int bench_images(bench *b, cl_error *e) {
  cl_encoder *enc = b->enc;
  const cl_clip_config *c = &enc->cfg;
  const int S = c->vision.image_size, D = c->embed_dim;
  const size_t per = (size_t)3 * S * S;
  int bmax = 0;
  for (int i = 0; i < b->a.nb; i++) bmax = b->a.batch[i] > bmax ? b->a.batch[i] : bmax;
  float *px = cl_xmalloc((size_t)bmax * per * sizeof(float)), *out = cl_xmalloc((size_t)bmax * D * sizeof(float));
  random_pixels(px, (size_t)bmax * per);
  const double fl = cl_bench_image_flops(c);
  int rc = cl_clip_encode_images(enc->clip, px, bmax, out, e); /* warm-up: sizes the buffers */
  for (int bi = 0; rc == CL_OK && bi < b->a.nb; bi++) {
    const int nb = b->a.batch[bi];
    double rates[256];
    int reps = 0;
    double t0 = cl_bench_now();
    if (b->prof) cl_bench_prof_reset(b->prof);
    while (reps < 256 && (reps < b->a.repeat || cl_bench_now() - t0 < b->a.min_seconds)) {
      double t = cl_bench_now();
      if ((rc = cl_clip_encode_images(enc->clip, px, nb, out, e))) break;
      rates[reps++] = nb / (cl_bench_now() - t);
    }
    if (rc) break;
    add(b, "image_tower", nb, "images/s", rates, reps, nb, fl);
    if (b->prof) {
      char title[64];
      snprintf(title, sizeof title, "image tower, %d reps of batch %d", reps, nb);
      cl_bench_prof_print(b->prof, stderr, title);
    }
  }
  free(px), free(out);
  return rc;
}

static int argmax_len(const int32_t *ids, int n) {
  int best = 0;
  for (int j = 1; j < n; j++)
    if (ids[j] > ids[best]) best = j;
  return best + 1;
}

static int bench_texts(bench *b, cl_error *e) {
  cl_encoder *enc = b->enc;
  const cl_clip_config *c = &enc->cfg;
  const int C = c->text.context_length, D = c->embed_dim, B = b->a.text_batch;
  char **texts;
  int n, ncls;
  int rc = cl_bench_rare_prompts(b->a.text_classes, &texts, &n, &ncls, e);
  if (rc) return rc;
  int32_t *ids = cl_xmalloc((size_t)n * C * sizeof(int32_t));
  float *out = cl_xmalloc((size_t)(B < n ? B : n) * D * sizeof(float));
  double t = cl_bench_now();
  for (int i = 0; i < n && rc == CL_OK; i++)
    if (cl_tok_encode(enc->tok, texts[i], ids + (size_t)i * C, C, e) < 0) rc = e->code ? e->code : CL_EINVAL;
  double tok_rate = n / (cl_bench_now() - t);
  int64_t tokens = 0;
  double real = 0;
  for (int i = 0; i < n; i++) {
    int len = argmax_len(ids + (size_t)i * C, C);
    tokens += len;
    real += cl_bench_text_flops(c, len);
  }
  /* warm-up on one batch, then whole passes over every prompt */
  if (rc == CL_OK) rc = cl_clip_encode_texts(enc->clip, ids, B < n ? B : n, out, e);
  double rates[64];
  int reps = 0;
  if (b->prof) cl_bench_prof_reset(b->prof);
  double t0 = cl_bench_now();
  while (rc == CL_OK && reps < 64 && (reps < (b->a.repeat > 2 ? 2 : b->a.repeat) || cl_bench_now() - t0 < b->a.min_seconds)) {
    t = cl_bench_now();
    for (int s = 0; s < n && rc == CL_OK; s += B)
      rc = cl_clip_encode_texts(enc->clip, ids + (size_t)s * C, n - s < B ? n - s : B, out, e);
    rates[reps++] = n / (cl_bench_now() - t);
  }
  if (rc == CL_OK) {
    measure *m = add(b, "text_tower", B, "prompts/s", rates, reps, n, cl_bench_text_flops(c, C));
    double real_frac = b->peak > 0 ? m->value * (real / n) * 1e-9 / b->peak : -1;
    cJSON *x = extra(m);
    cJSON_AddNumberToObject(x, "prompts", n);
    cJSON_AddNumberToObject(x, "classes", ncls);
    cJSON_AddNumberToObject(x, "templates", n / (ncls ? ncls : 1));
    cJSON_AddNumberToObject(x, "mean_tokens", rounded((double)tokens / n, 100));
    cJSON_AddNumberToObject(x, "real_gflop_per_prompt", rounded(real / n * 1e-9, 1e4));
    cJSON_AddNumberToObject(x, "real_peak_fraction", rounded(real_frac, 1e4));
    cJSON_AddNumberToObject(x, "flops_77_gflop", rounded(cl_bench_text_flops(c, C) * 1e-9, 1e4));
    double tr = tok_rate;
    add(b, "tokenize", 0, "prompts/s", &tr, 1, n, 0)->reps = 1;
    if (b->prof) {
      char title[64];
      snprintf(title, sizeof title, "text tower, %d passes over %d prompts", reps, n);
      cl_bench_prof_print(b->prof, stderr, title);
    }
  }
  free(ids), free(out), free(texts);
  return rc;
}

static int rm_rf_jpegs(const char *dir, char **paths, int n) {
  for (int i = 0; i < n; i++) unlink(paths[i]);
  return rmdir(dir);
}

static int bench_e2e(bench *b, cl_error *e) {
  cl_encoder *enc = b->enc;
  char dir[PATH_MAX] = "";
  char **paths = NULL;
  int n = 0, rc = CL_OK, made = 0;
  int64_t bytes = 0;
  double tg = cl_bench_now();
  if (b->a.images) {
    if ((rc = cl_bench_list_images(b->a.images, &paths, &n, e))) return rc;
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/clade_bench_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return cl_err(e, CL_EIO, "%s: cannot create a temporary folder", dir);
    n = b->a.n_images > 0 ? b->a.n_images : 96;
    if ((rc = cl_bench_make_jpegs(dir, n, 7, &paths, &bytes, e))) {
      rmdir(dir);
      return rc;
    }
    made = 1;
  }
  tg = cl_bench_now() - tg;
  int bmax = 0;
  for (int i = 0; i < b->a.nb; i++) bmax = b->a.batch[i] > bmax ? b->a.batch[i] : bmax;
  cl_encoder_tower(enc, "image", NULL)->batch = bmax; /* every CLIP has one */
  const int D = enc->cfg.embed_dim, im = cl_sched_stat("image");
  float *out = cl_xmalloc((size_t)n * D * sizeof(float));
  cl_sched_opts o = {.cache = NULL, .progress = CL_PROGRESS_OFF, .label = "bench"};
  double rates[64], dec = 0, encs = 0;
  int reps = 0;
  double t0 = cl_bench_now();
  while (rc == CL_OK && reps < 64 && (reps < (b->a.repeat > 2 ? 2 : b->a.repeat) || cl_bench_now() - t0 < b->a.min_seconds)) {
    cl_sched_stats st = {0};
    double t = cl_bench_now();
    rc = cl_sched_embed(enc, "image", &o, (const char *const *)paths, n, out, &st, e);
    rates[reps++] = n / (cl_bench_now() - t);
    dec += st.read_seconds[im], encs += st.encode_seconds[im];
  }
  if (rc == CL_OK) {
    measure *m = add(b, "end_to_end", bmax, "images/s", rates, reps, n, cl_bench_image_flops(&enc->cfg));
    double tower = 0;
    for (int i = 0; i < b->nm; i++)
      if (!strcmp(b->m[i].name, "image_tower") && b->m[i].batch == bmax) tower = b->m[i].value;
    cJSON *x = extra(m);
    cJSON_AddNumberToObject(x, "images", n);
    cJSON_AddBoolToObject(x, "generated", made);
    cJSON_AddNumberToObject(x, "jpeg_mbytes", rounded(bytes / 1048576.0, 10));
    cJSON_AddNumberToObject(x, "generate_seconds", rounded(tg, 100));
    cJSON_AddNumberToObject(x, "decode_ms_per_image", rounded(1000 * dec / ((double)n * reps), 100));
    cJSON_AddNumberToObject(x, "encode_share", rounded(encs / (reps * n / m->value), 1e4));
    cJSON_AddNumberToObject(x, "vs_image_tower", rounded(tower > 0 ? m->value / tower : -1, 1e4));
  }
  if (rc == CL_OK && enc->decode == CL_IMG_DECODE_DRAFT) {
    /* what draft decoding costs: the same images decoded in full, embeddings compared */
    float *ref = cl_xmalloc((size_t)n * D * sizeof(float));
    cl_sched_stats st = {0};
    enc->decode = CL_IMG_DECODE_FULL;
    rc = cl_sched_embed(enc, "image", &o, (const char *const *)paths, n, ref, &st, e);
    enc->decode = CL_IMG_DECODE_DRAFT;
    if (rc == CL_OK) {
      measure *m = add1(b, "draft_error", "rel err", worst_rel_err(out, ref, n, D));
      cJSON_AddNumberToObject(extra(m), "images", n);
      cJSON_AddNumberToObject(extra(m), "full_decode_ms_per_image", rounded(1000 * st.read_seconds[im] / n, 100));
    }
    free(ref);
  }
  free(out);
  if (made) rm_rf_jpegs(dir, paths, n);
  free(paths);
  return rc;
}

/* ---- output ---- */

static cJSON *measure_json(const measure *m) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", m->name);
  if (m->batch > 0) cJSON_AddNumberToObject(o, "batch", m->batch);
  else cJSON_AddNullToObject(o, "batch");
  cJSON_AddNumberToObject(o, "value", m->value);
  cJSON_AddStringToObject(o, "unit", m->unit);
  cJSON_AddNumberToObject(o, "min", m->vmin);
  cJSON_AddNumberToObject(o, "max", m->vmax);
  cJSON_AddNumberToObject(o, "reps", m->reps);
  cJSON_AddNumberToObject(o, "n", (double)m->n);
  if (m->frac >= 0) cJSON_AddNumberToObject(o, "peak_fraction", rounded(m->frac, 1e4));
  else cJSON_AddNullToObject(o, "peak_fraction");
  for (const cJSON *x = m->extra ? m->extra->child : NULL; x; x = x->next)
    cJSON_AddItemToObject(o, x->string, cJSON_Duplicate(x, 1));
  return o;
}

/* m's extra members as one JSON object text (malloc'd), or NULL when it has none. */
static char *extra_text(const measure *m) { return m->extra ? cJSON_PrintUnformatted(m->extra) : NULL; }

static void print_json(const bench *b, FILE *f, const char *cpu) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "tool", "clade");
  cJSON_AddStringToObject(o, "version", CLADE_VERSION);
  cJSON_AddStringToObject(o, "model", b->model_name);
  cJSON_AddStringToObject(o, "model_hash", b->enc->hash);
  cJSON_AddStringToObject(o, "backend", b->enc->backend_name);
  cJSON_AddStringToObject(o, "precision", b->enc->precision);
  cJSON_AddStringToObject(o, "decode", cl_img_decode_name(b->enc->decode));
  cJSON_AddNumberToObject(o, "threads", b->threads);
  cJSON_AddStringToObject(o, "cpu", cpu);
  cJSON_AddNumberToObject(o, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
  cJSON *env = cJSON_AddObjectToObject(o, "env");
  static const char *vars[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                               "GOMP_SPINCOUNT"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (v) cJSON_AddStringToObject(env, vars[i], v);
    else cJSON_AddNullToObject(env, vars[i]);
  }
  cJSON_AddNumberToObject(o, "gemm_peak_gflops", rounded(b->peak, 100));
  cJSON_AddNumberToObject(o, "fma_peak_gflops", rounded(b->fma_peak, 100));
  cJSON *res = cJSON_AddArrayToObject(o, "results");
  for (int i = 0; i < b->nm; i++) cJSON_AddItemToArray(res, measure_json(&b->m[i]));
  char *text = cJSON_PrintUnformatted(o);
  if (text) fprintf(f, "%s\n", text);
  cJSON_free(text);
  cJSON_Delete(o);
}

static void print_table(const bench *b, FILE *f, const char *cpu) {
  fprintf(f, "clade bench: %s, backend %s, %s, %s decode, %d threads\n", b->model_name, b->enc->backend_name,
          b->enc->precision, cl_img_decode_name(b->enc->decode), b->threads);
  fprintf(f, "machine: %s, %ld cores; OPENBLAS_CORETYPE=%s; fp32 GEMM peak %.1f GFLOP/s; FMA ceiling %.1f GFLOP/s (%s)\n",
          cpu, sysconf(_SC_NPROCESSORS_ONLN), getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
          b->peak, b->fma_peak, b->fma_isa ? b->fma_isa : "not measured");
  fprintf(f, "%-14s %6s %12s %-10s %23s %5s %7s\n", "measure", "batch", "median", "unit", "min .. max", "reps",
          "of peak");
  for (int i = 0; i < b->nm; i++) {
    const measure *m = &b->m[i];
    char bs[16] = "", range[48] = "", frac[16] = "";
    if (m->batch > 0) snprintf(bs, sizeof bs, "%d", m->batch);
    if (m->reps > 1) snprintf(range, sizeof range, "%.4g .. %.4g", m->vmin, m->vmax);
    if (m->frac >= 0) snprintf(frac, sizeof frac, "%.1f%%", 100 * m->frac);
    fprintf(f, "%-14s %6s %12.4g %-10s %23s %5d %7s\n", m->name, bs, m->value, m->unit, range, m->reps, frac);
    char *x = extra_text(m);
    if (x) fprintf(f, "%21s%s\n", "", x);
    cJSON_free(x);
  }
}

/* The run is begun before the measures (so its wall time is the benchmark's) and ended,
 * complete or failed, with one bench row per measure. */
static int record_begin(const bench *b, const char *cpu, cl_store **s, int64_t *run_id, cl_error *e) {
  int rc = cl_store_open(b->a.db, s, e);
  if (rc) return rc;
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) snprintf(exe, sizeof exe, "clade");
  else exe[len] = 0;
  char device[320];
  snprintf(device, sizeof device, "%s x%ld", cpu, sysconf(_SC_NPROCESSORS_ONLN));
  cl_run_info ri = {.file = exe, .backend = b->enc->backend_name, .device = device, .precision = b->enc->precision,
                    .decode = cl_img_decode_name(b->enc->decode)};
  if ((rc = cl_store_run_begin(*s, &ri, run_id, e))) {
    cl_store_close(*s);
    *s = NULL;
    return rc;
  }
  if (cl_store_warning(*s)) fprintf(stderr, "clade: %s\n", cl_store_warning(*s));
  return CL_OK;
}

static int record_end(const bench *b, cl_store *s, int64_t run_id, int ok, cl_error *e) {
  int rc = CL_OK;
  for (int i = 0; ok && i < b->nm && rc == CL_OK; i++) {
    const measure *m = &b->m[i];
    char *params = extra_text(m);
    cl_bench_row r = {.name = m->name, .batch = m->batch, .value = m->value, .unit = m->unit,
                      .value_min = m->vmin, .value_max = m->vmax, .reps = m->reps, .n = m->n,
                      .peak_fraction = m->frac, .model = b->model_name, .model_hash = b->enc->hash,
                      .threads = b->threads, .params_json = params};
    rc = cl_store_bench_add(s, run_id, &r, e);
    cJSON_free(params);
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "kind", "bench");
  cJSON_AddStringToObject(o, "model", b->enc->hash);
  cJSON_AddNumberToObject(o, "threads", b->threads);
  cJSON_AddNumberToObject(o, "gemm_peak_gflops", rounded(b->peak, 100));
  cJSON_AddNumberToObject(o, "fma_peak_gflops", rounded(b->fma_peak, 100));
  cJSON_AddStringToObject(o, "openblas_coretype", getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "");
  char *stats = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  cl_run_stats st = {.stats_json = stats};
  if (ok && rc == CL_OK) rc = cl_store_run_set_stats(s, run_id, &st, e);
  if (ok && rc == CL_OK) rc = cl_store_run_end(s, run_id, "complete", e);
  else cl_store_run_end(s, run_id, "failed", NULL);
  cJSON_free(stats);
  cl_store_close(s);
  return rc;
}

int cl_cmd_bench(int argc, char **argv) {
  bench *b = cl_xcalloc(1, sizeof *b);
  int rc = parse(argc, argv, &b->a);
  if (rc) {
    free(b);
    return rc;
  }
  cl_error e = {0};
  if (b->a.make_images) { /* write the JPEG set and stop (for other tools to read the same files) */
    char **paths;
    int64_t bytes;
    const int n = b->a.n_images > 0 ? b->a.n_images : 96;
    rc = cl_bench_make_jpegs(b->a.make_images, n, 7, &paths, &bytes, &e);
    if (rc == CL_OK) {
      fprintf(stderr, "clade: bench: wrote %d JPEGs (%.1f MB) to %s\n", n, bytes / 1048576.0, b->a.make_images);
      free(paths);
    } else {
      cl_cli_fail("bench: %s", e.msg);
    }
    free(b);
    return rc ? 1 : 0;
  }
  char cpu[256];
  cl_cpu_model_name(cpu, sizeof cpu);
  b->threads = omp_get_max_threads();
  rc = CL_OK;
  if (want(b, "gemm")) {
    b->peak = cl_bench_gemm_peak(1536, 5);
    add1(b, "gemm_peak", "GFLOP/s", b->peak);
    b->fma_peak = cl_bench_fma_peak(3, &b->fma_isa);
    measure *m = add1(b, "fma_peak", "GFLOP/s", b->fma_peak);
    cJSON_AddStringToObject(extra(m), "isa", b->fma_isa);
  }
  if (!b->a.json)
    fprintf(stderr, "clade: bench: loading %s%s\n", b->a.random ? "random weights of " : "",
            b->a.random ? (b->a.config ? b->a.config : "ViT-B-16") : b->a.model);
  cl_store *store = NULL;
  int64_t run_id = 0;
  double t = cl_bench_now();
  if ((rc = open_encoder(b, &e))) goto done;
  add1(b, "load", "s", cl_bench_now() - t);
  add1(b, "load_peak_rss", "MiB", cl_bench_peak_rss_mb());
  if (!b->a.no_db && (rc = record_begin(b, cpu, &store, &run_id, &e))) goto done;
  int reset = cl_bench_reset_peak_rss() == 0;
  if (want(b, "image") && (rc = bench_images(b, &e))) goto done;
  if (want(b, "text") && (rc = bench_texts(b, &e))) goto done;
  if (want(b, "e2e") && (rc = bench_e2e(b, &e))) goto done;
  {
    int bmax = 0;
    for (int i = 0; i < b->a.nb; i++) bmax = b->a.batch[i] > bmax ? b->a.batch[i] : bmax;
    const double budget =
        (cl_bench_param_count(&b->enc->cfg) + cl_bench_image_act_floats(&b->enc->cfg, bmax)) * 4.0 / 1048576.0;
    measure *m = add1(b, reset ? "peak_rss" : "peak_rss_all", "MiB", cl_bench_peak_rss_mb());
    cJSON *x = extra(m);
    cJSON_AddNumberToObject(x, "weights_mib", rounded(cl_bench_param_count(&b->enc->cfg) * 4.0 / 1048576.0, 10));
    cJSON_AddNumberToObject(x, "activations_mib",
                            rounded(cl_bench_image_act_floats(&b->enc->cfg, bmax) * 4.0 / 1048576.0, 10));
    cJSON_AddNumberToObject(x, "act_batch", bmax);
    cJSON_AddNumberToObject(x, "vs_weights_plus_activations", rounded(m->value / budget, 1e3));
    cJSON_AddStringToObject(x, "since", reset ? "model loaded" : "process start");
  }
  /* after peak RSS: the fp32 model built for the comparison is not the bench's */
  if (b->a.random && strcmp(b->enc->precision, "fp32") && want(b, "image") && (rc = bench_precision_error(b, &e)))
    goto done;
  if (b->a.json) print_json(b, stdout, cpu);
  else print_table(b, stdout, cpu);
  if (store) {
    rc = record_end(b, store, run_id, 1, &e);
    store = NULL;
    if (rc) goto done;
    if (!b->a.json) fprintf(stderr, "clade: bench: recorded as run %lld in %s\n", (long long)run_id, b->a.db);
  }
done:
  if (store) record_end(b, store, run_id, 0, NULL);
  if (rc) cl_cli_fail("bench: %s", e.msg);
  cl_encoder_close(b->enc);
  for (int i = 0; i < b->nm; i++) cJSON_Delete(b->m[i].extra);
  free(b);
  return rc ? 1 : 0;
}
