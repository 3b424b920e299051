/* Every registered backend (tensor/cl_backends.h) against open_clip and the CPU backend, the
 * reference: op by op on random inputs (rel err <= 1e-5 in fp32; not for the reference
 * itself), then the tiny open_clip model against open_clip's own outputs (rel err < 1e-4 per
 * vector in fp32, as test_clip_tiny.c checks the CPU) and against the CPU backend; then each
 * other precision the backend offers here, with its errors printed: TF32 (<= 1e-2 per
 * vector), bf16 and fp16 GEMMs (ops <= 1e-2, model <= 1e-2 per vector). Extras a backend has
 * alone run where it is registered (CUDA: cuDNN's fused attention, CLADE_CUDNN_SDPA=1 on a
 * second backend, <= 2e-2 per op, or its fallback). A backend whose probe fails here (CUDA
 * with no GPU) is named with why, and the test then reports a skip (77): never a silent
 * pass. */
#include <stdint.h>

#include "cl_test.h"
#include "cl_test_tensor.h"
#include "io/cl_safetensors.h"
#include "model/cl_clip.h"
#include "tensor/cl_backends.h"
#ifdef CLADE_HAVE_CUDA_BACKEND
#include "cuda/cl_cuda.h"
#endif

#define TOL_OP 1e-5
#define TOL_REF 1e-4
#define TOL_TF32 1e-2  /* TF32 GEMM inputs: 10-bit mantissas */
#define TOL_LOWP 1e-2  /* bf16/fp16 GEMM inputs, fp32 accumulation, per op and per embedding */
#define TOL_SDPA 2e-2  /* cuDNN attention: bf16 q, k, v and probabilities */

static cl_backend *cpu, *tb;     /* the reference (the CPU backend, fp32) and the backend under test */
static const cl_backend_desc *tbd; /* its registry entry */
static cl_error err;

/* --- random inputs, and buffers on both backends --- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 40) * (2.0 / (1 << 24)) - 1.0);
}

static float *rand_host(size_t n, float scale, float offset) {
  float *p = cl_xmalloc((n ? n : 1) * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = offset + scale * frand();
  return p;
}

/* The same n floats on the CPU backend (a host copy) and on the GPU. */
typedef struct pair {
  float *c, *g;
  size_t n;
} pair;

static pair both(const float *h, size_t n) {
  pair p = {NULL, NULL, n};
  CHECK_OK(cpu->alloc(cpu, n * sizeof(float), (void **)&p.c, &err), err);
  CHECK_OK(tb->alloc(tb, n * sizeof(float), (void **)&p.g, &err), err);
  if (p.c) memcpy(p.c, h, n * sizeof(float));
  if (p.g) CHECK_OK(tb->upload(tb, p.g, h, n * sizeof(float), &err), err);
  return p;
}

static pair rand_both(size_t n, float scale, float offset) {
  float *h = rand_host(n, scale, offset);
  pair p = both(h, n);
  free(h);
  return p;
}

static void drop(pair *p) {
  cpu->free(cpu, p->c);
  tb->free(tb, p->g);
  p->c = p->g = NULL;
}

/* ||tb - cpu|| / ||cpu|| of a pair after an op. */
static double pair_err(const pair *p) {
  float *h = cl_xmalloc((p->n ? p->n : 1) * sizeof *h);
  double r = 1e30;
  if (tb->download(tb, h, p->g, p->n * sizeof(float), &err) == CL_OK)
    r = cl_test_relerr(h, p->c, (long)p->n);
  else
    fprintf(stderr, "download: %s\n", err.msg);
  free(h);
  return r;
}

#define CHECK_CLOSE(p, tol, ...)                                                           \
  do {                                                                                     \
    double _r = pair_err(&(p));                                                            \
    if (!(_r <= (tol))) {                                                                  \
      fprintf(stderr, "rel err %.3g > %.3g in ", _r, (double)(tol));                      \
      fprintf(stderr, __VA_ARGS__);                                                        \
      fputc('\n', stderr);                                                                 \
    }                                                                                      \
    CHECK(_r <= (tol));                                                                    \
  } while (0)

/* --- ops --- */

static const char *act_name[] = {"none", "gelu", "quickgelu"};

