/* bench_cuda: images/s and prompts/s of open_clip ViT-B-16 with random weights on a clade
 * backend, at several batch sizes and precisions. Each precision gets a fresh backend and
 * model (set_precision comes before the weights are loaded and prepared). Each batch runs as
 * one chunk (max_tokens = the batch's tokens), so the numbers measure the backend at that
 * batch and not the chunking. Prints one line per measurement:
 *   RESULT clade <images|texts> <label> <batch> <items per second>
 * where label is the precision (or --label, for one precision), and for the CUDA backend a
 * "# <label>: ..." line saying what the GEMMs and attention ran on.
 * Usage: bench_cuda [--backend cuda|cpu] [--precision fp32,tf32,bf16] [--label NAME]
 *                   [--batches 1,32,256] [--seconds 3] [--no-texts]
 * Built and run by benchmarks/gpu/run (a GPU machine); --backend cpu checks it anywhere. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/cl_clip.h"
#ifdef CLADE_HAVE_CUDA_BACKEND
#include "cuda/cl_cuda.h"
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 40) * (2.0 / (1 << 24)) - 1.0);
}

/* A tensor of the state dict: random weights of scale s (LayerNorm gains at 1). */
static void put(cl_tmap *w, const char *name, float s, float base, int ndim, int64_t d0, int64_t d1,
                int64_t d2, int64_t d3) {
  const int64_t shape[4] = {d0, d1, d2, d3};
  cl_tensor *t = cl_tmap_put_copy(w, name, CL_F32, ndim, shape, NULL);
  float *p = t->data;
  for (int64_t i = 0; i < cl_tensor_numel(t); i++) p[i] = base + s * frand();
}

static void put_tower(cl_tmap *w, const char *prefix, int layers, int64_t W, int64_t M) {
  char k[160];
#define P(suffix, ...) (snprintf(k, sizeof k, "%s.resblocks.%d.%s", prefix, i, suffix), put(w, k, __VA_ARGS__))
  for (int i = 0; i < layers; i++) {
    P("ln_1.weight", 0.1f, 1, 1, W, 0, 0, 0);
    P("ln_1.bias", 0.1f, 0, 1, W, 0, 0, 0);
    P("attn.in_proj_weight", 0.04f, 0, 2, 3 * W, W, 0, 0);
    P("attn.in_proj_bias", 0.01f, 0, 1, 3 * W, 0, 0, 0);
    P("attn.out_proj.weight", 0.04f, 0, 2, W, W, 0, 0);
    P("attn.out_proj.bias", 0.01f, 0, 1, W, 0, 0, 0);
    P("ln_2.weight", 0.1f, 1, 1, W, 0, 0, 0);
    P("ln_2.bias", 0.1f, 0, 1, W, 0, 0, 0);
    P("mlp.c_fc.weight", 0.04f, 0, 2, M, W, 0, 0);
    P("mlp.c_fc.bias", 0.01f, 0, 1, M, 0, 0, 0);
    P("mlp.c_proj.weight", 0.02f, 0, 2, W, M, 0, 0);
    P("mlp.c_proj.bias", 0.01f, 0, 1, W, 0, 0, 0);
  }
#undef P
}

