/* cl_attn_cpu: multi-head self-attention on the CPU, one (sequence, head) pair per OpenMP
 * task. Sequences are short (77 text tokens, 197-257 image tokens), so a fused loop that
 * keeps K^T and one row of scores in cache beats per-head BLAS calls. The inner loops run
 * over keys or head dims with no reductions, so they vectorise without fast-math. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cl_ops_cpu_impl.h"

/* One head of one sequence. qkv rows are [q | k | v] of width w each (row stride 3w);
 * scratch holds kt [dh, len], a score row [len] and the scaled query [dh]. */
static void attn_head(float *out, const float *qkv, int len, int w, int dh, int h, int causal,
                      float scale, float *scratch) {
  const size_t ld = 3 * (size_t)w;
  float *kt = scratch, *p = kt + (size_t)dh * len, *q = p + len;
  for (int j = 0; j < len; j++) {
    const float *k = qkv + j * ld + w + (size_t)h * dh;
    for (int d = 0; d < dh; d++) kt[(size_t)d * len + j] = k[d];
  }
  for (int i = 0; i < len; i++) {
    const float *qi = qkv + i * ld + (size_t)h * dh;
    const int nj = causal ? i + 1 : len; /* masked keys get probability exactly 0 */
    /* torch scales q before q k^T */
    for (int d = 0; d < dh; d++) q[d] = qi[d] * scale;
    for (int j = 0; j < nj; j++) p[j] = 0.0f;
    for (int d = 0; d < dh; d++) {
      const float qd = q[d], *kd = kt + (size_t)d * len;
      for (int j = 0; j < nj; j++) p[j] += qd * kd[j];
    }
    float mx = -INFINITY;
    for (int j = 0; j < nj; j++) mx = p[j] > mx ? p[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j < nj; j++) {
      p[j] = expf(p[j] - mx);
      sum += p[j];
    }
    const float inv = 1.0f / sum;
    float *o = out + (size_t)i * w + (size_t)h * dh;
    memset(o, 0, (size_t)dh * sizeof(float));
    for (int j = 0; j < nj; j++) {
      const float pj = p[j] * inv, *v = qkv + j * ld + 2 * (size_t)w + (size_t)h * dh;
      for (int d = 0; d < dh; d++) o[d] += pj * v[d];
    }
  }
}

int cl_cpu_attention(cl_backend *be, float *out, const float *qkv, const int32_t *seq_off,
                     int nseq, int width, int heads, int causal, cl_error *e) {
  cl_cpu *c = (cl_cpu *)be;
  if (nseq < 0 || width <= 0 || heads <= 0 || width % heads)
    return cl_err(e, CL_EINVAL, "cpu backend: attention with width %d, %d heads, %d sequences",
                  width, heads, nseq);
  if (nseq == 0) return CL_OK;
  int lmax = 0;
  if (seq_off[0] < 0) return cl_err(e, CL_EINVAL, "cpu backend: attention seq_off[0] = %d", seq_off[0]);
  for (int s = 0; s < nseq; s++) {
    int len = seq_off[s + 1] - seq_off[s];
    if (len <= 0)
      return cl_err(e, CL_EINVAL, "cpu backend: attention sequence %d has length %d", s, len);
    if (len > lmax) lmax = len;
  }
  const int dh = width / heads;
  const size_t per = ((size_t)dh * lmax + lmax + dh + 15) & ~(size_t)15;
  float *ws = cl_cpu_workspace(c, per * omp_get_max_threads(), e);
  if (!ws) return CL_ENOMEM;
  const float scale = (float)(1.0 / sqrt((double)dh));
  const long tasks = (long)nseq * heads;
#pragma omp parallel for schedule(dynamic)
  for (long t = 0; t < tasks; t++) {
    int s = (int)(t / heads), h = (int)(t % heads);
    size_t r0 = (size_t)seq_off[s];
    attn_head(out + r0 * width, qkv + r0 * 3 * width, seq_off[s + 1] - seq_off[s], width, dh, h,
              causal, scale, ws + per * omp_get_thread_num());
  }
  return CL_OK;
}