static void test_linear(void) {
  static const int dims[][3] = {{1, 64, 64}, {3, 5, 7}, {37, 96, 200}, {197, 768, 2304}, {50, 3072, 768}};
  for (size_t s = 0; s < sizeof dims / sizeof *dims; s++) {
    const int m = dims[s][0], k = dims[s][1], n = dims[s][2];
    pair x = rand_both((size_t)m * k, 1, 0), w = rand_both((size_t)n * k, 0.05f, 0), b = rand_both(n, 0.5f, 0);
    for (int act = 0; act < 3; act++)
      for (int hasb = 0; hasb < 2; hasb++)
        for (int acc = 0; acc < 2; acc++) {
          pair y = rand_both((size_t)m * n, 1, 0);
          CHECK_OK(cpu->linear(cpu, y.c, x.c, w.c, hasb ? b.c : NULL, m, k, n, act, acc, &err), err);
          CHECK_OK(tb->linear(tb, y.g, x.g, w.g, hasb ? b.g : NULL, m, k, n, act, acc, &err), err);
          CHECK_CLOSE(y, TOL_OP, "linear m=%d k=%d n=%d act=%s bias=%d accumulate=%d", m, k, n,
                      act_name[act], hasb, acc);
          drop(&y);
        }
    drop(&x), drop(&w), drop(&b);
  }
  CHECK(tb->linear(tb, NULL, NULL, NULL, NULL, 0, 4, 4, CL_ACT_NONE, 0, &err) == CL_OK);
  CHECK(tb->linear(tb, NULL, NULL, NULL, NULL, 2, 0, 4, CL_ACT_NONE, 0, &err) == CL_EINVAL);
  CHECK(tb->linear(tb, NULL, NULL, NULL, NULL, 2, 4, 4, (cl_act)7, 0, &err) == CL_EINVAL);
}

/* bf16/fp16 linear() on prepared weights against the fp32 CPU op; weights never prepared, and
 * shapes cuBLASLt has no algorithm for, run the fp32 sgemm. */
static void test_linear_lowp(cl_precision prec) {
  static const int dims[][3] = {{1, 64, 64}, {3, 5, 7}, {3, 8, 24}, {37, 96, 200}, {197, 768, 2304}, {50, 3072, 768}};
  const char *pn = cl_precision_name(prec);
  CHECK_OK(tb->set_precision(tb, prec, &err), err);
  double worst = 0;
  for (size_t s = 0; s < sizeof dims / sizeof *dims; s++) {
    const int m = dims[s][0], k = dims[s][1], n = dims[s][2];
    pair x = rand_both((size_t)m * k, 1, 0), w = rand_both((size_t)n * k, 0.05f, 0);
    pair b = rand_both((size_t)n + 1, 0.5f, 0); /* b.g + 1: a bias the epilogue cannot take */
    pair w2 = rand_both((size_t)n * k, 0.05f, 0);
    CHECK_OK(tb->prepare_linear(tb, w.g, n, k, &err), err);
    CHECK(tb->set_precision(tb, CL_PREC_FP32, &err) == CL_EINVAL && strstr(err.msg, "prepared"));
    for (int act = 0; act < 3; act++)
      for (int hasb = 0; hasb < 3; hasb++)
        for (int acc = 0; acc < 2; acc++) {
          pair y = rand_both((size_t)m * n, 1, 0);
          const int off = hasb == 2;
          CHECK_OK(cpu->linear(cpu, y.c, x.c, w.c, hasb ? b.c + off : NULL, m, k, n, act, acc, &err), err);
          CHECK_OK(tb->linear(tb, y.g, x.g, w.g, hasb ? b.g + off : NULL, m, k, n, act, acc, &err), err);
          double r = pair_err(&y);
          if (r > worst) worst = r;
          CHECK_CLOSE(y, TOL_LOWP, "%s linear m=%d k=%d n=%d act=%s bias=%d accumulate=%d", pn, m, k, n,
                      act_name[act], hasb, acc);
          drop(&y);
        }
    pair y = rand_both((size_t)m * n, 1, 0);
    CHECK_OK(cpu->linear(cpu, y.c, x.c, w2.c, b.c, m, k, n, CL_ACT_GELU, 0, &err), err);
    CHECK_OK(tb->linear(tb, y.g, x.g, w2.g, b.g, m, k, n, CL_ACT_GELU, 0, &err), err);
    CHECK_CLOSE(y, TOL_OP, "%s linear with a weight never prepared m=%d k=%d n=%d", pn, m, k, n);
    drop(&y), drop(&x), drop(&w), drop(&b), drop(&w2);
  }
  printf("%s linear vs fp32 CPU: max rel err %.3g\n", pn, worst);
  CHECK(tb->prepare_linear(tb, NULL, 4, 4, &err) == CL_EINVAL);
  /* freeing the weights forgot them: the precision may change again */
  CHECK_OK(tb->set_precision(tb, CL_PREC_FP32, &err), err);
  CHECK(tb->set_precision(tb, (cl_precision)9, &err) == CL_EUNSUP);
}

