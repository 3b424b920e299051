/* cl_bench: measuring helpers for `clade bench` (see the header). */
#define _GNU_SOURCE
#include "cl_bench.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lua/cl_lua.h"

double cl_bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------- GEMM peak ---------------- */

double cl_bench_gemm_peak(int n, int reps) {
  const int nt = omp_get_max_threads();
  const size_t nn = (size_t)n * n;
  float *buf = NULL;
  if (posix_memalign((void **)&buf, 64, 3 * nn * nt * sizeof(float))) return 0;
  for (size_t i = 0; i < 3 * nn * nt; i++) buf[i] = (float)((i * 7) % 13) * 0.01f;
  double best = 0;
  for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
    double rate = 0;
#pragma omp parallel num_threads(nt) reduction(+ : rate)
    {
      const int th = omp_get_thread_num();
      float *a = buf + 3 * nn * th, *b = a + nn, *c = b + nn;
      double t0 = cl_bench_now(), t = 0;
      int calls = 0;
      do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        calls++;
        t = cl_bench_now() - t0;
      } while (t < 0.5);
      rate += 2.0 * n * (double)n * n * calls / t * 1e-9;
    }
    if (r > 0 && rate > best) best = rate;
  }
  free(buf);
  return best;
}

/* ---------------- FMA ceiling ---------------- */

#if defined(__x86_64__)
#include <immintrin.h>
/* 12 independent chains: more than FMA latency x ports (4 x 2), so only throughput counts.
 * The empty asm "changes" every chain each step, so the compiler keeps each one in a register
 * and can neither drop nor merge an FMA. */
#define FMA_CHAINS(FMA)                                                                                  \
  for (long i = 0; i < iters; i++) {                                                                      \
    for (int j = 0; j < 12; j++) acc[j] = FMA(acc[j], x, y);                                              \
    __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]),          \
                     "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), \
                     "+v"(acc[11]));                                                                      \
  }

__attribute__((target("avx512f"))) static void fma_run512(long iters) {
  __m512 acc[12], x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-6f);
  for (int j = 0; j < 12; j++) acc[j] = _mm512_set1_ps(j * 1e-3f);
  FMA_CHAINS(_mm512_fmadd_ps)
}

__attribute__((target("avx2,fma"))) static void fma_run256(long iters) {
  __m256 acc[12], x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-6f);
  for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps(j * 1e-3f);
  FMA_CHAINS(_mm256_fmadd_ps)
}
#endif

double cl_bench_fma_peak(int reps, const char **isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const int wide = __builtin_cpu_supports("avx512f");
  const int lanes = wide ? 16 : 8;
  if (isa) *isa = wide ? "avx512" : "avx2";
  double best = 0;
  for (int r = 0; r <= reps; r++) { /* r = 0 warms up (and lets the clock settle) */
    double rate = 0;
#pragma omp parallel reduction(+ : rate)
    {
      const long chunk = 1 << 16;
      long n = 0;
      double t0 = cl_bench_now(), t = 0;
      do {
        if (wide) fma_run512(chunk);
        else fma_run256(chunk);
        n += chunk;
        t = cl_bench_now() - t0;
      } while (t < 0.5);
      rate += 2.0 * lanes * 12.0 * n / t * 1e-9;
    }
    if (r > 0 && rate > best) best = rate;
  }
  return best;
#else
  (void)reps;
  if (isa) *isa = "none";
  return 0;
#endif
}

/* ---------------- FLOPs and sizes ---------------- */

static double tower_flops(int layers, int W, int M, double L) {
  /* per layer: qkv 2L*3W*W, out 2L*W*W, fc 2L*W*M, proj 2L*M*W; scores and p v 4 L^2 W */
  return layers * (2.0 * L * (4.0 * W * W + 2.0 * W * M) + 4.0 * L * L * W);
}

double cl_bench_image_flops(const cl_clip_config *c) {
  const cl_clip_vision_cfg *v = &c->vision;
  const int g = v->image_size / v->patch_size, S = 1 + g * g, M = (int)(v->width * v->mlp_ratio);
  return tower_flops(v->layers, v->width, M, S) + 2.0 * g * g * v->width * 3.0 * v->patch_size * v->patch_size +
         2.0 * v->width * c->embed_dim;
}

