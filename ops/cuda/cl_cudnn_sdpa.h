/* cl_cudnn_sdpa: fused attention through cuDNN's backend graph API, for the CUDA backend's
 * bf16/fp16 modes (not a public header).
 * Owns: a cuDNN handle bound to the backend's stream, one execution plan per attention shape
 * (built once, cached), and the plans' device workspace.
 * Supports only what every image batch is: nseq sequences of the same length len, packed one
 * after the other, q | k | v of each row side by side in one [nseq*len, 3*width] buffer of
 * bf16/fp16 (heads of dh columns), output [nseq*len, width] of the same type.
 * A shape cuDNN refuses (graph, heuristics or plan finalize fails) is remembered as refused
 * with the reason; the caller then runs its own kernel. Nothing here prints. */
#ifndef CL_CUDNN_SDPA_H
#define CL_CUDNN_SDPA_H
#include <cuda_runtime_api.h>
#include <stdint.h>

#define CL_SDPA_MAX_DESC 160 /* backend descriptors one plan keeps alive */

enum { CL_SDPA_UNVERIFIED = 0, CL_SDPA_VERIFIED, CL_SDPA_REFUSED };

typedef struct cl_sdpa_plan {
  int nseq, len, heads, dh, causal, bf16; /* the key */
  int state;                              /* CL_SDPA_*: the caller verifies a new plan once */
  void *desc[CL_SDPA_MAX_DESC];           /* every descriptor built for it, freed together */
  int ndesc;
  void *plan;             /* the finalized execution plan, NULL when refused */
  int64_t workspace;      /* bytes the plan needs */
  float scale, neg;       /* by-value scalars: 1/sqrt(dh) and the mask value, read at execute */
  unsigned long long used; /* last use, for eviction */
  char why[256];          /* why cuDNN refused, or why the check rejected it */
} cl_sdpa_plan;

typedef struct cl_sdpa cl_sdpa;

/* A cuDNN handle on stream s. On failure returns NULL with the reason in why. */
cl_sdpa *cl_sdpa_create(cudaStream_t s, char *why, size_t nwhy);
void cl_sdpa_destroy(cl_sdpa *sd);
/* The plan for this shape, built on first use (state CL_SDPA_UNVERIFIED, or CL_SDPA_REFUSED
 * with why set when cuDNN refused it). NULL only when out of host memory. */
cl_sdpa_plan *cl_sdpa_get(cl_sdpa *sd, int nseq, int len, int heads, int dh, int causal, int bf16);
/* Queues the plan on the stream: o = attention(qkv), both device buffers as described above.
 * 0 on success; -1 when cuDNN refused to run it or the workspace could not be had (the plan
 * is then marked refused, why set), so the caller falls back. */
int cl_sdpa_run(cl_sdpa *sd, cl_sdpa_plan *p, void *o, const void *qkv);
/* Marks p refused with why: the caller's check of its first result disagreed. */
void cl_sdpa_reject(cl_sdpa *sd, cl_sdpa_plan *p, const char *why);
/* How many plans exist, verified and refused, and the latest refusal reason ("" if none). */
void cl_sdpa_counts(const cl_sdpa *sd, int *verified, int *refused, const char **last_why);

#endif