static void test_matmul(void) {
  static const int dims[][3] = {{1, 64, 32}, {7, 3, 5}, {50, 768, 512}, {300, 64, 33}};
  for (size_t s = 0; s < sizeof dims / sizeof *dims; s++) {
    const int m = dims[s][0], k = dims[s][1], n = dims[s][2];
    pair x = rand_both((size_t)m * k, 1, 0), p = rand_both((size_t)k * n, 0.1f, 0), y = rand_both((size_t)m * n, 1, 0);
    CHECK_OK(cpu->matmul(cpu, y.c, x.c, p.c, m, k, n, &err), err);
    CHECK_OK(tb->matmul(tb, y.g, x.g, p.g, m, k, n, &err), err);
    CHECK_CLOSE(y, TOL_OP, "matmul m=%d k=%d n=%d", m, k, n);
    drop(&x), drop(&p), drop(&y);
  }
}

static void test_layernorm(void) {
  static const int dims[][2] = {{1, 1}, {5, 33}, {197, 768}, {3, 1000}, {2, 2048}, {4, 64}};
  for (size_t s = 0; s < sizeof dims / sizeof *dims; s++) {
    const int m = dims[s][0], n = dims[s][1];
    pair g = rand_both(n, 0.5f, 1), b = rand_both(n, 0.5f, 0);
    for (int inplace = 0; inplace < 2; inplace++) {
      pair x = rand_both((size_t)m * n, 2, 3), y = rand_both((size_t)m * n, 1, 0);
      pair *dst = inplace ? &x : &y;
      CHECK_OK(cpu->layernorm(cpu, dst->c, x.c, g.c, b.c, m, n, 1e-5f, &err), err);
      CHECK_OK(tb->layernorm(tb, dst->g, x.g, g.g, b.g, m, n, 1e-5f, &err), err);
      CHECK_CLOSE(*dst, TOL_OP, "layernorm m=%d n=%d in place=%d", m, n, inplace);
      drop(&x), drop(&y);
    }
    drop(&g), drop(&b);
  }
}

static void test_elementwise(void) {
  const size_t sizes[] = {1, 255, 12345, 1000003, 20000000};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    const size_t n = sizes[s];
    for (int act = 0; act < 3; act++) {
      pair x = rand_both(n, 4, 0);
      CHECK_OK(cpu->activate(cpu, x.c, n, act, &err), err);
      CHECK_OK(tb->activate(tb, x.g, n, act, &err), err);
      CHECK_CLOSE(x, TOL_OP, "activate n=%zu act=%s", n, act_name[act]);
      drop(&x);
    }
    pair x = rand_both(n, 1, 0), y = rand_both(n, 1, 0);
    CHECK_OK(cpu->add(cpu, y.c, x.c, n, &err), err);
    CHECK_OK(tb->add(tb, y.g, x.g, n, &err), err);
    CHECK_CLOSE(y, 0, "add n=%zu", n);
    drop(&x), drop(&y);
  }
  CHECK(tb->activate(tb, NULL, 0, CL_ACT_GELU, &err) == CL_OK);
  CHECK(tb->add(tb, NULL, NULL, 0, &err) == CL_OK);
  CHECK(tb->activate(tb, NULL, 4, (cl_act)9, &err) == CL_EINVAL);
}