double cl_bench_text_flops(const cl_clip_config *c, int len) {
  const cl_clip_text_cfg *t = &c->text;
  const int M = (int)(t->width * t->mlp_ratio);
  return tower_flops(t->layers, t->width, M, len) + 2.0 * t->width * c->embed_dim;
}

int64_t cl_bench_param_count(const cl_clip_config *c) {
  const cl_clip_vision_cfg *v = &c->vision;
  const cl_clip_text_cfg *t = &c->text;
  const int64_t Wv = v->width, Mv = (int64_t)(v->width * v->mlp_ratio), P = v->patch_size;
  const int64_t g = v->image_size / P, Wt = t->width, Mt = (int64_t)(t->width * t->mlp_ratio), E = c->embed_dim;
#define BLOCK(W, M) (4 * (W) + 3 * (W) * (W) + 3 * (W) + (W) * (W) + (W) + 2 * (W) * (M) + (M) + (W))
  int64_t vis = Wv * 3 * P * P + Wv + (1 + g * g) * Wv + 4 * Wv + v->layers * BLOCK(Wv, Mv) + Wv * E;
  int64_t txt = (int64_t)t->vocab_size * Wt + (int64_t)t->context_length * Wt + t->layers * BLOCK(Wt, Mt) + 2 * Wt +
                Wt * E;
#undef BLOCK
  return vis + txt + 1;
}

int64_t cl_bench_image_act_floats(const cl_clip_config *c, int n) {
  const cl_clip_vision_cfg *v = &c->vision;
  const int64_t g = v->image_size / v->patch_size, S = 1 + g * g, W = v->width, M = (int64_t)(W * v->mlp_ratio);
  const int64_t T = n * S, big = M > 3 * W ? M : 3 * W, dh = v->head_width;
  const int64_t arena = 2 * T * W + T * big + n * W + n * (int64_t)c->embed_dim;
  const int64_t im2col = T * 3 * v->patch_size * v->patch_size;
  const int64_t attn = (S * dh + S * S) * omp_get_max_threads();
  const int64_t pixels = (int64_t)n * 3 * v->image_size * v->image_size;
  return arena + (im2col > attn ? im2col : attn) + pixels;
}

/* ---------------- profiling backend ---------------- */

enum { P_LINEAR, P_MATMUL, P_LAYERNORM, P_ACTIVATE, P_ADD, P_GATHER, P_ATTENTION, P_PATCH, P_NOPS };
static const char *const prof_names[P_NOPS] = {"linear", "matmul", "layernorm", "activate",
                                               "add",    "gather", "attention", "patch_embed"};
#define PROF_SLOTS 64

typedef struct prof_slot {
  int op, k, n, act, acc; /* linear: the GEMM's shape key; other ops: op only */
  double secs, flops;
  int64_t calls, rows;
} prof_slot;

typedef struct prof {
  cl_backend be;
  cl_backend *in;
  prof_slot s[PROF_SLOTS];
  int ns;
} prof;

static prof_slot *slot(prof *p, int op, int k, int n, int act, int acc) {
  for (int i = 0; i < p->ns; i++) {
    prof_slot *s = &p->s[i];
    if (s->op == op && s->k == k && s->n == n && s->act == act && s->acc == acc) return s;
  }
  if (p->ns == PROF_SLOTS) return &p->s[PROF_SLOTS - 1];
  prof_slot *s = &p->s[p->ns++];
  memset(s, 0, sizeof *s);
  s->op = op, s->k = k, s->n = n, s->act = act, s->acc = acc;
  return s;
}

static void rec(prof *p, int op, int k, int n, int act, int acc, double t0, double flops, int64_t rows) {
  prof_slot *s = slot(p, op, k, n, act, acc);
  s->secs += cl_bench_now() - t0;
  s->flops += flops;
  s->calls++;
  s->rows += rows;
}

#define PIN(be) (((prof *)(be)->impl)->in)