static void random_state_dict(const cl_clip_config *c, cl_tmap *w) {
  const int64_t Wv = c->vision.width, P = c->vision.patch_size, g = c->vision.image_size / P;
  const int64_t Wt = c->text.width, E = c->embed_dim;
  cl_tmap_init(w);
  put(w, "visual.conv1.weight", 0.02f, 0, 4, Wv, 3, P, P);
  put(w, "visual.class_embedding", 0.05f, 0, 1, Wv, 0, 0, 0);
  put(w, "visual.positional_embedding", 0.05f, 0, 2, 1 + g * g, Wv, 0, 0);
  put(w, "visual.ln_pre.weight", 0.1f, 1, 1, Wv, 0, 0, 0);
  put(w, "visual.ln_pre.bias", 0.1f, 0, 1, Wv, 0, 0, 0);
  put_tower(w, "visual.transformer", c->vision.layers, Wv, (int64_t)(Wv * c->vision.mlp_ratio));
  put(w, "visual.ln_post.weight", 0.1f, 1, 1, Wv, 0, 0, 0);
  put(w, "visual.ln_post.bias", 0.1f, 0, 1, Wv, 0, 0, 0);
  put(w, "visual.proj", 0.04f, 0, 2, Wv, E, 0, 0);
  put(w, "token_embedding.weight", 0.02f, 0, 2, c->text.vocab_size, Wt, 0, 0);
  put(w, "positional_embedding", 0.01f, 0, 2, c->text.context_length, Wt, 0, 0);
  put_tower(w, "transformer", c->text.layers, Wt, (int64_t)(Wt * c->text.mlp_ratio));
  put(w, "ln_final.weight", 0.1f, 1, 1, Wt, 0, 0, 0);
  put(w, "ln_final.bias", 0.1f, 0, 1, Wt, 0, 0, 0);
  put(w, "text_projection", 0.04f, 0, 2, Wt, E, 0, 0);
  put(w, "logit_scale", 0, 4.6052f, 0, 0, 0, 0, 0);
}

/* Runs f until `seconds` have passed (at least 3 runs, after one warm-up); items/s. */
typedef int (*run_fn)(cl_clip *m, const void *in, int n, float *out, cl_error *e);
static int run_images(cl_clip *m, const void *in, int n, float *out, cl_error *e) {
  return cl_clip_encode_images(m, in, n, out, e);
}
static int run_texts(cl_clip *m, const void *in, int n, float *out, cl_error *e) {
  return cl_clip_encode_texts(m, in, n, out, e);
}

static double measure(cl_clip *m, run_fn f, const void *in, int n, float *out, double seconds) {
  cl_error e = {0};
  if (f(m, in, n, out, &e)) {
    fprintf(stderr, "bench_cuda: %s\n", e.msg);
    exit(1);
  }
  int runs = 0;
  double t0 = now(), t;
  do {
    if (f(m, in, n, out, &e)) {
      fprintf(stderr, "bench_cuda: %s\n", e.msg);
      exit(1);
    }
    runs++;
    t = now() - t0;
  } while (runs < 3 || t < seconds);
  return (double)runs * n / t;
}

static int make_backend(const char *backend, cl_backend **be, cl_error *e) {
  if (!strcmp(backend, "cpu")) return cl_backend_cpu_create(be, e);
#ifdef CLADE_HAVE_CUDA_BACKEND
  if (!strcmp(backend, "cuda")) return cl_backend_cuda_create(be, e);
#endif
  return cl_err(e, CL_EUNSUP, "backend %s is not built", backend);
}

