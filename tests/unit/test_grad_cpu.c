/* The CPU backend's backward kernels against finite differences of naive double-precision
 * forwards: for each op y = f(inputs) and a random upstream gradient dy, the gradient of
 * L = sum(dy * f) w.r.t. every input entry by central differences (h = 1e-6, in double) must
 * match the fp32 kernel's. Covers linear (dx, dw, db, accumulate), matmul, layernorm, both
 * activations, scatter_add_rows (repeated rows), attention (packed, causal or not), the patch
 * embedding, and the optimizer entries (sumsq, scale, AdamW against its formula in double). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cl_ops.h"
#include "cl_test.h"

static double *dbl(const float *x, size_t n) {
  double *p = cl_xmalloc(n * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = x[i];
  return p;
}

/* A naive forward in double: writes ny outputs from the inputs in ctx. */
typedef void (*fwd_fn)(void *ctx, double *y);

/* Central differences of sum(dy * f) w.r.t. each entry of x[n] (a double input inside ctx). */
static double *numgrad(fwd_fn f, void *ctx, double *x, size_t n, const float *dy, size_t ny) {
  double *g = cl_xmalloc(n * sizeof *g), *y = cl_xmalloc(ny * sizeof *y);
  const double h = 1e-6;
  for (size_t i = 0; i < n; i++) {
    const double x0 = x[i];
    double lp = 0, lm = 0;
    x[i] = x0 + h, f(ctx, y);
    for (size_t j = 0; j < ny; j++) lp += dy[j] * y[j];
    x[i] = x0 - h, f(ctx, y);
    for (size_t j = 0; j < ny; j++) lm += dy[j] * y[j];
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  free(y);
  return g;
}

/* max|a-b| / max|b| */
static double err(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (d > num || d != d) num = d;
    if (fabs(b[i]) > den) den = fabs(b[i]);
  }
  return num / (den > 0 ? den : 1e-30);
}

#define CHECK_GRAD(name, got, ref, n)                                                       \
  do {                                                                                      \
    double _r = err(got, ref, n);                                                           \
    CHECK_MSG(_r < 2e-5, "%s: max|diff|/max|ref| = %g", name, _r);                          \
  } while (0)

/* --- linear / matmul --- */
typedef struct { int m, k, n, transposed; double *x, *w, *b; } lin_ctx;
static void lin_fwd(void *c_, double *y) {
  lin_ctx *c = c_;
  for (int i = 0; i < c->m; i++)
    for (int j = 0; j < c->n; j++) {
      double s = c->b ? c->b[j] : 0;
      for (int q = 0; q < c->k; q++)
        s += c->x[i * c->k + q] * (c->transposed ? c->w[q * c->n + j] : c->w[j * c->k + q]);
      y[i * c->n + j] = s;
    }
}