static int p_alloc(cl_backend *be, size_t nb, void **out, cl_error *e) { return PIN(be)->alloc(PIN(be), nb, out, e); }
static void p_free(cl_backend *be, void *x) { PIN(be)->free(PIN(be), x); }
static int p_upload(cl_backend *be, void *d, const void *s, size_t nb, cl_error *e) {
  return PIN(be)->upload(PIN(be), d, s, nb, e);
}
static int p_download(cl_backend *be, void *d, const void *s, size_t nb, cl_error *e) {
  return PIN(be)->download(PIN(be), d, s, nb, e);
}
static int p_sync(cl_backend *be, cl_error *e) { return PIN(be)->sync(PIN(be), e); }
static void p_destroy(cl_backend *be) {
  prof *p = be->impl;
  cl_backend_destroy(p->in);
  free(p);
}

/* Device backends run asynchronously: sync after each call so the time is the call's. */
static int settle(prof *p, int rc, cl_error *e) {
  if (rc == CL_OK && !p->in->host_memory) rc = p->in->sync(p->in, e);
  return rc;
}

static int p_linear(cl_backend *be, float *y, const float *x, const float *w, const float *b, int m, int k, int n,
                    cl_act act, int acc, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now();
  int rc = settle(p, p->in->linear(p->in, y, x, w, b, m, k, n, act, acc, e), e);
  rec(p, P_LINEAR, k, n, (int)act, acc, t, 2.0 * m * k * n, m);
  return rc;
}

static int p_matmul(cl_backend *be, float *y, const float *x, const float *q, int m, int k, int n, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now();
  int rc = settle(p, p->in->matmul(p->in, y, x, q, m, k, n, e), e);
  rec(p, P_MATMUL, k, n, 0, 0, t, 2.0 * m * k * n, m);
  return rc;
}

static int p_layernorm(cl_backend *be, float *y, const float *x, const float *g, const float *b, int m, int n,
                       float eps, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now();
  int rc = settle(p, p->in->layernorm(p->in, y, x, g, b, m, n, eps, e), e);
  rec(p, P_LAYERNORM, 0, n, 0, 0, t, 0, m);
  return rc;
}

static int p_activate(cl_backend *be, float *x, size_t n, cl_act act, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now();
  int rc = settle(p, p->in->activate(p->in, x, n, act, e), e);
  rec(p, P_ACTIVATE, 0, 0, (int)act, 0, t, 0, (int64_t)n);
  return rc;
}

static int p_add(cl_backend *be, float *y, const float *x, size_t n, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now();
  int rc = settle(p, p->in->add(p->in, y, x, n, e), e);
  rec(p, P_ADD, 0, 0, 0, 0, t, 0, (int64_t)n);
  return rc;
}

static int p_gather(cl_backend *be, float *y, const float *table, int rows, const int32_t *idx, int n, int width,
                    int acc, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now();
  int rc = settle(p, p->in->gather_rows(p->in, y, table, rows, idx, n, width, acc, e), e);
  rec(p, P_GATHER, 0, width, 0, acc, t, 0, n);
  return rc;
}

static int p_attention(cl_backend *be, float *out, const float *qkv, const int32_t *off, int nseq, int width,
                       int heads, int causal, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now(), fl = 0;
  for (int s = 0; s < nseq; s++) {
    double L = off[s + 1] - off[s];
    fl += 4.0 * L * L * width;
  }
  int rc = settle(p, p->in->attention(p->in, out, qkv, off, nseq, width, heads, causal, e), e);
  rec(p, P_ATTENTION, 0, width, 0, causal, t, fl, nseq > 0 ? off[nseq] - off[0] : 0);
  return rc;
}

static int p_patch(cl_backend *be, float *x, const float *px, const float *w, const float *cls, const float *pos,
                   int n, int ch, int image, int patch, int width, cl_error *e) {
  prof *p = be->impl;
  double t = cl_bench_now();
  int rc = settle(p, p->in->patch_embed(p->in, x, px, w, cls, pos, n, ch, image, patch, width, e), e);
  double g = image / patch;
  rec(p, P_PATCH, 0, width, 0, 0, t, 2.0 * n * g * g * width * ch * patch * patch, (int64_t)(n * g * g));
  return rc;
}

