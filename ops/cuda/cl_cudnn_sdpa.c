/* cl_cudnn_sdpa: fused attention through cuDNN's backend graph API (see cl_cudnn_sdpa.h).
 * The operation graph is the one cuDNN's own frontend lowers its SDPA node to for cuDNN
 * 9.x before 9.21 (cudnn-frontend: CompositeSDPANode and CompositeSoftmaxNode), the pattern
 * cuDNN's fused flash-attention engines recognise:
 *   S = Q K^T (fp32) -> S * scale -> [causal: S where row >= col, else the lowest float]
 *   -> softmax as max, sub, exp, sum, div (plus log + add into a virtual stats tensor, as the
 *   frontend emits in inference) -> P in the io type -> O = P V.
 * Tensors are [batch, head, row, column] with strides, so Q, K^T and V are plain views of
 * the packed qkv rows: no transposes or copies. Every failing cuDNN call is recorded by name
 * as the plan's refusal reason; a refused plan is never an error for the caller. */
#include "cl_cudnn_sdpa.h"

#include <cudnn.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLANS 16 /* shapes kept: one per (batch chunk, causal) in practice */
#define MAX_CFGS 8   /* engine configs tried per heuristic mode */

/* Tensor ids: the caller's tensors, the by-value scalars, then the virtual intermediates. */
enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_SCALE, UID_NEG, UID_VIRTUAL = 100 };

struct cl_sdpa {
  cudnnHandle_t handle;
  cudaStream_t stream;
  void *ws; /* device workspace shared by the plans (they run one at a time on the stream) */
  size_t ws_cap;
  cl_sdpa_plan *plans[MAX_PLANS];
  unsigned long long tick;
  char last_why[256];
};

/* cuDNN 9.19 marks the handle attributes deprecated, but released frontends still set them on
 * the operation graph and the execution plan; without a handle (or a device-property
 * descriptor) cuDNN cannot tell which GPU to plan for. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const cudnnBackendAttributeName_t ATTR_GRAPH_HANDLE = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
static const cudnnBackendAttributeName_t ATTR_PLAN_HANDLE = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

/* Records why (the call, cuDNN's status and its last detailed message) and returns -1. */
static int refuse(cl_sdpa_plan *p, const char *call, cudnnStatus_t st) {
  char detail[160] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  snprintf(p->why, sizeof p->why, "%s: %s%s%s", call, cudnnGetErrorString(st), detail[0] ? ": " : "", detail);
  return -1;
}

