/* cl_clip_random: deterministic random weights for an open_clip CLIP of any config, made in
 * C (no Python), for benchmarks and tests that need a full-size model but no checkpoint.
 * Owns: the generator (seeded counter-based normal draws) and the init rules, which follow
 * the fixtures' DETAILS.md: LayerNorm weights 1 + 0.1 N; biases 0.1 N; matrices
 * N * fan_in^-1/2 (Linear and in_proj: in; conv1: 3*patch*patch; visual.proj and
 * text_projection: rows); token and class embeddings 0.5 N; positional embeddings 0.2 N;
 * logit_scale ln(1/0.07) + 0.5 N. Same config and seed, same bits, on any thread count. */
#ifndef CL_CLIP_RANDOM_H
#define CL_CLIP_RANDOM_H
#include <stdint.h>

#include "model/cl_clip.h"

/* The config's full open_clip state dict, F32, into out (initialised here). */
int cl_clip_random_weights(const cl_clip_config *cfg, uint64_t seed, cl_tmap *out, cl_error *e);
/* cl_clip_random_weights + cl_clip_load; the map is freed before returning. */
int cl_clip_random_load(const cl_clip_config *cfg, uint64_t seed, cl_backend *be, cl_clip **out,
                        cl_error *e);

#endif