static void test_gather(void) {
  const int rows = 100, widths[] = {48, 1, 300}, counts[] = {1, 300};
  for (int wi = 0; wi < 3; wi++)
    for (int ni = 0; ni < 2; ni++) {
      const int wd = widths[wi], n = counts[ni];
      int32_t *idx = cl_xmalloc((size_t)n * sizeof *idx);
      for (int i = 0; i < n; i++) idx[i] = (int32_t)((frand() + 1) * 0.5f * rows) % rows;
      pair t = rand_both((size_t)rows * wd, 1, 0);
      for (int acc = 0; acc < 2; acc++) {
        pair y = rand_both((size_t)n * wd, 1, 0);
        CHECK_OK(cpu->gather_rows(cpu, y.c, t.c, rows, idx, n, wd, acc, &err), err);
        CHECK_OK(tb->gather_rows(tb, y.g, t.g, rows, idx, n, wd, acc, &err), err);
        CHECK_CLOSE(y, 0, "gather_rows n=%d width=%d accumulate=%d", n, wd, acc);
        drop(&y);
      }
      idx[n - 1] = rows;
      CHECK(tb->gather_rows(tb, t.g, t.g, rows, idx, n, wd, 0, &err) == CL_EINVAL && strstr(err.msg, "100"));
      idx[n - 1] = -1;
      CHECK(tb->gather_rows(tb, t.g, t.g, rows, idx, n, wd, 0, &err) == CL_EINVAL);
      drop(&t);
      free(idx);
    }
  CHECK(tb->gather_rows(tb, NULL, NULL, 4, NULL, 0, 8, 0, &err) == CL_OK);
}

/* One attention case: sequences of the given lengths packed from row `first`; the GPU runs it
 * `runs` times (a cuDNN plan's first run is its check, computed by the fp32 kernel). */
static void attention_case(const int *lens, int nseq, int first, int width, int heads, int causal, double tol,
                           int runs) {
  int32_t off[16];
  off[0] = first;
  for (int s = 0; s < nseq; s++) off[s + 1] = off[s] + lens[s];
  const size_t rows = (size_t)off[nseq];
  pair qkv = rand_both(rows * 3 * width, 1, 0);
  float *zero = calloc(rows * width, sizeof(float));
  pair out = both(zero, rows * width);
  free(zero);
  CHECK_OK(cpu->attention(cpu, out.c, qkv.c, off, nseq, width, heads, causal, &err), err);
  for (int r = 0; r < runs; r++)
    CHECK_OK(tb->attention(tb, out.g, qkv.g, off, nseq, width, heads, causal, &err), err);
  CHECK_CLOSE(out, tol, "attention (%s) nseq=%d first=%d len0=%d width=%d heads=%d causal=%d",
              cl_precision_name(tb->precision), nseq, first, lens[0], width, heads, causal);
  drop(&qkv), drop(&out);
}

static void test_attention(void) {
  static const struct {
    int nseq, lens[6], width, heads;
  } cases[] = {
      {6, {1, 5, 77, 16, 17, 33}, 64, 2},  /* the tiny model's head width 32 */
      {3, {197, 197, 3}, 768, 12},         /* ViT-B/16: dh 64 */
      {3, {3, 197, 197}, 768, 12},         /* same count, other offsets: no stale cache */
      {2, {50, 130}, 240, 3},              /* dh 80: lanes with 3 and 2 columns */
      {1, {40}, 256, 2},                   /* dh 128 */
      {3, {9, 1, 20}, 30, 2},              /* dh 15, odd */
      {1, {600}, 64, 1},                   /* long: many key tiles */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int causal = 0; causal < 2; causal++)
      for (int first = 0; first <= 3; first += 3)
        attention_case(cases[c].lens, cases[c].nseq, first, cases[c].width, cases[c].heads, causal, TOL_OP, 1);
  int32_t off[3] = {0, 4, 4};
  CHECK(tb->attention(tb, NULL, NULL, off, 2, 64, 2, 0, &err) == CL_EINVAL && strstr(err.msg, "length 0"));
  CHECK(tb->attention(tb, NULL, NULL, off, 1, 258, 2, 0, &err) == CL_EUNSUP && strstr(err.msg, "129"));
  CHECK(tb->attention(tb, NULL, NULL, off, 1, 64, 3, 0, &err) == CL_EINVAL);
  CHECK(tb->attention(tb, NULL, NULL, off, 0, 64, 2, 0, &err) == CL_OK);
}