static void test_linear(cl_backend *be) {
  const int m = 13, k = 17, n = 11;
  cl_error e = {0};
  float *x = cl_test_rnd((size_t)m * k), *w = cl_test_rnd((size_t)n * k), *b = cl_test_rnd(n), *dy = cl_test_rnd((size_t)m * n);
  lin_ctx c = {m, k, n, 0, dbl(x, (size_t)m * k), dbl(w, (size_t)n * k), dbl(b, n)};
  double *gx = numgrad(lin_fwd, &c, c.x, (size_t)m * k, dy, (size_t)m * n);
  double *gw = numgrad(lin_fwd, &c, c.w, (size_t)n * k, dy, (size_t)m * n);
  double *gb = numgrad(lin_fwd, &c, c.b, n, dy, (size_t)m * n);
  float *dx = cl_test_rnd((size_t)m * k), *dw = cl_xcalloc((size_t)n * k, 4), *db = cl_xcalloc(n, 4);
  float *dx0 = cl_xmalloc((size_t)m * k * 4);
  memcpy(dx0, dx, (size_t)m * k * 4);
  CHECK_OK(be->linear_backward(be, dx, dw, db, dy, x, w, m, k, n, 0, &e), e);
  CHECK_GRAD("linear dx", dx, gx, (size_t)m * k);
  CHECK_GRAD("linear dw", dw, gw, (size_t)n * k);
  CHECK_GRAD("linear db", db, gb, n);
  /* accumulate: dx adds to what is there; dw, db always add */
  memcpy(dx, dx0, (size_t)m * k * 4);
  CHECK_OK(be->linear_backward(be, dx, dw, db, dy, x, w, m, k, n, 1, &e), e);
  for (size_t i = 0; i < (size_t)m * k; i++) gx[i] += dx0[i];
  for (size_t i = 0; i < (size_t)n * k; i++) gw[i] *= 2;
  for (int i = 0; i < n; i++) gb[i] *= 2;
  CHECK_GRAD("linear dx accumulated", dx, gx, (size_t)m * k);
  CHECK_GRAD("linear dw twice", dw, gw, (size_t)n * k);
  CHECK_GRAD("linear db twice", db, gb, n);
  /* NULL gradients are skipped */
  CHECK_OK(be->linear_backward(be, NULL, NULL, NULL, dy, x, w, m, k, n, 0, &e), e);
  CHECK(be->linear_backward(be, dx, dw, db, dy, x, w, m, 0, n, 0, &e) == CL_EINVAL);
  free(gx), free(gw), free(gb), free(c.x), free(c.w), free(c.b);

  /* matmul y = x p, p [k,n] */
  float *p = cl_test_rnd((size_t)k * n);
  lin_ctx d = {m, k, n, 1, dbl(x, (size_t)m * k), dbl(p, (size_t)k * n), NULL};
  gx = numgrad(lin_fwd, &d, d.x, (size_t)m * k, dy, (size_t)m * n);
  double *gp = numgrad(lin_fwd, &d, d.w, (size_t)k * n, dy, (size_t)m * n);
  float *dp = cl_xcalloc((size_t)k * n, 4);
  CHECK_OK(be->matmul_backward(be, dx, dp, dy, x, p, m, k, n, 0, &e), e);
  CHECK_GRAD("matmul dx", dx, gx, (size_t)m * k);
  CHECK_GRAD("matmul dp", dp, gp, (size_t)k * n);
  free(gx), free(gp), free(d.x), free(d.w), free(dp), free(p);
  free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db), free(dx0);
}

/* a GEMM big enough to be split across threads matches the single-block result */
static void test_linear_large(cl_backend *be) {
  const int m = 300, k = 130, n = 190;
  cl_error e = {0};
  float *x = cl_test_rnd((size_t)m * k), *w = cl_test_rnd((size_t)n * k), *dy = cl_test_rnd((size_t)m * n);
  float *dx = cl_xmalloc((size_t)m * k * 4), *dw = cl_xcalloc((size_t)n * k, 4), *db = cl_xcalloc(n, 4);
  CHECK_OK(be->linear_backward(be, dx, dw, db, dy, x, w, m, k, n, 0, &e), e);
  double worst = 0;
  for (int i = 0; i < m; i += 7)
    for (int q = 0; q < k; q++) {
      double s = 0;
      for (int j = 0; j < n; j++) s += (double)dy[i * n + j] * w[j * k + q];
      worst = fmax(worst, fabs(s - dx[i * k + q]) / (fabs(s) + 1));
    }
  for (int j = 0; j < n; j += 5)
    for (int q = 0; q < k; q++) {
      double s = 0;
      for (int i = 0; i < m; i++) s += (double)dy[i * n + j] * x[i * k + q];
      worst = fmax(worst, fabs(s - dw[j * k + q]) / (fabs(s) + 1));
    }
  CHECK_MSG(worst < 1e-5, "large linear backward: worst %g", worst);
  free(x), free(w), free(dy), free(dx), free(dw), free(db);
}

/* --- layernorm --- */
typedef struct { int m, n; double *x, *g, *b; } ln_ctx;
static void ln_fwd(void *c_, double *y) {
  ln_ctx *c = c_;
  for (int i = 0; i < c->m; i++) {
    const double *xi = c->x + i * c->n;
    double mu = 0, v = 0;
    for (int j = 0; j < c->n; j++) mu += xi[j];
    mu /= c->n;
    for (int j = 0; j < c->n; j++) v += (xi[j] - mu) * (xi[j] - mu);
    v /= c->n;
    for (int j = 0; j < c->n; j++) y[i * c->n + j] = (xi[j] - mu) / sqrt(v + 1e-5) * c->g[j] + c->b[j];
  }
}