/* All batches in one precision: a fresh backend in that precision, the model loaded on it. */
static int bench_precision(const char *backend, cl_precision prec, const char *label, const cl_clip_config *cfg,
                           const cl_tmap *w, const char *batches, double seconds, int texts) {
  cl_error e = {0};
  cl_backend *be = NULL;
  cl_clip *m = NULL;
  if (make_backend(backend, &be, &e)) return fprintf(stderr, "bench_cuda: %s\n", e.msg), 1;
  if (prec != CL_PREC_FP32 && (!be->set_precision || be->set_precision(be, prec, &e))) {
    printf("# %s: not offered by the %s backend%s%s\n", cl_precision_name(prec), backend,
           be->set_precision ? ": " : "", be->set_precision ? e.msg : "");
    cl_backend_destroy(be);
    return 0;
  }
  if (cl_clip_load(cfg, w, be, &m, &e)) {
    fprintf(stderr, "bench_cuda: %s\n", e.msg);
    cl_backend_destroy(be);
    return 1;
  }
  const int S = cfg->vision.image_size, ctx = cfg->text.context_length, g = S / cfg->vision.patch_size;
  for (const char *b = batches; *b;) {
    const int n = atoi(b);
    const size_t per = (size_t)3 * S * S;
    float *px = malloc((size_t)n * per * sizeof *px), *out = malloc((size_t)n * cfg->embed_dim * sizeof *out);
    int32_t *ids = calloc((size_t)n * ctx, sizeof *ids);
    if (n <= 0 || !px || !out || !ids) {
      fprintf(stderr, "bench_cuda: bad batch size or out of memory (%d)\n", n);
      exit(1);
    }
    for (size_t i = 0; i < (size_t)n * per; i++) px[i] = frand();
    for (int i = 0; i < n; i++) { /* prompts of 16 tokens: SOT, 14 words, EOT */
      int32_t *s = ids + (size_t)i * ctx;
      s[0] = 49406;
      for (int j = 1; j < 15; j++) s[j] = 320 + (int32_t)((frand() + 1) * 20000);
      s[15] = 49407;
    }
    cl_clip_set_max_tokens(m, n * (1 + g * g));
    printf("RESULT clade images %s %d %.1f\n", label, n, measure(m, run_images, px, n, out, seconds));
    if (texts) printf("RESULT clade texts %s %d %.1f\n", label, n, measure(m, run_texts, ids, n, out, seconds));
    fflush(stdout);
    free(px), free(out), free(ids);
    b = strchr(b, ',');
    if (!b) break;
    b++;
  }
#ifdef CLADE_HAVE_CUDA_BACKEND
  if (!strcmp(backend, "cuda")) printf("# %s: %s\n", label, cl_backend_cuda_path_info(be));
#endif
  cl_clip_free(m);
  cl_backend_destroy(be);
  return 0;
}

int main(int argc, char **argv) {
  const char *backend = "cuda", *batches = "1,32,256", *precisions = "fp32,tf32,bf16", *label = NULL;
  double seconds = 3;
  int texts = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
    else if (!strcmp(argv[i], "--batches") && i + 1 < argc) batches = argv[++i];
    else if (!strcmp(argv[i], "--precision") && i + 1 < argc) precisions = argv[++i];
    else if (!strcmp(argv[i], "--label") && i + 1 < argc) label = argv[++i];
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--no-texts")) texts = 0;
    else {
      fprintf(stderr, "usage: bench_cuda [--backend cuda|cpu] [--precision fp32,tf32,bf16] [--label NAME]\n"
                      "                  [--batches 1,32,256] [--seconds 3] [--no-texts]\n");
      return 2;
    }
  }
  /* the precisions, parsed before the (slow) random weights */
  cl_precision prec[8];
  int np = 0;
  for (const char *p = precisions; *p && np < 8;) {
    char name[16];
    size_t len = strcspn(p, ",");
    snprintf(name, sizeof name, "%.*s", (int)(len < 15 ? len : 15), p);
    if (cl_precision_parse(name, &prec[np++])) {
      fprintf(stderr, "bench_cuda: unknown precision '%s' (fp32, tf32, bf16, fp16)\n", name);
      return 2;
    }
    p += len;
    if (*p == ',') p++;
  }
  if (label && np != 1) return fprintf(stderr, "bench_cuda: --label needs exactly one precision\n"), 2;

  cl_error e = {0};
  cl_backend *be = NULL;
  if (make_backend(backend, &be, &e)) return fprintf(stderr, "bench_cuda: %s\n", e.msg), 1;
  if (be->device[0]) printf("# device: %s\n", be->device);
  cl_backend_destroy(be);
  cl_clip_config cfg;
  cl_tmap w;
  if (cl_clip_config_builtin("ViT-B-16", &cfg, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
  random_state_dict(&cfg, &w);
  int rc = 0;
  for (int i = 0; i < np && !rc; i++)
    rc = bench_precision(backend, prec[i], label ? label : cl_precision_name(prec[i]), &cfg, &w, batches, seconds,
                         texts);
  cl_tmap_free(&w);
  return rc;
}