static void test_patch_embed(void) {
  static const int cases[][5] = {/* n, channels, image, patch, width */
                                 {2, 3, 32, 8, 48}, {3, 3, 224, 16, 64}, {1, 1, 12, 4, 20}, {2, 3, 10, 4, 16}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const int n = cases[c][0], ch = cases[c][1], image = cases[c][2], patch = cases[c][3], width = cases[c][4];
    const int g = image / patch, seq = 1 + g * g;
    pair px = rand_both((size_t)n * ch * image * image, 1, 0);
    pair w = rand_both((size_t)width * ch * patch * patch, 0.1f, 0);
    pair cls = rand_both(width, 1, 0), pos = rand_both((size_t)seq * width, 1, 0);
    pair x = rand_both((size_t)n * seq * width, 1, 0);
    CHECK_OK(cpu->patch_embed(cpu, x.c, px.c, w.c, cls.c, pos.c, n, ch, image, patch, width, &err), err);
    CHECK_OK(tb->patch_embed(tb, x.g, px.g, w.g, cls.g, pos.g, n, ch, image, patch, width, &err), err);
    CHECK_CLOSE(x, TOL_OP, "patch_embed n=%d channels=%d image=%d patch=%d width=%d", n, ch, image, patch, width);
    drop(&px), drop(&w), drop(&cls), drop(&pos), drop(&x);
  }
  CHECK(tb->patch_embed(tb, NULL, NULL, NULL, NULL, NULL, 1, 3, 8, 16, 4, &err) == CL_EINVAL);
}

static void test_memory(void) {
  void *p = NULL;
  /* far more than any GPU has: refused as out of memory, and the backend still works */
  CHECK(tb->alloc(tb, (size_t)1 << 50, &p, &err) == CL_ENOMEM && p == NULL);
  CHECK_OK(tb->alloc(tb, 0, &p, &err), err);
  tb->free(tb, p);
  tb->free(tb, NULL);
  pair x = rand_both(1000, 1, 0), y = rand_both(1000, 1, 0);
  CHECK_OK(cpu->add(cpu, y.c, x.c, 1000, &err), err);
  CHECK_OK(tb->add(tb, y.g, x.g, 1000, &err), err);
  CHECK_CLOSE(y, 0, "add after a failed allocation");
  CHECK_OK(tb->sync(tb, &err), err);
  drop(&x), drop(&y);
}

/* --- the tiny model, mirroring test_clip_tiny.c --- */

/* The fixtures of the tiny model: weights, preprocessed pixels, open_clip's outputs for the
 * QuickGELU and the GELU variant. */
static cl_test_tiny tiny;
static const char *tiny_names[2] = {"QuickGELU", "GELU"}, *tiny_cfgs[2] = {"tiny_config.json", "tiny_gelu_config.json"};
enum { E = 32 }; /* the tiny model's embedding width */