static void test_layernorm(cl_backend *be) {
  const int m = 7, n = 40;
  cl_error e = {0};
  float *x = cl_test_rnd((size_t)m * n), *g = cl_test_rnd(n), *b = cl_test_rnd(n), *dy = cl_test_rnd((size_t)m * n);
  for (int i = 0; i < m * n; i++) x[i] = x[i] * 2 + 0.5f;
  ln_ctx c = {m, n, dbl(x, (size_t)m * n), dbl(g, n), dbl(b, n)};
  double *gx = numgrad(ln_fwd, &c, c.x, (size_t)m * n, dy, (size_t)m * n);
  double *gg = numgrad(ln_fwd, &c, c.g, n, dy, (size_t)m * n);
  double *gb = numgrad(ln_fwd, &c, c.b, n, dy, (size_t)m * n);
  float *dx = cl_xcalloc((size_t)m * n, 4), *dg = cl_xcalloc(n, 4), *db = cl_xcalloc(n, 4);
  CHECK_OK(be->layernorm_backward(be, dx, dg, db, dy, x, g, m, n, 1e-5f, 0, &e), e);
  CHECK_GRAD("layernorm dx", dx, gx, (size_t)m * n);
  CHECK_GRAD("layernorm dg", dg, gg, n);
  CHECK_GRAD("layernorm db", db, gb, n);
  /* accumulate adds the same again */
  CHECK_OK(be->layernorm_backward(be, dx, NULL, NULL, dy, x, g, m, n, 1e-5f, 1, &e), e);
  for (int i = 0; i < m * n; i++) gx[i] *= 2;
  CHECK_GRAD("layernorm dx accumulated", dx, gx, (size_t)m * n);
  free(gx), free(gg), free(gb), free(c.x), free(c.g), free(c.b);
  free(x), free(g), free(b), free(dy), free(dx), free(dg), free(db);
}

/* --- activations --- */
typedef struct { int n; cl_act act; double *x; } act_ctx;
static void act_fwd(void *c_, double *y) {
  act_ctx *c = c_;
  for (int i = 0; i < c->n; i++) {
    const double x = c->x[i];
    y[i] = c->act == CL_ACT_GELU ? 0.5 * x * (1 + erf(x / sqrt(2.0))) : x / (1 + exp(-1.702 * x));
  }
}

static void test_activations(cl_backend *be) {
  const int n = 200;
  cl_error e = {0};
  float *x = cl_test_rnd(n), *dy = cl_test_rnd(n), *dx = cl_xmalloc(n * 4);
  for (int i = 0; i < n; i++) x[i] *= 5; /* both tails */
  for (int a = CL_ACT_GELU; a <= CL_ACT_QUICKGELU; a++) {
    act_ctx c = {n, (cl_act)a, dbl(x, n)};
    double *gx = numgrad(act_fwd, &c, c.x, n, dy, n);
    CHECK_OK(be->activate_backward(be, dx, dy, x, n, (cl_act)a, &e), e);
    CHECK_GRAD(a == CL_ACT_GELU ? "gelu" : "quickgelu", dx, gx, n);
    memcpy(dx, dy, n * 4); /* in place */
    CHECK_OK(be->activate_backward(be, dx, dx, x, n, (cl_act)a, &e), e);
    CHECK_GRAD("activation in place", dx, gx, n);
    free(gx), free(c.x);
  }
  CHECK(be->activate_backward(be, dx, dy, x, n, (cl_act)9, &e) == CL_EINVAL);
  free(x), free(dy), free(dx);
}

/* --- scatter_add_rows --- */
static void test_scatter(cl_backend *be) {
  const int rows = 6, n = 9, w = 5;
  cl_error e = {0};
  int32_t idx[9] = {3, 0, 3, 5, 1, 3, 0, 2, 5};
  float *dy = cl_test_rnd((size_t)n * w), *dt = cl_test_rnd((size_t)rows * w);
  double ref[30];
  for (int i = 0; i < rows * w; i++) ref[i] = dt[i];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < w; j++) ref[idx[i] * w + j] += dy[i * w + j];
  CHECK_OK(be->scatter_add_rows(be, dt, rows, idx, dy, n, w, &e), e);
  CHECK_GRAD("scatter_add_rows", dt, ref, (size_t)rows * w);
  idx[4] = rows;
  CHECK(be->scatter_add_rows(be, dt, rows, idx, dy, n, w, &e) == CL_EINVAL && strstr(e.msg, "item 4"));
  free(dy), free(dt);
}

