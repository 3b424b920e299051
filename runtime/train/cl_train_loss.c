/* cl_train_loss: open_clip's ClipLoss (one process, no label smoothing) and its gradient,
 * on the host in double: the batch's n x n logits are small next to the towers.
 *   f = x / max(|x|, 1e-12) (F.normalize), s = exp(logit_scale), L = s f_img f_txt^T,
 *   loss = (CE(L, arange n) + CE(L^T, arange n)) / 2, CE the mean over rows. */
#include <math.h>
#include <stdlib.h>

#include "cl_train.h"

/* f = x / max(|x|, eps) row by row; norms out. */
static void normalize_rows(const float *x, int n, int E, double *f, double *norm) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < E; k++) s += (double)x[(size_t)i * E + k] * x[(size_t)i * E + k];
    norm[i] = fmax(sqrt(s), 1e-12);
    for (int k = 0; k < E; k++) f[(size_t)i * E + k] = x[(size_t)i * E + k] / norm[i];
  }
}

/* dx = (df - f (f . df)) / |x| for each row (the norm clamp is never active for real data). */
static void normalize_backward(const double *f, const double *df, const double *norm, int n, int E, float *dx) {
  for (int i = 0; i < n; i++) {
    double dot = 0;
    for (int k = 0; k < E; k++) dot += f[(size_t)i * E + k] * df[(size_t)i * E + k];
    for (int k = 0; k < E; k++)
      dx[(size_t)i * E + k] = (float)((df[(size_t)i * E + k] - f[(size_t)i * E + k] * dot) / norm[i]);
  }
}

double cl_train_clip_loss(const float *img, const float *txt, int n, int E, float logit_scale, float *dimg,
                          float *dtxt, double *dlogit_scale) {
  const size_t ne = (size_t)n * E, nn = (size_t)n * n;
  double *buf = cl_xmalloc((4 * ne + 3 * nn + 2 * (size_t)n) * sizeof(double));
  double *fi = buf, *ft = fi + ne, *dfi = ft + ne, *dft = dfi + ne, *cos = dft + ne, *pr = cos + nn, *pc = pr + nn;
  double *ni = pc + nn, *nt = ni + n;
  normalize_rows(img, n, E, fi, ni);
  normalize_rows(txt, n, E, ft, nt);
  const double s = exp((double)logit_scale);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double d = 0;
      for (int k = 0; k < E; k++) d += fi[(size_t)i * E + k] * ft[(size_t)j * E + k];
      cos[(size_t)i * n + j] = d;
    }
  /* softmax over rows (image -> texts) and over columns (text -> images) of s * cos */
  double loss = 0;
  for (int i = 0; i < n; i++) {
    double mr = -INFINITY, mc = -INFINITY, sr = 0, sc = 0;
    for (int j = 0; j < n; j++) mr = fmax(mr, s * cos[(size_t)i * n + j]), mc = fmax(mc, s * cos[(size_t)j * n + i]);
    for (int j = 0; j < n; j++) {
      sr += pr[(size_t)i * n + j] = exp(s * cos[(size_t)i * n + j] - mr);
      sc += pc[(size_t)j * n + i] = exp(s * cos[(size_t)j * n + i] - mc);
    }
    for (int j = 0; j < n; j++) pr[(size_t)i * n + j] /= sr, pc[(size_t)j * n + i] /= sc;
    loss += (mr + log(sr) - s * cos[(size_t)i * n + i]) + (mc + log(sc) - s * cos[(size_t)i * n + i]);
  }
  loss /= 2.0 * n;
  /* d loss / d logits[i][j] = (pr[i][j] - [i==j] + pc[i][j] - [i==j]) / 2n, kept in pr */
  double dls = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      const size_t ij = (size_t)i * n + j;
      pr[ij] = (pr[ij] + pc[ij] - (i == j ? 2.0 : 0.0)) / (2.0 * n);
      dls += pr[ij] * s * cos[ij]; /* d logits / d logit_scale = logits */
    }
  for (size_t q = 0; q < 2 * ne; q++) dfi[q] = 0; /* dfi and dft */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      const double g = s * pr[(size_t)i * n + j];
      for (int k = 0; k < E; k++) {
        dfi[(size_t)i * E + k] += g * ft[(size_t)j * E + k];
        dft[(size_t)j * E + k] += g * fi[(size_t)i * E + k];
      }
    }
  normalize_backward(fi, dfi, ni, n, E, dimg);
  normalize_backward(ft, dft, nt, n, E, dtxt);
  *dlogit_scale = dls;
  free(buf);
  return loss;
}