int cl_bench_prof_wrap(cl_backend *inner, cl_backend **out, cl_error *e) {
  prof *p = calloc(1, sizeof *p);
  if (!p) return cl_err(e, CL_ENOMEM, "out of memory");
  p->in = inner;
  p->be = *inner;
  p->be.impl = p;
  p->be.alloc = p_alloc;
  p->be.free = p_free;
  p->be.upload = p_upload;
  p->be.download = p_download;
  p->be.sync = p_sync;
  p->be.destroy = p_destroy;
  p->be.linear = p_linear;
  p->be.matmul = p_matmul;
  p->be.layernorm = p_layernorm;
  p->be.activate = p_activate;
  p->be.add = p_add;
  p->be.gather_rows = p_gather;
  p->be.attention = p_attention;
  p->be.patch_embed = p_patch;
  *out = &p->be;
  return CL_OK;
}

void cl_bench_prof_reset(cl_backend *be) { ((prof *)be->impl)->ns = 0; }

static int by_secs(const void *a, const void *b) {
  double x = ((const prof_slot *)a)->secs, y = ((const prof_slot *)b)->secs;
  return x < y ? 1 : x > y ? -1 : 0;
}

void cl_bench_prof_print(cl_backend *be, FILE *f, const char *title) {
  prof *p = be->impl;
  prof_slot s[PROF_SLOTS];
  memcpy(s, p->s, sizeof s);
  qsort(s, (size_t)p->ns, sizeof *s, by_secs);
  double total = 0;
  for (int i = 0; i < p->ns; i++) total += s[i].secs;
  fprintf(f, "profile: %s: %.3f s in backend calls\n", title, total);
  static const char *const acts[] = {"", "+gelu", "+quickgelu"};
  for (int i = 0; i < p->ns; i++) {
    char what[96];
    if (s[i].op == P_LINEAR)
      snprintf(what, sizeof what, "linear k=%d n=%d%s%s", s[i].k, s[i].n, acts[s[i].act % 3], s[i].acc ? " +=" : "");
    else if (s[i].op == P_ATTENTION)
      snprintf(what, sizeof what, "attention%s", s[i].acc ? " (causal)" : "");
    else
      snprintf(what, sizeof what, "%s", prof_names[s[i].op]);
    fprintf(f, "  %-36s %8.3f s %5.1f%% %7lld calls", what, s[i].secs, total > 0 ? 100 * s[i].secs / total : 0,
            (long long)s[i].calls);
    if (s[i].flops > 0 && s[i].secs > 0) fprintf(f, " %7.1f GFLOP/s", s[i].flops / s[i].secs * 1e-9);
    fputc('\n', f);
  }
}

/* ---------------- prompts ---------------- */

/* Built by the Lua library (protocols/common.lua's manifest_prompts), the one place prompts
 * are made, so the benchmark embeds exactly what zero-shot embeds. */
int cl_bench_rare_prompts(int nclasses, char ***texts, int *n, int *classes_used, cl_error *e) {
  *texts = NULL, *n = 0;
  cl_lua *lua = NULL;
  int rc = cl_lua_new(&lua, NULL, NULL, e);
  if (rc) return rc;
  lua_State *L = cl_lua_state(lua);
  char path[4096];
  lua_getglobal(L, "require");
  lua_pushstring(L, "clade.protocols.common");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    lua_getfield(L, -1, "manifest_prompts");
    lua_pushstring(L, cl_resource_path(path, sizeof path, "lua/clade/suites/rare_species/metadata.csv"));
    lua_pushstring(L, "taxonomic_common");
    lua_pushstring(L, "bioclip81");
    lua_pushinteger(L, nclasses);
    if (lua_pcall(L, 4, 2, 0) == LUA_OK) {
      lua_Integer total = luaL_len(L, -2);
      size_t bytes = 0;
      for (lua_Integer i = 1; i <= total; i++) {
        lua_geti(L, -2, i);
        size_t l = 0;
        lua_tolstring(L, -1, &l);
        bytes += l + 1;
        lua_pop(L, 1);
      }
      char **out = cl_xmalloc((size_t)(total > 0 ? total : 1) * sizeof(char *) + bytes);
      char *w = (char *)(out + total);
      for (lua_Integer i = 1; i <= total; i++) {
        lua_geti(L, -2, i);
        size_t l = 0;
        const char *p = lua_tolstring(L, -1, &l);
        memcpy(w, p ? p : "", l + 1);
        out[i - 1] = w, w += l + 1;
        lua_pop(L, 1);
      }
      *texts = out, *n = (int)total;
      if (classes_used) *classes_used = (int)lua_tointeger(L, -1);
    } else {
      rc = cl_err(e, CL_ELUA, "bench prompts: %s", lua_tostring(L, -1));
    }
  } else {
    rc = cl_err(e, CL_ELUA, "bench prompts: %s", lua_tostring(L, -1));
  }
  cl_lua_free(lua);
  return rc;
}