/* --- attention --- */
typedef struct { const int32_t *off; int nseq, width, heads, causal; double *qkv; } att_ctx;
static void att_fwd(void *c_, double *y) {
  att_ctx *c = c_;
  const int W = c->width, dh = W / c->heads;
  double sc[64];
  for (int s = 0; s < c->nseq; s++) {
    const int r0 = c->off[s], len = c->off[s + 1] - r0;
    for (int h = 0; h < c->heads; h++)
      for (int i = 0; i < len; i++) {
        const int nj = c->causal ? i + 1 : len;
        double mx = -1e300, sum = 0;
        for (int j = 0; j < nj; j++) {
          double d = 0;
          for (int q = 0; q < dh; q++)
            d += c->qkv[(size_t)(r0 + i) * 3 * W + h * dh + q] * c->qkv[(size_t)(r0 + j) * 3 * W + W + h * dh + q];
          sc[j] = d / sqrt((double)dh);
          mx = fmax(mx, sc[j]);
        }
        for (int j = 0; j < nj; j++) sum += sc[j] = exp(sc[j] - mx);
        for (int q = 0; q < dh; q++) {
          double o = 0;
          for (int j = 0; j < nj; j++) o += sc[j] / sum * c->qkv[(size_t)(r0 + j) * 3 * W + 2 * W + h * dh + q];
          y[(size_t)(r0 + i) * W + h * dh + q] = o;
        }
      }
  }
}

static void test_attention(cl_backend *be) {
  const int32_t off[4] = {0, 5, 8, 15};
  const int nseq = 3, W = 8, heads = 2, rows = 15;
  cl_error e = {0};
  float *qkv = cl_test_rnd((size_t)rows * 3 * W), *dout = cl_test_rnd((size_t)rows * W), *dqkv = cl_xmalloc((size_t)rows * 3 * W * 4);
  for (int i = 0; i < rows * 3 * W; i++) qkv[i] *= 2;
  for (int causal = 0; causal < 2; causal++) {
    att_ctx c = {off, nseq, W, heads, causal, dbl(qkv, (size_t)rows * 3 * W)};
    double *g = numgrad(att_fwd, &c, c.qkv, (size_t)rows * 3 * W, dout, (size_t)rows * W);
    CHECK_OK(be->attention_backward(be, dqkv, dout, qkv, off, nseq, W, heads, causal, &e), e);
    CHECK_GRAD(causal ? "attention causal" : "attention", dqkv, g, (size_t)rows * 3 * W);
    free(g), free(c.qkv);
  }
  const int32_t bad[3] = {0, 4, 4};
  CHECK(be->attention_backward(be, dqkv, dout, qkv, bad, 2, W, heads, 0, &e) == CL_EINVAL);
  free(qkv), free(dout), free(dqkv);
}

/* --- patch embedding --- */
typedef struct { int n, ch, image, patch, width; const double *px; double *w, *cls, *pos; } pe_ctx;
static void pe_fwd(void *c_, double *y) {
  pe_ctx *c = c_;
  const int g = c->image / c->patch, seq = 1 + g * g, W = c->width, P = c->patch;
  for (int i = 0; i < c->n; i++)
    for (int r = 0; r < seq; r++)
      for (int o = 0; o < W; o++) {
        double s = c->pos[r * W + o];
        if (r == 0) s += c->cls[o];
        else {
          const int py = (r - 1) / g, pxx = (r - 1) % g;
          for (int ch = 0; ch < c->ch; ch++)
            for (int ky = 0; ky < P; ky++)
              for (int kx = 0; kx < P; kx++)
                s += c->w[((o * c->ch + ch) * P + ky) * P + kx] *
                     c->px[(((size_t)i * c->ch + ch) * c->image + py * P + ky) * c->image + pxx * P + kx];
        }
        y[((size_t)i * seq + r) * W + o] = s;
      }
}

