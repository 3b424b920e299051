/* cl_attn_cpu: multi-head self-attention on the CPU: one (sequence, head) pair per OpenMP
 * task (dynamic), each the AVX-512 kernel (head width a multiple of 16, up to 64: see
 * cl_cpu_x512.c) or else two single-threaded GEMMs (q k^T, then p v) around a row softmax. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cl_cpu_simd.h"
#include "cl_ops_cpu_impl.h"

void cl_cpu_softmax_rows(float *p, int len, int causal) {
  for (int i = 0; i < len; i++) {
    float *pi = p + (size_t)i * len;
    const int nj = causal ? i + 1 : len; /* masked keys get probability exactly 0 */
    float mx = -INFINITY, sum = 0.0f;
    for (int j = 0; j < nj; j++) mx = pi[j] > mx ? pi[j] : mx;
    for (int j = 0; j < nj; j++) sum += pi[j] = expf(pi[j] - mx);
    const float inv = 1.0f / sum;
    for (int j = 0; j < nj; j++) pi[j] *= inv;
    for (int j = nj; j < len; j++) pi[j] = 0.0f;
  }
}

/* One head of one sequence: qkv rows are [q | k | v] of w floats each (row stride 3w);
 * scratch holds the scaled queries [len, dh] and the scores [len, len]. */
static void attn_head(float *out, const float *qkv, int len, int w, int dh, int h, int causal,
                      float scale, float *scratch) {
  const int ld = 3 * w;
  float *q = scratch, *p = q + (size_t)len * dh;
  for (int i = 0; i < len; i++) /* torch scales q before q k^T */
    for (int d = 0; d < dh; d++) q[(size_t)i * dh + d] = qkv[(size_t)i * ld + (size_t)h * dh + d] * scale;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, dh, 1.0f, q, dh,
              qkv + w + (size_t)h * dh, ld, 0.0f, p, len);
  cl_cpu_softmax_rows(p, len, causal);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, dh, len, 1.0f, p, len,
              qkv + 2 * (size_t)w + (size_t)h * dh, ld, 0.0f, out + (size_t)h * dh, w);
}

int cl_cpu_attention(cl_backend *be, float *out, const float *qkv, const int32_t *seq_off,
                     int nseq, int width, int heads, int causal, cl_error *e) {
  cl_cpu *c = be->impl;
  if (nseq < 0 || width <= 0 || heads <= 0 || width % heads)
    return cl_err(e, CL_EINVAL, "cpu backend: attention with width %d, %d heads, %d sequences",
                  width, heads, nseq);
  if (nseq == 0) return CL_OK;
  if (seq_off[0] < 0) return cl_err(e, CL_EINVAL, "cpu backend: attention seq_off[0] = %d", seq_off[0]);
  int lmax = 0;
  for (int s = 0; s < nseq; s++) {
    int len = seq_off[s + 1] - seq_off[s];
    if (len <= 0)
      return cl_err(e, CL_EINVAL, "cpu backend: attention sequence %d has length %d", s, len);
    if (len > lmax) lmax = len;
  }
  const int dh = width / heads;
  const float scale = (float)(1.0 / sqrt((double)dh));
  const long tasks = (long)nseq * heads;
  if (cl_cpu_avx512() && dh % 16 == 0 && dh <= 64) {
    const size_t per = (cl_cpu_attn_x512_scratch(lmax, dh) + 15) & ~(size_t)15;
    float *ws = cl_cpu_workspace(c, per * omp_get_max_threads(), e);
    if (!ws) return CL_ENOMEM;
#pragma omp parallel for schedule(dynamic)
    for (long t = 0; t < tasks; t++) {
      int s = (int)(t / heads), h = (int)(t % heads);
      const size_t r0 = (size_t)seq_off[s];
      const float *base = qkv + r0 * 3 * width + (size_t)h * dh;
      cl_cpu_attn_x512(out + r0 * width + (size_t)h * dh, width, base, base + width, base + 2 * (size_t)width,
                       3 * width, seq_off[s + 1] - seq_off[s], dh, causal, scale, ws + per * omp_get_thread_num());
    }
    return CL_OK;
  }
  const size_t per = ((size_t)lmax * dh + (size_t)lmax * lmax + 15) & ~(size_t)15;
  float *ws = cl_cpu_workspace(c, per * omp_get_max_threads(), e);
  if (!ws) return CL_ENOMEM;
#pragma omp parallel for schedule(dynamic)
  for (long t = 0; t < tasks; t++) {
    int s = (int)(t / heads), h = (int)(t % heads);
    size_t r0 = (size_t)seq_off[s];
    attn_head(out + r0 * width, qkv + r0 * 3 * width, seq_off[s + 1] - seq_off[s], width, dh, h,
              causal, scale, ws + per * omp_get_thread_num());
  }
  return CL_OK;
}