static void test_tiny_model(void) {
  const int ni = tiny.ni, nt = tiny.nt;
  const float *pixels = tiny.pixels;
  const int32_t *ids = tiny.ids;
  float *img = cl_xmalloc((size_t)ni * E * 4), *txt = cl_xmalloc((size_t)nt * E * 4);
  float *img2 = cl_xmalloc((size_t)ni * E * 4), *txt2 = cl_xmalloc((size_t)nt * E * 4);
  float *cimg = cl_xmalloc((size_t)ni * E * 4), *ctxt = cl_xmalloc((size_t)nt * E * 4);
  for (int v = 0; v < 2; v++) {
    const char *name = tiny_names[v];
    cl_clip_config cfg;
    cl_clip *m = NULL, *mc = NULL;
    CHECK_OK(cl_clip_config_load(cl_test_fix(tiny_cfgs[v]), &cfg, &err), err);
    CHECK_OK(cl_clip_load(&cfg, &tiny.w, tb, &m, &err), err);
    CHECK_OK(cl_clip_load(&cfg, &tiny.w, cpu, &mc, &err), err);
    if (!m || !mc) {
      cl_clip_free(m), cl_clip_free(mc);
      continue;
    }
    CHECK_OK(cl_clip_encode_images(m, pixels, ni, img, &err), err);
    CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt, &err), err);
    CHECK_OK(cl_clip_encode_images(mc, pixels, ni, cimg, &err), err);
    CHECK_OK(cl_clip_encode_texts(mc, ids, nt, ctxt, &err), err);
    float *ri = cl_test_f32_of(cl_test_need(&tiny.outs[v], "image_embeds")), *rt = cl_test_f32_of(cl_test_need(&tiny.outs[v], "text_embeds"));
    double ei = cl_test_max_relerr(img, ri, ni, E), et = cl_test_max_relerr(txt, rt, nt, E);
    double ci = cl_test_max_relerr(img, cimg, ni, E), ct = cl_test_max_relerr(txt, ctxt, nt, E);
    printf("%-9s fp32 %s vs open_clip: image rel err %.3g, text %.3g; vs the CPU backend: %.3g, %.3g\n", name,
           tbd->name, ei, et, ci, ct);
    CHECK_MSG(ei < TOL_REF, "%s %s image embeddings: max rel err %g", name, tbd->name, ei);
    CHECK_MSG(et < TOL_REF, "%s %s text embeddings: max rel err %g", name, tbd->name, et);
    CHECK_MSG(ci < TOL_OP && ct < TOL_OP, "%s %s vs the CPU backend: %g, %g", name, tbd->name, ci, ct);

    /* real lengths vs the full 77 tokens */
    cl_clip_set_full_context(m, 1);
    CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt2, &err), err);
    double ef = cl_test_max_relerr(txt, txt2, nt, E);
    CHECK_MSG(ef < 1e-6, "real-length vs full-context texts: %g", ef);
    cl_clip_set_full_context(m, 0);

    /* chunks of one image / a few texts, and one by one, give the batch's results */
    cl_clip_set_max_tokens(m, 200);
    CHECK_OK(cl_clip_encode_images(m, pixels, ni, img2, &err), err);
    CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt2, &err), err);
    double hi = cl_test_max_relerr(img2, img, ni, E), ht = cl_test_max_relerr(txt2, txt, nt, E);
    CHECK_MSG(hi < 1e-6 && ht < 1e-6, "chunked vs batched: %g, %g", hi, ht);
    cl_clip_set_max_tokens(m, CL_CLIP_MAX_TOKENS);
    for (int i = 0; i < nt; i++) CHECK_OK(cl_clip_encode_texts(m, ids + i * 77, 1, txt2 + i * E, &err), err);
    CHECK(cl_test_max_relerr(txt2, txt, nt, E) < 1e-6);
    CHECK_OK(cl_clip_encode_images(m, pixels + 5 * 3 * 224 * 224, 1, img2, &err), err);
    CHECK(cl_test_max_relerr(img2, img + 5 * E, 1, E) < 1e-6);
    CHECK_OK(cl_clip_encode_images(m, pixels, 0, img2, &err), err);

    /* TF32 GEMMs where offered (the weights stay fp32, so the precision may change with the
     * model loaded): close to fp32 but not the same; back off, fp32 again exactly */
    if (tbd->offers(CL_PREC_TF32)) {
      CHECK_OK(tb->set_precision(tb, CL_PREC_TF32, &err), err);
      CHECK_OK(cl_clip_encode_images(m, pixels, ni, img2, &err), err);
      CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt2, &err), err);
      double tfi = cl_test_max_relerr(img2, ri, ni, E), tft = cl_test_max_relerr(txt2, rt, nt, E);
      printf("%-9s tf32 %s vs open_clip: image rel err %.3g, text %.3g\n", name, tbd->name, tfi, tft);
      CHECK_MSG(tfi <= TOL_TF32 && tft <= TOL_TF32, "%s TF32 embeddings: %g, %g", name, tfi, tft);
      CHECK_OK(tb->set_precision(tb, CL_PREC_FP32, &err), err);
      CHECK(tb->precision == CL_PREC_FP32);
      CHECK_OK(cl_clip_encode_images(m, pixels, ni, img2, &err), err);
      CHECK(cl_test_max_relerr(img2, img, ni, E) < 1e-6);
    }

    int32_t bad[77] = {49406, 320, 49408, 49407};
    CHECK(cl_clip_encode_texts(m, bad, 1, txt2, &err) == CL_EINVAL && strstr(err.msg, "49408"));
    free(ri), free(rt);
    cl_clip_free(m);
    cl_clip_free(mc);
  }
  free(img), free(txt), free(img2), free(txt2), free(cimg), free(ctxt);
}