static void test_patch_embed(cl_backend *be) {
  const int n = 2, ch = 3, image = 8, patch = 4, W = 6, g = image / patch, seq = 1 + g * g, kk = ch * patch * patch;
  cl_error e = {0};
  float *px = cl_test_rnd((size_t)n * ch * image * image), *w = cl_test_rnd((size_t)W * kk), *cls = cl_test_rnd(W), *pos = cl_test_rnd((size_t)seq * W);
  float *dx = cl_test_rnd((size_t)n * seq * W);
  double *pxd = dbl(px, (size_t)n * ch * image * image);
  pe_ctx c = {n, ch, image, patch, W, pxd, dbl(w, (size_t)W * kk), dbl(cls, W), dbl(pos, (size_t)seq * W)};
  /* the forward kernel agrees with the reference forward */
  float *y = cl_xmalloc((size_t)n * seq * W * 4);
  double *yr = cl_xmalloc((size_t)n * seq * W * 8);
  CHECK_OK(be->patch_embed(be, y, px, w, cls, pos, n, ch, image, patch, W, &e), e);
  pe_fwd(&c, yr);
  CHECK_GRAD("patch_embed forward", y, yr, (size_t)n * seq * W);
  double *gw = numgrad(pe_fwd, &c, c.w, (size_t)W * kk, dx, (size_t)n * seq * W);
  double *gc = numgrad(pe_fwd, &c, c.cls, W, dx, (size_t)n * seq * W);
  double *gp = numgrad(pe_fwd, &c, c.pos, (size_t)seq * W, dx, (size_t)n * seq * W);
  float *dw = cl_xcalloc((size_t)W * kk, 4), *dc = cl_xcalloc(W, 4), *dp = cl_xcalloc((size_t)seq * W, 4);
  CHECK_OK(be->patch_embed_backward(be, dw, dc, dp, dx, px, n, ch, image, patch, W, &e), e);
  CHECK_GRAD("patch_embed dw", dw, gw, (size_t)W * kk);
  CHECK_GRAD("patch_embed dcls", dc, gc, W);
  CHECK_GRAD("patch_embed dpos", dp, gp, (size_t)seq * W);
  free(gw), free(gc), free(gp), free(c.w), free(c.cls), free(c.pos), free(pxd), free(y), free(yr);
  free(px), free(w), free(cls), free(pos), free(dx), free(dw), free(dc), free(dp);
}

/* --- optimizer entries --- */
static void test_optimizer(cl_backend *be) {
  const int n = 100;
  cl_error e = {0};
  float *p = cl_test_rnd(n), *g = cl_test_rnd(n), *m = cl_test_rnd(n), *v = cl_test_rnd(n);
  for (int i = 0; i < n; i++) v[i] = fabsf(v[i]);
  double s = 0, got = 0;
  for (int i = 0; i < n; i++) s += (double)g[i] * g[i];
  CHECK_OK(be->sumsq(be, g, n, &got, &e), e);
  CHECK_MSG(fabs(got - s) < 1e-12 * s, "sumsq %g vs %g", got, s);
  /* AdamW at t = 3, lr 1e-3, wd 0.2 against the formula in double */
  const double lr = 1e-3, wd = 0.2, b1 = 0.9, b2 = 0.98, eps = 1e-6;
  const int t = 3;
  cl_adamw_args a = {(float)(1 - lr * wd), (float)b1, (float)(1 - b1), (float)b2, (float)(1 - b2),
                     (float)(lr / (1 - pow(b1, t))), (float)sqrt(1 - pow(b2, t)), (float)eps};
  double rp[100], rm[100], rv[100];
  for (int i = 0; i < n; i++) {
    rm[i] = b1 * m[i] + (1 - b1) * g[i];
    rv[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
    rp[i] = p[i] * (1 - lr * wd) - lr / (1 - pow(b1, t)) * rm[i] / (sqrt(rv[i]) / sqrt(1 - pow(b2, t)) + eps);
  }
  CHECK_OK(be->adamw(be, p, g, m, v, n, &a, &e), e);
  double dp = 0, dm = 0, dv = 0;
  for (int i = 0; i < n; i++)
    dp = fmax(dp, fabs(p[i] - rp[i])), dm = fmax(dm, fabs(m[i] - rm[i])), dv = fmax(dv, fabs(v[i] - rv[i]));
  CHECK_MSG(dp < 1e-6 && dm < 1e-6 && dv < 1e-6, "adamw: |dp| %g |dm| %g |dv| %g", dp, dm, dv);
  CHECK_OK(be->scale(be, g, n, 0.5f, &e), e);
  CHECK_OK(be->sumsq(be, g, n, &got, &e), e);
  CHECK_MSG(fabs(got - s / 4) < 1e-6 * s, "scale by 0.5: sumsq %g vs %g", got, s / 4);
  free(p), free(g), free(m), free(v);
}

int main(void) {
  cl_backend *be = NULL;
  cl_error e = {0};
  if (cl_backend_cpu_create(&be, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  test_linear(be);
  test_linear_large(be);
  test_layernorm(be);
  test_activations(be);
  test_scatter(be);
  test_attention(be);
  test_patch_embed(be);
  test_optimizer(be);
  cl_backend_destroy(be);
  return cl_test_done("test_grad_cpu");
}