/* ---------------- generated JPEGs ---------------- */

typedef struct rng {
  uint64_t s;
} rng;
static uint64_t rnext(rng *r) {
  uint64_t x = (r->s += 0x9e3779b97f4a7c15ull);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
static double unif(rng *r) { return (double)(rnext(r) >> 11) * 0x1.0p-53; }
static double gauss(rng *r) {
  double u = unif(r), v = unif(r);
  return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}
static unsigned char u8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (unsigned char)(v + 0.5); }

/* Value noise: a grid of random values every `cell` pixels, bilinearly interpolated. */
typedef struct vnoise {
  int cell, gw, gh;
  float *v;
} vnoise;

static void vnoise_init(vnoise *n, rng *r, int w, int h, int cell) {
  n->cell = cell, n->gw = w / cell + 2, n->gh = h / cell + 2;
  n->v = cl_xmalloc((size_t)n->gw * n->gh * sizeof(float));
  for (int i = 0; i < n->gw * n->gh; i++) n->v[i] = (float)(2 * unif(r) - 1);
}

static float vnoise_at(const vnoise *n, int x, int y) {
  const int gx = x / n->cell, gy = y / n->cell;
  const float fx = (float)(x % n->cell) / n->cell, fy = (float)(y % n->cell) / n->cell;
  const float *row = n->v + (size_t)gy * n->gw + gx;
  float top = row[0] + (row[1] - row[0]) * fx, bot = row[n->gw] + (row[n->gw + 1] - row[n->gw]) * fx;
  return top + (bot - top) * fy;
}

/* A photo-like RGB image: a sky-to-ground gradient, low-frequency colour fields, multi-scale
 * texture (value noise from 3 to 96 pixels, like foliage or fur), a few soft-edged objects
 * with their own fine pattern, and sensor noise. JPEG sizes land near real photos' at q90. */
