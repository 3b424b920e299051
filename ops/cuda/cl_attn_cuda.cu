/* cl_attn_cuda: multi-head self-attention over packed variable-length sequences, in fp32.
 * One block per (sequence, tile of QROWS query rows, head); each warp owns RPW query rows.
 * Keys and values stream through shared memory in tiles of 32 keys, one key per lane, and
 * the softmax is computed online (running max and sum, rescaled per tile), so sequences
 * of any length fit and scores never touch global memory. Same math as the CPU backend:
 * q is scaled by 1/sqrt(dh) before q k^T, masked keys get probability exactly 0. */
#include <math.h>

#include "cl_cuda_kernels.h"

#define WARPS 4
#define RPW (CL_CUDA_ATTN_QROWS / WARPS) /* query rows per warp */
#define QROWS CL_CUDA_ATTN_QROWS         /* query rows per block */
#define KT 32                  /* keys per tile: one per lane */
#define DPL (CL_CUDA_ATTN_MAX_DH / 32) /* output columns per lane */
#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

/* Shared memory: ks [KT][ldk] (ldk odd, so lane j reading key j's column d hits bank
 * (j * ldk + d) % 32, all distinct), vs [KT][dh], qs [QROWS][dh] (scaled queries). */
__global__ void attention_kernel(float *out, const float *qkv, const int32_t *seq_off, int ntiles,
                                 int width, int dh, int causal, float scale) {
  extern __shared__ float smem[];
  const int ldk = dh % 2 ? dh : dh + 1;
  float *ks = smem, *vs = ks + KT * ldk, *qs = vs + KT * dh;
  const int s = blockIdx.x / ntiles, tile = blockIdx.x % ntiles, h = blockIdx.y;
  const int r0 = seq_off[s], len = seq_off[s + 1] - r0, q0 = tile * QROWS;
  if (q0 >= len) return; /* a tile past this sequence's end: the whole block leaves */
  const int nq = min(QROWS, len - q0);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const size_t ld = 3 * (size_t)width;
  const float *base = qkv + (size_t)r0 * ld + (size_t)h * dh; /* q; k at +width, v at +2 width */

  for (int t = threadIdx.x; t < nq * dh; t += blockDim.x) {
    const int i = t / dh, d = t % dh;
    qs[i * dh + d] = base[(size_t)(q0 + i) * ld + d] * scale;
  }
  float o[RPW][DPL], mx[RPW], sum[RPW];
#pragma unroll
  for (int r = 0; r < RPW; r++) {
    mx[r] = -INFINITY, sum[r] = 0.0f;
#pragma unroll
    for (int u = 0; u < DPL; u++) o[r][u] = 0.0f;
  }

  /* with the causal mask no row of this block sees past its last query row */
  const int kend = causal ? q0 + nq : len;
  for (int k0 = 0; k0 < kend; k0 += KT) {
    const int nk = min(KT, kend - k0);
    __syncthreads(); /* the previous tile is consumed (and the queries are stored) */
    for (int t = threadIdx.x; t < nk * dh; t += blockDim.x) {
      const int j = t / dh, d = t % dh;
      const float *row = base + (size_t)(k0 + j) * ld + d;
      ks[j * ldk + d] = row[width];
      vs[j * dh + d] = row[2 * (size_t)width];
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < RPW; r++) {
      const int qi = warp * RPW + r, i = q0 + qi; /* row in the block, row in the sequence */
      if (qi >= nq || (causal && k0 > i)) continue; /* warp-uniform */
      const int j = k0 + lane;
      float sc = -INFINITY;
      if (lane < nk && (!causal || j <= i)) {
        const float *q = qs + qi * dh, *k = ks + lane * ldk;
        float acc = 0.0f;
        for (int d = 0; d < dh; d++) acc += q[d] * k[d];
        sc = acc;
      }
      /* key k0 <= i is always visible here, so the new max is finite */
      const float mnew = fmaxf(mx[r], warp_max(sc));
      const float p = sc == -INFINITY ? 0.0f : expf(sc - mnew);
      const float corr = expf(mx[r] - mnew); /* 0 on the first tile (mx = -inf) */
      sum[r] = sum[r] * corr + warp_sum(p);
      mx[r] = mnew;
#pragma unroll
      for (int u = 0; u < DPL; u++) o[r][u] *= corr;
      for (int jj = 0; jj < nk; jj++) {
        const float pj = __shfl_sync(FULL_MASK, p, jj);
        const float *v = vs + jj * dh;
#pragma unroll
        for (int u = 0; u < DPL; u++) {
          const int d = lane + 32 * u;
          if (d < dh) o[r][u] += pj * v[d];
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < RPW; r++) {
    const int qi = warp * RPW + r;
    if (qi >= nq) continue;
    const float inv = 1.0f / sum[r];
    float *dst = out + (size_t)(r0 + q0 + qi) * width + (size_t)h * dh;
#pragma unroll
    for (int u = 0; u < DPL; u++) {
      const int d = lane + 32 * u;
      if (d < dh) dst[d] = o[r][u] * inv;
    }
  }
}

extern "C" cudaError_t cl_cuda_attention(float *out, const float *qkv, const int32_t *seq_off, int nseq,
                                         int lmax, int width, int heads, int causal, cudaStream_t s) {
  const int dh = width / heads, ntiles = (lmax + QROWS - 1) / QROWS;
  const int ldk = dh % 2 ? dh : dh + 1;
  const size_t smem = (size_t)(KT * ldk + KT * dh + QROWS * dh) * sizeof(float); /* <= 41 KB */
  const dim3 grid((unsigned)nseq * (unsigned)ntiles, (unsigned)heads);
  attention_kernel<<<grid, WARPS * 32, smem, s>>>(out, qkv, seq_off, ntiles, width, dh, causal,
                                                  (float)(1.0 / sqrt((double)dh)));
  return cudaGetLastError();
}