#define DNN(call)                                                                          \
  do {                                                                                     \
    cudnnStatus_t _st = (call);                                                            \
    if (_st != CUDNN_STATUS_SUCCESS) return refuse(p, #call, _st);                         \
  } while (0)
#define SET(d, name, type, n, ptr) DNN(cudnnBackendSetAttribute(d, name, type, n, ptr))
#define TRY(x)                                                                             \
  do {                                                                                     \
    if ((x) < 0) return -1;                                                                \
  } while (0)

/* A new descriptor, kept in the plan so that everything it references lives as long. */
static int mk(cl_sdpa_plan *p, cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t *out) {
  *out = NULL;
  if (p->ndesc == CL_SDPA_MAX_DESC) {
    snprintf(p->why, sizeof p->why, "more than %d cuDNN descriptors", CL_SDPA_MAX_DESC);
    return -1;
  }
  DNN(cudnnBackendCreateDescriptor(type, out));
  p->desc[p->ndesc++] = *out;
  return 0;
}

static int tensor(cl_sdpa_plan *p, cudnnBackendDescriptor_t *t, int64_t uid, cudnnDataType_t type,
                  const int64_t dim[4], const int64_t str[4], bool virt, bool byval) {
  const int64_t align = 16; /* every pointer is 16-byte aligned (checked by the caller) */
  TRY(mk(p, CUDNN_BACKEND_TENSOR_DESCRIPTOR, t));
  SET(*t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  SET(*t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  SET(*t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim);
  SET(*t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str);
  SET(*t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
  if (virt) SET(*t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
  if (byval) SET(*t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &byval);
  DNN(cudnnBackendFinalize(*t));
  return 0;
}

/* y = mode(x[, b][, t]) computed in prec; axis only for GEN_INDEX (-1: not set). */
static int pointwise(cl_sdpa_plan *p, cudnnBackendDescriptor_t *op, cudnnPointwiseMode_t mode,
                     cudnnDataType_t prec, int64_t axis, cudnnBackendDescriptor_t x,
                     cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y) {
  cudnnBackendDescriptor_t pw;
  TRY(mk(p, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw));
  SET(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  SET(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
  if (axis >= 0) SET(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
  DNN(cudnnBackendFinalize(pw));
  TRY(mk(p, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op));
  SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
  SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
  if (b) SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
  if (t) SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t);
  SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
  DNN(cudnnBackendFinalize(*op));
  return 0;
}

/* y = reduce(x) over the dimensions where y has extent 1, in fp32. */
static int reduction(cl_sdpa_plan *p, cudnnBackendDescriptor_t *op, cudnnReduceTensorOp_t mode,
                     cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  cudnnBackendDescriptor_t rd;
  TRY(mk(p, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, &rd));
  SET(rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode);
  SET(rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32);
  DNN(cudnnBackendFinalize(rd));
  TRY(mk(p, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, op));
  SET(*op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
  SET(*op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
  SET(*op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &rd);
  DNN(cudnnBackendFinalize(*op));
  return 0;
}

/* c = a b (batched over the first two dimensions), fp32 accumulation. */
static int matmul(cl_sdpa_plan *p, cudnnBackendDescriptor_t *op, cudnnBackendDescriptor_t a,
                  cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  cudnnBackendDescriptor_t md;
  TRY(mk(p, CUDNN_BACKEND_MATMUL_DESCRIPTOR, &md));
  SET(md, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32);
  DNN(cudnnBackendFinalize(md));
  TRY(mk(p, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, op));
  SET(*op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a);
  SET(*op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
  SET(*op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c);
  SET(*op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &md);
  DNN(cudnnBackendFinalize(*op));
  return 0;
}

/* The operation graph for p's shape, then the first engine config (heuristics mode A, then
 * the fallback list) whose execution plan finalizes. */
static int build(cl_sdpa *sd, cl_sdpa_plan *p) {
  const int64_t B = p->nseq, H = p->heads, S = p->len, D = p->dh, W = H * D;
  const cudnnDataType_t io = p->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT, i32 = CUDNN_DATA_INT32, b8 = CUDNN_DATA_BOOLEAN;
  /* element (b, h, s, d) of q is qkv[(b*S + s)*3W + h*D + d]; k^T swaps the last two; k and v
   * start W and 2W elements further (their pointers in the variant pack) */
  const int64_t qd[4] = {B, H, S, D}, qs[4] = {S * 3 * W, D, 3 * W, 1};
  const int64_t kd[4] = {B, H, D, S}, ks[4] = {S * 3 * W, D, 1, 3 * W};
  const int64_t od[4] = {B, H, S, D}, os[4] = {S * W, D, W, 1};
  const int64_t xd[4] = {B, H, S, S}, xs[4] = {H * S * S, S * S, S, 1}; /* scores */
  const int64_t rd[4] = {B, H, S, 1}, rs[4] = {H * S, S, 1, 1};         /* one per row */
  const int64_t one[4] = {1, 1, 1, 1};
  int64_t vid = UID_VIRTUAL;
  cudnnBackendDescriptor_t q, kt, v, o, scale, neg, s, x, mx, sub, ex, sum, lg, stats, pr;
  cudnnBackendDescriptor_t ops[16];
  int nops = 0;

  TRY(tensor(p, &q, UID_Q, io, qd, qs, false, false));
  TRY(tensor(p, &kt, UID_K, io, kd, ks, false, false));
  TRY(tensor(p, &v, UID_V, io, qd, qs, false, false));
  TRY(tensor(p, &o, UID_O, io, od, os, false, false));
  TRY(tensor(p, &scale, UID_SCALE, f32, one, one, false, true));
  TRY(tensor(p, &s, vid++, f32, xd, xs, true, false));
  TRY(matmul(p, &ops[nops++], q, kt, s));
  TRY(tensor(p, &x, vid++, f32, xd, xs, true, false));
  TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_MUL, f32, -1, s, scale, NULL, x));
  if (p->causal) { /* keys j <= i stay, the others get the lowest float (exp gives 0) */
    cudnnBackendDescriptor_t row, col, keep, masked;
    TRY(tensor(p, &neg, UID_NEG, f32, one, one, false, true));
    TRY(tensor(p, &row, vid++, i32, xd, xs, true, false));
    TRY(tensor(p, &col, vid++, i32, xd, xs, true, false));
    TRY(tensor(p, &keep, vid++, b8, xd, xs, true, false));
    TRY(tensor(p, &masked, vid++, f32, xd, xs, true, false));
    TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_GEN_INDEX, i32, 2, x, NULL, NULL, row));
    TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_GEN_INDEX, i32, 3, x, NULL, NULL, col));
    TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_CMP_GE, b8, -1, row, col, NULL, keep));
    TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_BINARY_SELECT, f32, -1, x, neg, keep, masked));
    x = masked;
  }
  TRY(tensor(p, &mx, vid++, f32, rd, rs, true, false));
  TRY(tensor(p, &sub, vid++, f32, xd, xs, true, false));
  TRY(tensor(p, &ex, vid++, f32, xd, xs, true, false));
  TRY(tensor(p, &sum, vid++, f32, rd, rs, true, false));
  TRY(tensor(p, &lg, vid++, f32, rd, rs, true, false));
  TRY(tensor(p, &stats, vid++, f32, rd, rs, true, false));
  TRY(tensor(p, &pr, vid++, io, xd, xs, true, false)); /* P enters the second matmul in io type */
  TRY(reduction(p, &ops[nops++], CUDNN_REDUCE_TENSOR_MAX, x, mx));
  TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_SUB, f32, -1, x, mx, NULL, sub));
  TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_EXP, f32, -1, sub, NULL, NULL, ex));
  TRY(reduction(p, &ops[nops++], CUDNN_REDUCE_TENSOR_ADD, ex, sum));
  TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_LOG, f32, -1, sum, NULL, NULL, lg));
  TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_ADD, f32, -1, mx, lg, NULL, stats));
  TRY(pointwise(p, &ops[nops++], CUDNN_POINTWISE_DIV, f32, -1, ex, sum, NULL, pr));
  TRY(matmul(p, &ops[nops++], pr, v, o));

  cudnnBackendDescriptor_t graph;
  TRY(mk(p, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
  SET(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops);
  SET(graph, ATTR_GRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &sd->handle);
  DNN(cudnnBackendFinalize(graph));

  static const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
  for (int mi = 0; mi < 2 && !p->plan; mi++) {
    cudnnBackendDescriptor_t heur, cfg[MAX_CFGS];
    int64_t n = 0, got = 0;
    TRY(mk(p, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
    SET(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph);
    SET(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &modes[mi]);
    cudnnStatus_t st = cudnnBackendFinalize(heur);
    if (st != CUDNN_STATUS_SUCCESS) {
      refuse(p, "cudnnBackendFinalize(engine heuristics)", st);
      continue;
    }
    /* how many configs, then that many caller-created ENGINECFG descriptors to fill */
    st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, NULL);
    if (st != CUDNN_STATUS_SUCCESS) {
      refuse(p, "cudnnBackendGetAttribute(CUDNN_ATTR_ENGINEHEUR_RESULTS count)", st);
      continue;
    }
    if (n > MAX_CFGS) n = MAX_CFGS;
    for (int64_t i = 0; i < n; i++) TRY(mk(p, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[i]));
    if (n > 0) {
      st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &got, cfg);
      if (st != CUDNN_STATUS_SUCCESS) {
        refuse(p, "cudnnBackendGetAttribute(CUDNN_ATTR_ENGINEHEUR_RESULTS)", st);
        continue;
      }
    }
    if (got <= 0) snprintf(p->why, sizeof p->why, "cuDNN heuristics (mode %d) offer no engine", (int)modes[mi]);
    for (int64_t i = 0; i < got && i < n && !p->plan; i++) {
      cudnnBackendDescriptor_t plan;
      TRY(mk(p, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan));
      SET(plan, ATTR_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &sd->handle);
      SET(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg[i]);
      st = cudnnBackendFinalize(plan);
      if (st == CUDNN_STATUS_SUCCESS) p->plan = plan;
      else refuse(p, "cudnnBackendFinalize(execution plan)", st);
    }
  }
  if (!p->plan) return -1;
  int64_t cnt = 0;
  DNN(cudnnBackendGetAttribute(p->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &cnt,
                               &p->workspace));
  if (p->workspace < 0) p->workspace = 0;
  p->why[0] = '\0';
  return 0;
}

static void drop_descriptors(cl_sdpa_plan *p) {
  while (p->ndesc > 0) cudnnBackendDestroyDescriptor(p->desc[--p->ndesc]);
  p->plan = NULL;
}

static void plan_free(cl_sdpa_plan *p) {
  if (!p) return;
  drop_descriptors(p);
  free(p);
}

cl_sdpa *cl_sdpa_create(cudaStream_t s, char *why, size_t nwhy) {
  const size_t ver = cudnnGetVersion();
  if (ver < 90000) {
    snprintf(why, nwhy, "cuDNN %zu is older than 9.0", ver);
    return NULL;
  }
  cl_sdpa *sd = calloc(1, sizeof *sd);
  if (!sd) {
    snprintf(why, nwhy, "out of memory");
    return NULL;
  }
  sd->stream = s;
  cudnnStatus_t st = cudnnCreate(&sd->handle);
  if (st == CUDNN_STATUS_SUCCESS) {
    st = cudnnSetStream(sd->handle, s);
    if (st != CUDNN_STATUS_SUCCESS) snprintf(why, nwhy, "cudnnSetStream failed: %s", cudnnGetErrorString(st));
  } else {
    sd->handle = NULL;
    snprintf(why, nwhy, "cudnnCreate failed: %s", cudnnGetErrorString(st));
  }
  if (st != CUDNN_STATUS_SUCCESS) {
    cl_sdpa_destroy(sd);
    cudaGetLastError(); /* a failed cuDNN init must not surface as a later launch error */
    return NULL;
  }
  return sd;
}

void cl_sdpa_destroy(cl_sdpa *sd) {
  if (!sd) return;
  if (sd->stream) cudaStreamSynchronize(sd->stream);
  for (int i = 0; i < MAX_PLANS; i++) plan_free(sd->plans[i]);
  cudaFree(sd->ws);
  if (sd->handle) cudnnDestroy(sd->handle);
  free(sd);
}

cl_sdpa_plan *cl_sdpa_get(cl_sdpa *sd, int nseq, int len, int heads, int dh, int causal, int bf16) {
  int slot = 0;
  for (int i = 0; i < MAX_PLANS; i++) {
    cl_sdpa_plan *p = sd->plans[i];
    if (p && p->nseq == nseq && p->len == len && p->heads == heads && p->dh == dh && p->causal == causal &&
        p->bf16 == bf16) {
      p->used = ++sd->tick;
      return p;
    }
    if (!p) slot = i;
    else if (sd->plans[slot] && p->used < sd->plans[slot]->used) slot = i;
  }
  cl_sdpa_plan *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->nseq = nseq, p->len = len, p->heads = heads, p->dh = dh, p->causal = causal, p->bf16 = bf16;
  p->scale = (float)(1.0 / sqrt((double)dh)); /* as the own kernel scales q */
  p->neg = -FLT_MAX;                           /* the frontend's causal mask value */
  if (build(sd, p) < 0) {
    p->state = CL_SDPA_REFUSED;
    drop_descriptors(p); /* the struct stays, so the shape is not tried again */
    snprintf(sd->last_why, sizeof sd->last_why, "%s", p->why);
  }
  if (sd->plans[slot]) cudaStreamSynchronize(sd->stream); /* an evicted plan may still be queued */
  plan_free(sd->plans[slot]);
  sd->plans[slot] = p;
  p->used = ++sd->tick;
  return p;
}

static int run_failed(cl_sdpa *sd, cl_sdpa_plan *p) {
  p->state = CL_SDPA_REFUSED;
  snprintf(sd->last_why, sizeof sd->last_why, "%s", p->why);
  return -1;
}

int cl_sdpa_run(cl_sdpa *sd, cl_sdpa_plan *p, void *o, const void *qkv) {
  if (!p->plan) return -1;
  if ((size_t)p->workspace > sd->ws_cap) {
    cudaError_t ce = cudaStreamSynchronize(sd->stream); /* queued plans may use the old one */
    if (ce == cudaSuccess) ce = cudaFree(sd->ws);
    sd->ws = NULL, sd->ws_cap = 0;
    if (ce == cudaSuccess) ce = cudaMalloc(&sd->ws, (size_t)p->workspace);
    if (ce != cudaSuccess) {
      cudaGetLastError();
      snprintf(p->why, sizeof p->why, "cudaMalloc of a %lld-byte cuDNN workspace failed: %s",
               (long long)p->workspace, cudaGetErrorString(ce));
      return run_failed(sd, p);
    }
    sd->ws_cap = (size_t)p->workspace;
  }
  const size_t wbytes = (size_t)p->heads * p->dh * 2; /* one of q | k | v, 16-bit elements */
  int64_t uid[6] = {UID_Q, UID_K, UID_V, UID_O, UID_SCALE, UID_NEG};
  /* by-value tensors are passed as host pointers to their value */
  void *ptr[6] = {(void *)qkv, (char *)qkv + wbytes, (char *)qkv + 2 * wbytes, o, &p->scale, &p->neg};
  const int64_t n = p->causal ? 6 : 5;
  void *ws = sd->ws;
  cudnnBackendDescriptor_t vp = NULL;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
  const char *call = "cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)";
  if (st == CUDNN_STATUS_SUCCESS) {
    call = "cudnnBackendSetAttribute(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS)";
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uid);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    call = "cudnnBackendSetAttribute(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS)";
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptr);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    call = "cudnnBackendSetAttribute(CUDNN_ATTR_VARIANT_PACK_WORKSPACE)";
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    call = "cudnnBackendFinalize(variant pack)";
    st = cudnnBackendFinalize(vp);
  }
  if (st == CUDNN_STATUS_SUCCESS) {
    call = "cudnnBackendExecute";
    st = cudnnBackendExecute(sd->handle, p->plan, vp);
  }
  if (vp) cudnnBackendDestroyDescriptor(vp); /* execution is queued; the pack was read */
  if (st != CUDNN_STATUS_SUCCESS) {
    refuse(p, call, st);
    return run_failed(sd, p);
  }
  return 0;
}

void cl_sdpa_reject(cl_sdpa *sd, cl_sdpa_plan *p, const char *why) {
  snprintf(p->why, sizeof p->why, "%s", why);
  run_failed(sd, p);
}

void cl_sdpa_counts(const cl_sdpa *sd, int *verified, int *refused, const char **last_why) {
  *verified = *refused = 0;
  *last_why = "";
  if (!sd) return;
  for (int i = 0; i < MAX_PLANS; i++) {
    const cl_sdpa_plan *p = sd->plans[i];
    if (p && p->state == CL_SDPA_VERIFIED) ++*verified;
    if (p && p->state == CL_SDPA_REFUSED) ++*refused;
  }
  *last_why = sd->last_why;
}