static void render_photo(rng *r, int w, int h, unsigned char *rgb) {
  double top[3], bot[3], f[4][5];
  for (int c = 0; c < 3; c++) top[c] = 90 + 140 * unif(r), bot[c] = 20 + 120 * unif(r);
  for (int i = 0; i < 4; i++) /* fx, fy, phase, amplitude, channel mix */
    f[i][0] = 0.5 + 3 * unif(r), f[i][1] = 0.5 + 3 * unif(r), f[i][2] = 2 * M_PI * unif(r),
    f[i][3] = 10 + 30 * unif(r), f[i][4] = unif(r);
  enum { NOBJ = 6, NOCT = 5 };
  static const int cells[NOCT] = {3, 7, 16, 40, 96};
  vnoise oct[NOCT], tint;
  double amp[NOCT];
  for (int o = 0; o < NOCT; o++) vnoise_init(&oct[o], r, w, h, cells[o]), amp[o] = (6 + 10 * unif(r)) * (o < 2 ? 1.0 : 1.6);
  vnoise_init(&tint, r, w, h, 64);
  double ox[NOBJ], oy[NOBJ], orad[NOBJ], oel[NOBJ], oca[NOBJ], osa[NOBJ], ocol[NOBJ][3], ofreq[NOBJ], oedge[NOBJ];
  for (int k = 0; k < NOBJ; k++) {
    ox[k] = unif(r), oy[k] = 0.2 + 0.8 * unif(r), orad[k] = 0.05 + 0.25 * unif(r), oel[k] = 0.3 + 0.7 * unif(r);
    const double ang = M_PI * unif(r);
    oca[k] = cos(ang), osa[k] = sin(ang), ofreq[k] = 20 + 120 * unif(r), oedge[k] = 0.01 + 0.08 * unif(r);
    for (int c = 0; c < 3; c++) ocol[k][c] = 30 + 200 * unif(r);
  }
  const double sigma = 2 + 4 * unif(r);
  const double S = w < h ? w : h;
  float gtab[4096]; /* sensor noise: normal draws, picked by 12 random bits at a time */
  for (int i = 0; i < 4096; i++) gtab[i] = (float)(sigma * gauss(r));
  uint64_t bits = 0;
  int nbits = 0;
  /* colour fields sin(2 pi (f0 x/w + f1 y/h) + phase), separable: per-column and per-row tables */
  float *sa = cl_xmalloc((size_t)4 * w * 2 * sizeof(float)), *ca = sa + 4 * w;
  for (int i = 0; i < 4; i++)
    for (int x = 0; x < w; x++) {
      const double A = 2 * M_PI * f[i][0] * x / w + f[i][2];
      sa[i * w + x] = (float)sin(A), ca[i * w + x] = (float)cos(A);
    }
  for (int y = 0; y < h; y++) {
    const double fy = (double)y / h;
    double sb[4], cb[4];
    for (int i = 0; i < 4; i++) sb[i] = sin(2 * M_PI * f[i][1] * fy), cb[i] = cos(2 * M_PI * f[i][1] * fy);
    for (int x = 0; x < w; x++) {
      double col[3];
      for (int c = 0; c < 3; c++) col[c] = top[c] + (bot[c] - top[c]) * fy;
      for (int i = 0; i < 4; i++) {
        double v = f[i][3] * (sa[i * w + x] * cb[i] + ca[i * w + x] * sb[i]);
        col[0] += v * f[i][4], col[1] += v * (1 - f[i][4]) * 0.8, col[2] += v * 0.5;
      }
      double tex = 0;
      for (int o = 0; o < NOCT; o++) tex += amp[o] * vnoise_at(&oct[o], x, y);
      const double tn = vnoise_at(&tint, x, y);
      col[0] += tex * (1 + 0.3 * tn), col[1] += tex, col[2] += tex * (1 - 0.3 * tn);
      for (int k = 0; k < NOBJ; k++) {
        double dx = (x - ox[k] * w) / S, dy = (y - oy[k] * h) / S;
        double u = (oca[k] * dx + osa[k] * dy) / orad[k], v = (-osa[k] * dx + oca[k] * dy) / (orad[k] * oel[k]);
        double d2 = u * u + v * v, lim = 1 + oedge[k] * 20;
        if (d2 > lim * lim) continue;
        double d = sqrt(d2), a = d < 1 ? 1 : exp(-(d - 1) / oedge[k]);
        double t = 0.75 + 0.25 * sin(ofreq[k] * u) * cos(ofreq[k] * 0.7 * v) - 0.3 * d2;
        for (int c = 0; c < 3; c++) col[c] += (ocol[k][c] * t + 0.5 * tex - col[c]) * a;
      }
      for (int c = 0; c < 3; c++) {
        if (nbits < 12) bits = rnext(r), nbits = 64;
        rgb[((size_t)y * w + x) * 3 + c] = u8(col[c] + gtab[bits & 4095]);
        bits >>= 12, nbits -= 12;
      }
    }
  }
  for (int o = 0; o < NOCT; o++) free(oct[o].v);
  free(tint.v);
  free(sa);
}

static const int jpeg_sizes[][2] = {{500, 375}, {640, 480}, {800, 600}, {1024, 768}, {375, 500},
                                    {768, 1024}, {720, 540}, {960, 720}};