/* The tiny model loaded on g in precision prec (g's weights prepared in it) against
 * open_clip's embeddings: images, texts at their real lengths, and texts at the full 77
 * tokens (one length: cuDNN's attention when g has it). Leaves g in fp32. */
static void tiny_lowp(cl_backend *g, cl_precision prec) {
  const int ni = tiny.ni, nt = tiny.nt;
  const char *pn = cl_precision_name(prec);
  float *img = cl_xmalloc((size_t)ni * E * 4), *txt = cl_xmalloc((size_t)nt * E * 4);
  float *txtf = cl_xmalloc((size_t)nt * E * 4);
  for (int v = 0; v < 2; v++) {
    cl_clip_config cfg;
    cl_clip *m = NULL;
    CHECK_OK(g->set_precision(g, prec, &err), err);
    CHECK_OK(cl_clip_config_load(cl_test_fix(tiny_cfgs[v]), &cfg, &err), err);
    CHECK_OK(cl_clip_load(&cfg, &tiny.w, g, &m, &err), err);
    if (!m) continue;
    /* twice: a new cuDNN attention shape is checked on its first run */
    for (int r = 0; r < 2; r++) {
      CHECK_OK(cl_clip_encode_images(m, tiny.pixels, ni, img, &err), err);
      CHECK_OK(cl_clip_encode_texts(m, tiny.ids, nt, txt, &err), err);
      cl_clip_set_full_context(m, 1);
      CHECK_OK(cl_clip_encode_texts(m, tiny.ids, nt, txtf, &err), err);
      cl_clip_set_full_context(m, 0);
    }
    float *ri = cl_test_f32_of(cl_test_need(&tiny.outs[v], "image_embeds")), *rt = cl_test_f32_of(cl_test_need(&tiny.outs[v], "text_embeds"));
    double ei = cl_test_max_relerr(img, ri, ni, E), et = cl_test_max_relerr(txt, rt, nt, E), ef = cl_test_max_relerr(txtf, rt, nt, E);
    printf("%-9s %s %s vs open_clip: image rel err %.3g, text %.3g, full-context text %.3g\n", tiny_names[v], pn,
           tbd->name, ei, et, ef);
    CHECK_MSG(ei <= TOL_LOWP && et <= TOL_LOWP && ef <= TOL_LOWP, "%s %s embeddings: %g, %g, %g", tiny_names[v], pn,
              ei, et, ef);
    /* the weights are prepared for this precision now */
    CHECK(g->set_precision(g, CL_PREC_FP32, &err) == CL_EINVAL);
#ifdef CLADE_HAVE_CUDA_BACKEND
    if (tbd == &cl_backend_cuda_desc) printf("  %s\n", cl_backend_cuda_path_info(g));
#endif
    free(ri), free(rt);
    cl_clip_free(m);
    CHECK_OK(g->set_precision(g, CL_PREC_FP32, &err), err);
  }
  free(img), free(txt), free(txtf);
}

#ifdef CLADE_HAVE_CUDA_BACKEND
/* cuDNN's fused attention, on a second backend created with CLADE_CUDNN_SDPA=1: ops against
 * the CPU (sequences of one length; others keep the fp32 kernel, so exact), then the tiny
 * model. A GPU or cuDNN that refuses the graph is reported, not a failure: the backend then
 * runs its own kernel, which these checks cover too. */
