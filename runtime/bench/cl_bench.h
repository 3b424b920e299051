/* cl_bench: what `clade bench` measures with: clocks, the machine's fp32 GEMM peak, a
 * profiling wrapper around any backend, the Rare Species benchmark prompts, a generated set
 * of photo-like JPEGs, and the process's peak memory.
 * Owns: nothing global; every function is self-contained. */
#ifndef CL_BENCH_H
#define CL_BENCH_H
#include <stdint.h>
#include <stdio.h>

#include "cl_ops.h"
#include "core/cl_core.h"
#include "model/cl_clip.h"

/* Monotonic seconds. */
double cl_bench_now(void);

/* The machine's fp32 GEMM throughput in GFLOP/s: every OpenMP thread multiplies its own
 * n x n matrices with single-threaded cblas_sgemm (OpenBLAS) for half a second; the sum of
 * the threads' rates, best of reps rounds after a warm-up. Summing per-thread rates keeps
 * a core shared with another job from stalling the others, as a split GEMM would. */
double cl_bench_gemm_peak(int n, int reps);

/* The ceiling no fp32 GEMM can pass: every OpenMP thread runs independent register-only
 * FMA chains (AVX-512 where the CPU has it, else AVX2) for half a second; summed rates in
 * GFLOP/s, best of reps rounds after a warm-up. *isa names the vectors used. */
double cl_bench_fma_peak(int reps, const char **isa);

/* FLOPs of one forward pass, as the benchmarks count them (multiply-adds count 2):
 * one image (35.13 GFLOP for ViT-B/16) and one text of len tokens with full (non-causal)
 * attention scores (5.96 GFLOP at 77 tokens for ViT-B/16's text tower). */
double cl_bench_image_flops(const cl_clip_config *c);
double cl_bench_text_flops(const cl_clip_config *c, int len);
/* Parameters of the config's state dict, and the activation floats one chunk of n images
 * uses (the model's arena, the backend's workspace and the caller's pixels). */
int64_t cl_bench_param_count(const cl_clip_config *c);
int64_t cl_bench_image_act_floats(const cl_clip_config *c, int n);

/* --- profiling: a backend that times every call of the one it wraps --- */
/* The wrapper forwards every entry to inner and owns it: destroying the wrapper destroys
 * inner. Linear calls are grouped by (k, n, activation, accumulate). */
int cl_bench_prof_wrap(cl_backend *inner, cl_backend **out, cl_error *e);
void cl_bench_prof_reset(cl_backend *prof);
/* One line per op group, slowest first: seconds, share, calls, GFLOP/s for the GEMMs. */
void cl_bench_prof_print(cl_backend *prof, FILE *f, const char *title);

/* --- inputs --- */
/* The Rare Species zero-shot prompts, as the Lua library builds them: each bioclip81 template
 * filled with a class's taxonomic_common name (lua/clade/text_types.lua). nclasses < 1
 * or >= the 400 classes: every class; otherwise classes i*400/nclasses, spread evenly.
 * Prompts are ordered class by class. *texts is one malloc'd block (free(*texts)). */
int cl_bench_rare_prompts(int nclasses, char ***texts, int *n, int *classes_used, cl_error *e);

/* n photo-like JPEGs in dir (created if missing): smooth colour fields, soft shapes, texture
 * and sensor noise, quality 90, sizes from 500x375 to 1024x768 (landscape and portrait),
 * 4:2:0 and 4:4:4 alternating; the same seed gives the same bytes. *paths: n paths, one
 * malloc'd block (free(*paths)); *bytes: their total size. */
int cl_bench_make_jpegs(const char *dir, int n, uint64_t seed, char ***paths, int64_t *bytes,
                        cl_error *e);
/* Every *.jpg / *.jpeg / *.png directly in dir, sorted by name; same ownership. */
int cl_bench_list_images(const char *dir, char ***paths, int *n, cl_error *e);

/* --- memory --- */
/* Peak resident set size (getrusage) in MiB. */
double cl_bench_peak_rss_mb(void);
double cl_bench_rss_mb(void);
/* Resets the peak to the current RSS (Linux /proc/self/clear_refs); 0 when it could. */
int cl_bench_reset_peak_rss(void);

#endif