int cl_bench_make_jpegs(const char *dir, int n, uint64_t seed, char ***paths, int64_t *bytes, cl_error *e) {
  *paths = NULL;
  if (bytes) *bytes = 0;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) return cl_err(e, CL_EIO, "%s: cannot create: %s", dir, strerror(errno));
  size_t plen = strlen(dir) + 32;
  char **out = cl_xmalloc((size_t)(n > 0 ? n : 1) * (sizeof(char *) + plen));
  char *w = (char *)(out + (n > 0 ? n : 1));
  for (int i = 0; i < n; i++, w += plen) {
    out[i] = w;
    snprintf(w, plen, "%s/bench_%04d.jpg", dir, i);
  }
  int failed = 0;
  int64_t total = 0;
  cl_error first = {0};
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : total)
  for (int i = 0; i < n; i++) {
    cl_error le = {0};
    int rc = CL_OK;
    const int *sz = jpeg_sizes[i % (int)(sizeof jpeg_sizes / sizeof *jpeg_sizes)];
    const int W = sz[0], H = sz[1], samp = (i / 2) % 2 ? TJSAMP_444 : TJSAMP_420;
    rng r = {seed * 0x9e3779b97f4a7c15ull + (uint64_t)i * 0xd1b54a32d192ed03ull + 1};
    unsigned char *px = cl_xmalloc((size_t)W * H * 3), *jpg = NULL;
    render_photo(&r, W, H, px);
    unsigned long len = 0;
    tjhandle tj = tjInitCompress();
    if (!tj) rc = cl_err(&le, CL_ENOMEM, "cannot start the JPEG encoder");
    else if (tjCompress2(tj, px, W, 0, H, TJPF_RGB, &jpg, &len, samp, 90, TJFLAG_ACCURATEDCT) != 0)
      rc = cl_err(&le, CL_EFORMAT, "%s: JPEG encoding failed: %s", out[i], tjGetErrorStr2(tj));
    else if ((rc = cl_write_file(out[i], jpg, len, &le)) == CL_OK)
      total += (int64_t)len;
    if (jpg) tjFree(jpg);
    if (tj) tjDestroy(tj);
    free(px);
    if (rc) {
#pragma omp critical
      if (!failed++) first = le;
    }
  }
  if (failed) {
    free(out);
    if (e) *e = first;
    return first.code ? first.code : CL_EIO;
  }
  if (bytes) *bytes = total;
  *paths = out;
  return CL_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cl_bench_list_images(const char *dir, char ***paths, int *n, cl_error *e) {
  *paths = NULL, *n = 0;
  DIR *d = opendir(dir);
  if (!d) return cl_err(e, CL_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
  int cap = 64, cnt = 0;
  char **names = cl_xmalloc((size_t)cap * sizeof(char *));
  struct dirent *de;
  size_t bytes = 0;
  while ((de = readdir(d))) {
    const char *dot = strrchr(de->d_name, '.');
    if (!dot || (strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg") && strcasecmp(dot, ".png"))) continue;
    if (cnt == cap) names = realloc(names, (size_t)(cap *= 2) * sizeof(char *));
    names[cnt++] = cl_strdup(de->d_name);
    bytes += strlen(dir) + strlen(de->d_name) + 2;
  }
  closedir(d);
  qsort(names, (size_t)cnt, sizeof *names, cmp_str);
  char **out = cl_xmalloc((size_t)(cnt ? cnt : 1) * sizeof(char *) + bytes + 1);
  char *w = (char *)(out + (cnt ? cnt : 1));
  for (int i = 0; i < cnt; i++) {
    out[i] = w;
    w += sprintf(w, "%s/%s", dir, names[i]) + 1;
    free(names[i]);
  }
  free(names);
  if (!cnt) {
    free(out);
    return cl_err(e, CL_EIO, "%s: no .jpg, .jpeg or .png files", dir);
  }
  *paths = out, *n = cnt;
  return CL_OK;
}

/* ---------------- memory, machine ---------------- */

double cl_bench_peak_rss_mb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

double cl_bench_rss_mb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (!f) return 0;
  if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
  fclose(f);
  return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

int cl_bench_reset_peak_rss(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY);
  if (fd < 0) return -1;
  int ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok ? 0 : -1;
}