static void test_cudnn_sdpa(void) {
  static const struct {
    int nseq, lens[4], width, heads;
  } cases[] = {
      {3, {197, 197, 197}, 768, 12}, /* ViT-B/16 images */
      {4, {77, 77, 77, 77}, 512, 8},  /* texts at the full context */
      {2, {50, 50}, 64, 2},           /* the tiny model's head width 32 */
      {3, {9, 1, 20}, 64, 2},         /* unequal lengths: the fp32 kernel */
  };
  setenv("CLADE_CUDNN_SDPA", "1", 1);
  cl_backend *g = NULL;
  CHECK_OK(cl_backend_cuda_create(&g, &err), err);
  unsetenv("CLADE_CUDNN_SDPA");
  if (!g) return;
  cl_backend *saved = tb;
  tb = g; /* the pair helpers allocate on `tb` */
  for (int pi = 0; pi < 2; pi++) {
    const cl_precision prec = pi ? CL_PREC_FP16 : CL_PREC_BF16;
    CHECK_OK(g->set_precision(g, prec, &err), err);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
      int equal = 1;
      for (int s = 1; s < cases[c].nseq; s++) equal &= cases[c].lens[s] == cases[c].lens[0];
      for (int causal = 0; causal < 2; causal++)
        for (int first = 0; first <= 3; first += 3)
          attention_case(cases[c].lens, cases[c].nseq, first, cases[c].width, cases[c].heads, causal,
                         equal ? TOL_SDPA : TOL_OP, 2);
    }
    printf("cuDNN attention ops: %s\n", cl_backend_cuda_path_info(g));
    CHECK_OK(g->set_precision(g, CL_PREC_FP32, &err), err);
  }
  tb = saved;
  tiny_lowp(g, CL_PREC_BF16);
  CHECK_OK(g->sync(g, &err), err);
  cl_backend_destroy(g);
}

/* What the CUDA backend has alone: its device name, cuDNN's attention, the TF32 entry point. */
static void cuda_extras(void) {
  CHECK(!tb->host_memory && cl_backend_cuda_device_name(tb)[0] && strstr(tb->device, cl_backend_cuda_device_name(tb)));
  CHECK_OK(cl_backend_cuda_set_tf32(tb, 1, &err), err); /* the old entry point still works */
  CHECK(tb->precision == CL_PREC_TF32);
  CHECK_OK(cl_backend_cuda_set_tf32(tb, 0, &err), err);
  CHECK(tb->precision == CL_PREC_FP32);
  CHECK(cl_backend_cuda_set_tf32(cpu, 1, &err) == CL_EINVAL);
  test_cudnn_sdpa();
}
#endif

/* One backend through every check that applies to it. */
static void check_backend(const cl_backend_desc *d) {
  tbd = d;
  CHECK_OK(d->create(&tb, &err), err);
  if (!tb) return;
  printf("backend %s: %s\n", d->name, tb->device);
  CHECK(tb->precision == CL_PREC_FP32);
  if (d != &cl_backend_cpu_desc) { /* the reference against itself would prove nothing */
    test_memory();
    test_linear();
    for (int p = CL_PREC_BF16; p <= CL_PREC_FP16; p++)
      if (d->offers((cl_precision)p)) test_linear_lowp((cl_precision)p);
    test_matmul();
    test_layernorm();
    test_elementwise();
    test_gather();
    test_attention();
    test_patch_embed();
  }
  test_tiny_model();
  for (int p = CL_PREC_BF16; p <= CL_PREC_FP16; p++)
    if (d->offers((cl_precision)p)) tiny_lowp(tb, (cl_precision)p);
#ifdef CLADE_HAVE_CUDA_BACKEND
  if (d == &cl_backend_cuda_desc) cuda_extras();
#endif
  CHECK_OK(tb->sync(tb, &err), err);
  cl_backend_destroy(tb);
  tb = NULL;
}

int main(void) {
  CHECK_OK(cl_backend_cpu_create(&cpu, &err), err);
  if (!cpu) return cl_test_done("test_backend_parity");
  cl_test_tiny_load(&tiny);
  int skipped = 0;
  for (int i = 0; i < cl_backends_count(); i++) {
    const cl_backend_desc *d = cl_backends_at(i);
    char why[160];
    if (!d->probe(why, sizeof why)) {
      printf("SKIP backend %s: %s\n", d->name, why);
      fprintf(stderr, "SKIP backend %s: %s\n", d->name, why);
      skipped++;
      continue;
    }
    check_backend(d);
  }
  cl_test_tiny_free(&tiny);
  cl_backend_destroy(cpu);
  int rc = cl_test_done("test_backend_parity");
  return rc == 0 && skipped ? CL_TEST_SKIP : rc;
}
