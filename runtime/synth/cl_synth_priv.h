/* cl_synth_priv: what the generators of the sample suite share (cl_synth.c, the BIOSCAN
 * sample in cl_synth_bioscan.c): the keyed PRNG, the rare_sample class looks and renderer,
 * JPEG writing and the manifest string buffer. */
#ifndef CL_SYNTH_PRIV_H
#define CL_SYNTH_PRIV_H
#include <stddef.h>
#include <stdint.h>

#include "../core/cl_core.h"

/* Every generator includes this first: same seed, same bytes, whatever the build flags: no
 * fused multiply-adds, because -march=x86-64-v3 would otherwise contract a*b+c and move pixels
 * by one level. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* splitmix64 + Box-Muller, keyed by (seed, purpose, index): independent of generation order */
typedef struct cl_synth_rng {
  uint64_t s;
  int has_spare;
  double spare;
} cl_synth_rng;
cl_synth_rng cl_synth_rng_for(uint64_t seed, const char *what, uint64_t index);
double cl_synth_unif(cl_synth_rng *r); /* [0, 1) */

/* A sample value rounded and clipped to 0..255. */
unsigned char cl_synth_u8(double v);
/* HSV (hue wraps around 1) to RGB in 0..1. */
void cl_synth_hsv(double h, double s, double v, double rgb[3]);

/* What makes a class recognisable in an image: two colours and a pattern. */
typedef struct cl_synth_look {
  double hue1, sat1, val1, hue2, sat2, val2;
  int pattern; /* 0 stripes, 1 checker, 2 dots, 3 rings */
  double freq, angle;
} cl_synth_look;
cl_synth_look cl_synth_class_look(uint64_t seed, int slot);
/* One RGB image (w x h) of the class with look l, jittered by r, with a distractor blob. */
void cl_synth_render(const cl_synth_look *l, cl_synth_rng *r, int w, int h, unsigned char *rgb);
/* samp: a TJSAMP_* chroma subsampling */
int cl_synth_write_jpeg(const char *path, const unsigned char *px, int w, int h, int gray, int samp, cl_error *e);

/* One F32 tensor of the random model put into m, drawn with the fixtures' DETAILS.md
 * "Random initialization" rules by kind: LayerNorm weights 1 + 0.1 N, biases 0.1 N, matrices
 * N / sqrt(arg) (arg = fan in), embeddings 0.5 N, positional embeddings 0.2 N, or the constant
 * arg. Keyed by (seed, name). Returns its number of values. */
enum { CL_SYNTH_LN_W, CL_SYNTH_BIAS, CL_SYNTH_MAT, CL_SYNTH_EMB, CL_SYNTH_POS, CL_SYNTH_CONST };
struct cl_tmap;
long cl_synth_gen(struct cl_tmap *m, uint64_t seed, const char *name, int kind, double arg, int ndim, int64_t d0,
                  int64_t d1, int64_t d2, int64_t d3);

/* The safetensors metadata of a generated model: {"format":"pt","clade_synth":"RANDOM weights
 * (clade synth --seed N); not a trained model"}; free with cJSON_free. */
char *cl_synth_random_meta(uint64_t seed);

/* A growable string for the manifests. */
typedef struct cl_synth_sbuf {
  char *s;
  size_t n, cap;
} cl_synth_sbuf;
void cl_synth_sb_puts(cl_synth_sbuf *b, const char *s);
/* One CSV field, quoted (RFC 4180) only when it must be; NULL writes an empty cell. */
void cl_synth_sb_field(cl_synth_sbuf *b, const char *s, int last);

#endif
