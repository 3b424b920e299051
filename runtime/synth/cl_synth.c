/* cl_synth: generated model and datasets. One PRNG (splitmix64 + Box-Muller) keyed by
 * (seed, purpose, index) so each tensor and image is independent of generation order. */
#include "cl_synth.h"
#include "cl_synth_priv.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "../io/cl_manifest.h"
#include "../io/cl_safetensors.h"
#include "../model/cl_clip.h"
#include "../tensor/cl_tensor.h"

/* ---- PRNG ---- */

typedef cl_synth_rng rng;

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

rng cl_synth_rng_for(uint64_t seed, const char *what, uint64_t index) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a 64 of the purpose */
  for (const char *p = what; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  uint64_t s = seed;
  uint64_t a = splitmix64(&s) ^ h;
  a = splitmix64(&a) ^ index;
  rng r = {splitmix64(&a), 0, 0};
  return r;
}

double cl_synth_unif(rng *r) { return (double)(splitmix64(&r->s) >> 11) * 0x1.0p-53; }

static double gauss(rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1 = 1.0 - cl_synth_unif(r); /* (0,1]: log stays finite */
  double u2 = cl_synth_unif(r);
  double rad = sqrt(-2.0 * log(u1));
  r->spare = rad * sin(2 * M_PI * u2);
  r->has_spare = 1;
  return rad * cos(2 * M_PI * u2);
}

/* ---- files ---- */

typedef cl_synth_sbuf sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->s = realloc(b->s, b->cap);
    if (!b->s) { fprintf(stderr, "clade: out of memory\n"); abort(); }
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

void cl_synth_sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* One CSV field, quoted (RFC 4180) only when it must be; NULL writes an empty cell. */
void cl_synth_sb_field(sbuf *b, const char *s, int last) {
  if (s && strpbrk(s, ",\"\r\n")) {
    cl_synth_sb_puts(b, "\"");
    for (const char *p = s; *p; p++) {
      if (*p == '"') sb_add(b, "\"", 1); /* a quote is doubled */
      sb_add(b, p, 1);
    }
    cl_synth_sb_puts(b, "\"");
  } else if (s) {
    cl_synth_sb_puts(b, s);
  }
  cl_synth_sb_puts(b, last ? "\n" : ",");
}

/* ---- model ---- */

char *cl_synth_random_meta(uint64_t seed) {
  cJSON *o = cJSON_CreateObject();
  char note[128];
  snprintf(note, sizeof note, "RANDOM weights (clade synth --seed %llu); not a trained model", (unsigned long long)seed);
  cJSON_AddStringToObject(o, "format", "pt");
  cJSON_AddStringToObject(o, "clade_synth", note);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

long cl_synth_gen(cl_tmap *m, uint64_t seed, const char *name, int kind, double arg, int ndim, int64_t d0,
                  int64_t d1, int64_t d2, int64_t d3) {
  int64_t shape[4] = {d0, d1, d2, d3};
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *v = cl_xmalloc((size_t)n * sizeof *v);
  rng r = cl_synth_rng_for(seed, name, 0);
  for (int64_t i = 0; i < n; i++) {
    double z = kind == CL_SYNTH_CONST ? 0 : gauss(&r);
    switch (kind) {
    case CL_SYNTH_LN_W: v[i] = (float)(1.0 + 0.1 * z); break;
    case CL_SYNTH_BIAS: v[i] = (float)(0.1 * z); break;
    case CL_SYNTH_MAT: v[i] = (float)(z / sqrt(arg)); break; /* arg = fan_in */
    case CL_SYNTH_EMB: v[i] = (float)(0.5 * z); break;
    case CL_SYNTH_POS: v[i] = (float)(0.2 * z); break;
    default: v[i] = (float)arg; break;
    }
  }
  cl_tmap_put_copy(m, name, CL_F32, ndim, shape, v);
  free(v);
  return (long)n;
}

static long gen_tower(cl_tmap *m, uint64_t seed, const char *prefix, int width, int layers) {
  long np = 0;
  char k[256];
  const int W = width;
#define G(suffix, kind, arg, nd, a, b)                                                            \
  (snprintf(k, sizeof k, "%s.resblocks.%d.%s", prefix, i, suffix),                                 \
   np += cl_synth_gen(m, seed, k, kind, arg, nd, a, b, 0, 0))
  for (int i = 0; i < layers; i++) {
    G("ln_1.weight", CL_SYNTH_LN_W, 0, 1, W, 0);
    G("ln_1.bias", CL_SYNTH_BIAS, 0, 1, W, 0);
    G("attn.in_proj_weight", CL_SYNTH_MAT, W, 2, 3 * W, W);
    G("attn.in_proj_bias", CL_SYNTH_BIAS, 0, 1, 3 * W, 0);
    G("attn.out_proj.weight", CL_SYNTH_MAT, W, 2, W, W);
    G("attn.out_proj.bias", CL_SYNTH_BIAS, 0, 1, W, 0);
    G("ln_2.weight", CL_SYNTH_LN_W, 0, 1, W, 0);
    G("ln_2.bias", CL_SYNTH_BIAS, 0, 1, W, 0);
    G("mlp.c_fc.weight", CL_SYNTH_MAT, W, 2, 4 * W, W);
    G("mlp.c_fc.bias", CL_SYNTH_BIAS, 0, 1, 4 * W, 0);
    G("mlp.c_proj.weight", CL_SYNTH_MAT, 4 * W, 2, W, 4 * W);
    G("mlp.c_proj.bias", CL_SYNTH_BIAS, 0, 1, W, 0);
  }
#undef G
  return np;
}

int cl_synth_model(const char *model_dir, uint64_t seed, long *n_params, cl_error *e) {
  int rc = cl_mkdirs(model_dir, e);
  if (rc) return rc;
  const int W = CL_SYNTH_WIDTH, L = CL_SYNTH_LAYERS, E = CL_SYNTH_EMBED;
  const int grid = 224 / 16, ctx = 77, vocab = 49408;
  char path[4096];
  /* open_clip's hub config (OpenAI's mean and std), as `clade train` writes it */
  cl_clip_config c;
  cl_clip_config_default(&c);
  c.embed_dim = E;
  c.vision = (cl_clip_vision_cfg){.image_size = 224, .patch_size = 16, .width = W, .layers = L, .head_width = 64,
                                  .mlp_ratio = 4.0};
  c.text = (cl_clip_text_cfg){.context_length = ctx, .vocab_size = vocab, .width = W, .heads = W / 64, .layers = L,
                              .mlp_ratio = 4.0};
  char *cfg = cl_clip_config_to_json(&c);
  snprintf(path, sizeof path, "%s/open_clip_config.json", model_dir);
  rc = cl_write_file(path, cfg, strlen(cfg), e);
  free(cfg);
  if (rc) return rc;

  /* open_clip's state_dict order: CLIP's own parameters, then visual, transformer,
   * token_embedding, ln_final. */
  cl_tmap m;
  cl_tmap_init(&m);
  long np = 0;
  np += cl_synth_gen(&m, seed, "positional_embedding", CL_SYNTH_POS, 0, 2, ctx, W, 0, 0);
  np += cl_synth_gen(&m, seed, "text_projection", CL_SYNTH_MAT, W, 2, W, E, 0, 0);
  /* ln(100): exp gives open_clip's maximal scale, 100, a readable number. */
  np += cl_synth_gen(&m, seed, "logit_scale", CL_SYNTH_CONST, log(100.0), 0, 0, 0, 0, 0);
  np += cl_synth_gen(&m, seed, "visual.class_embedding", CL_SYNTH_EMB, 0, 1, W, 0, 0, 0);
  np += cl_synth_gen(&m, seed, "visual.positional_embedding", CL_SYNTH_POS, 0, 2, 1 + grid * grid, W, 0, 0);
  np += cl_synth_gen(&m, seed, "visual.proj", CL_SYNTH_MAT, W, 2, W, E, 0, 0);
  np += cl_synth_gen(&m, seed, "visual.conv1.weight", CL_SYNTH_MAT, 3 * 16 * 16, 4, W, 3, 16, 16);
  np += cl_synth_gen(&m, seed, "visual.ln_pre.weight", CL_SYNTH_LN_W, 0, 1, W, 0, 0, 0);
  np += cl_synth_gen(&m, seed, "visual.ln_pre.bias", CL_SYNTH_BIAS, 0, 1, W, 0, 0, 0);
  np += gen_tower(&m, seed, "visual.transformer", W, L);
  np += cl_synth_gen(&m, seed, "visual.ln_post.weight", CL_SYNTH_LN_W, 0, 1, W, 0, 0, 0);
  np += cl_synth_gen(&m, seed, "visual.ln_post.bias", CL_SYNTH_BIAS, 0, 1, W, 0, 0, 0);
  np += gen_tower(&m, seed, "transformer", W, L);
  np += cl_synth_gen(&m, seed, "token_embedding.weight", CL_SYNTH_EMB, 0, 2, vocab, W, 0, 0);
  np += cl_synth_gen(&m, seed, "ln_final.weight", CL_SYNTH_LN_W, 0, 1, W, 0, 0, 0);
  np += cl_synth_gen(&m, seed, "ln_final.bias", CL_SYNTH_BIAS, 0, 1, W, 0, 0, 0);

  char *meta = cl_synth_random_meta(seed);
  snprintf(path, sizeof path, "%s/open_clip_model.safetensors", model_dir);
  rc = cl_st_save(path, &m, meta, e);
  cJSON_free(meta);
  cl_tmap_free(&m);
  if (n_params) *n_params = np;
  return rc;
}

/* ---- images ---- */

unsigned char cl_synth_u8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (unsigned char)(v + 0.5); }

void cl_synth_hsv(double h, double s, double v, double rgb[3]) {
  h = fmod(h, 1.0) * 6;
  if (h < 0) h += 6;
  int i = (int)h;
  double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  memcpy(rgb, r[i % 6], sizeof r[0]);
}

typedef cl_synth_look look;

look cl_synth_class_look(uint64_t seed, int slot) {
  rng r = cl_synth_rng_for(seed, "rare-class", (uint64_t)slot);
  look l;
  /* Golden-ratio hue steps keep any number of classes far apart on the colour wheel. */
  l.hue1 = fmod(0.08 + slot * 0.6180339887 + 0.04 * cl_synth_unif(&r), 1.0);
  l.sat1 = 0.55 + 0.35 * cl_synth_unif(&r);
  l.val1 = 0.6 + 0.35 * cl_synth_unif(&r);
  l.hue2 = l.hue1 + 0.3 + 0.4 * cl_synth_unif(&r);
  l.sat2 = 0.3 + 0.5 * cl_synth_unif(&r);
  l.val2 = 0.12 + 0.3 * cl_synth_unif(&r);
  l.pattern = slot % 4;
  l.freq = 2.5 + 6.0 * cl_synth_unif(&r); /* cycles per short side */
  l.angle = M_PI * cl_synth_unif(&r);
  return l;
}

/* Renders one rare_sample image (RGB, w x h) of the class with look l. r jitters pose,
 * colour, brightness and noise, and adds a distracting blob of another colour, so that one
 * example per class is not enough and few-shot accuracy rises with shots. */
void cl_synth_render(const look *l, rng *r, int w, int h, unsigned char *rgb) {
  double dx = 0.12 * (2 * cl_synth_unif(r) - 1), dy = 0.12 * (2 * cl_synth_unif(r) - 1);
  double f = l->freq * (0.8 + 0.4 * cl_synth_unif(r));
  double ang = l->angle + 0.35 * (2 * cl_synth_unif(r) - 1);
  double phase = 2 * M_PI * cl_synth_unif(r), phase2 = 2 * M_PI * cl_synth_unif(r);
  double dhue = 0.05 * (2 * cl_synth_unif(r) - 1), bright = 0.8 + 0.4 * cl_synth_unif(r);
  double c1[3], c2[3], c3[3];
  cl_synth_hsv(l->hue1 + dhue, l->sat1 * (0.8 + 0.2 * cl_synth_unif(r)), l->val1, c1);
  cl_synth_hsv(l->hue2 + dhue, l->sat2, l->val2, c2);
  /* One draw per statement: C leaves the order of argument evaluation open. */
  double h3 = cl_synth_unif(r), s3 = 0.3 + 0.6 * cl_synth_unif(r), v3 = 0.3 + 0.6 * cl_synth_unif(r);
  cl_synth_hsv(h3, s3, v3, c3);
  /* The distractor: a soft ellipse anywhere, 0.16..0.5 of the short side across. */
  double bx = cl_synth_unif(r) - 0.5, by = cl_synth_unif(r) - 0.5, brad = 0.08 + 0.17 * cl_synth_unif(r);
  double bang = M_PI * cl_synth_unif(r), bel = 0.4 + 0.6 * cl_synth_unif(r);
  double sigma = 4 + 8 * cl_synth_unif(r);
  double ca = cos(ang), sa = sin(ang), cb = cos(bang), sb = sin(bang), S = w < h ? w : h;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double px = (x - 0.5 * w) / S - dx, py = (y - 0.5 * h) / S - dy;
      double a = ca * px + sa * py, b = -sa * px + ca * py, t;
      switch (l->pattern) {
      case 0: t = 0.5 + 0.5 * sin(2 * M_PI * f * a + phase); break;
      case 1: t = 0.5 + 0.5 * tanh(3 * sin(2 * M_PI * f * a + phase) * sin(2 * M_PI * f * b + phase2)); break;
      case 2: {
        double c = sin(2 * M_PI * f * a + phase) * sin(2 * M_PI * f * b + phase2);
        t = 1 / (1 + exp(-12 * (c - 0.3)));
        break;
      }
      default: t = 0.5 + 0.5 * sin(2 * M_PI * f * sqrt(a * a + b * b) + phase); break;
      }
      double qx = (x - 0.5 * w) / S - bx, qy = (y - 0.5 * h) / S - by;
      double u = (cb * qx + sb * qy) / brad, v = (-sb * qx + cb * qy) / (brad * bel);
      double d = sqrt(u * u + v * v), blob = d < 0.9 ? 1 : d > 1.1 ? 0 : (1.1 - d) / 0.2;
      double vign = 1 - 0.35 * (px * px + py * py);
      for (int c = 0; c < 3; c++) {
        double col = c2[c] + (c1[c] - c2[c]) * t;
        col += (c3[c] - col) * blob;
        rgb[((size_t)y * w + x) * 3 + c] = cl_synth_u8(255 * col * bright * vign + sigma * gauss(r));
      }
    }
}

int cl_synth_write_jpeg(const char *path, const unsigned char *px, int w, int h, int gray, int samp,
                      cl_error *e) {
  tjhandle tj = tjInitCompress();
  if (!tj) return cl_err(e, CL_ENOMEM, "%s: cannot start the JPEG encoder", path);
  unsigned char *jpg = NULL;
  unsigned long len = 0;
  int rc = CL_OK;
  if (tjCompress2(tj, px, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB, &jpg, &len, gray ? TJSAMP_GRAY : samp, 90,
                  TJFLAG_ACCURATEDCT) != 0)
    rc = cl_err(e, CL_EFORMAT, "%s: JPEG encoding failed: %s", path, tjGetErrorStr2(tj));
  else
    rc = cl_write_file(path, jpg, len, e);
  tjFree(jpg);
  tjDestroy(tj);
  return rc;
}

static int write_png(const char *path, const unsigned char *px, int w, int h, int channels, cl_error *e) {
  spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  if (!ctx) return cl_err(e, CL_ENOMEM, "%s: cannot start the PNG encoder", path);
  struct spng_ihdr ihdr = {0};
  ihdr.width = (uint32_t)w;
  ihdr.height = (uint32_t)h;
  ihdr.bit_depth = 8;
  ihdr.color_type = channels == 1 ? SPNG_COLOR_TYPE_GRAYSCALE : SPNG_COLOR_TYPE_TRUECOLOR;
  int rc = CL_OK, err;
  if ((err = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1)) || (err = spng_set_ihdr(ctx, &ihdr)) ||
      (err = spng_encode_image(ctx, px, (size_t)w * h * channels, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE))) {
    rc = cl_err(e, CL_EFORMAT, "%s: PNG encoding failed: %s", path, spng_strerror(err));
  } else {
    size_t len = 0;
    void *png = spng_get_png_buffer(ctx, &len, &err);
    if (!png)
      rc = cl_err(e, CL_EFORMAT, "%s: PNG encoding failed: %s", path, spng_strerror(err));
    else
      rc = cl_write_file(path, png, len, e);
    free(png);
  }
  spng_ctx_free(ctx);
  return rc;
}

/* ---- rare_sample ---- */

/* Picks k classes spread across phyla: round-robin over phyla (in order of first appearance),
 * within a phylum over its classes (ranks), taking each group's classes in manifest order. */
static int pick_spread(const cl_manifest *m, int k, int *out) {
  int n = m->n_classes;
  int *phy = cl_xmalloc((size_t)n * sizeof *phy), *grp = cl_xmalloc((size_t)n * sizeof *grp);
  int *used = cl_xcalloc((size_t)n, sizeof *used);
  int nphy = 0;
  /* phy[i]: phylum id of class i; grp[i]: group (phylum, cls) id; both by first appearance. */
  for (int i = 0; i < n; i++) {
    const cl_manifest_class *c = &m->classes[i];
    phy[i] = grp[i] = -1;
    for (int j = 0; j < i && phy[i] < 0; j++) {
      const cl_manifest_class *d = &m->classes[j];
      if (!strcmp(c->kingdom ? c->kingdom : "", d->kingdom ? d->kingdom : "") &&
          !strcmp(c->phylum ? c->phylum : "", d->phylum ? d->phylum : ""))
        phy[i] = phy[j];
    }
    if (phy[i] < 0) phy[i] = nphy++;
    for (int j = 0; j < i && grp[i] < 0; j++)
      if (phy[j] == phy[i] && !strcmp(m->classes[i].cls ? m->classes[i].cls : "",
                                      m->classes[j].cls ? m->classes[j].cls : ""))
        grp[i] = grp[j];
    if (grp[i] < 0) grp[i] = i; /* a group is named by its first class */
  }
  int got = 0;
  for (int round = 0; got < k; round++) {
    int progress = 0;
    for (int p = 0; p < nphy && got < k; p++) {
      /* The phylum's groups in order; this round takes from group (round mod ngroups),
       * falling through to the next group that still has classes. */
      int groups[512], ng = 0;
      for (int i = 0; i < n && ng < 512; i++)
        if (phy[i] == p && grp[i] == i) groups[ng++] = i;
      for (int t = 0; t < ng; t++) {
        int g = groups[(round + t) % ng], pick = -1;
        for (int i = 0; i < n && pick < 0; i++)
          if (grp[i] == g && !used[i]) pick = i;
        if (pick >= 0) {
          used[pick] = 1;
          got++;
          progress = 1;
          break;
        }
      }
    }
    if (!progress) break;
  }
  /* Keep the manifest's class order. */
  int j = 0;
  for (int i = 0; i < n; i++)
    if (used[i]) out[j++] = i;
  free(phy);
  free(grp);
  free(used);
  return got;
}

static const int rare_sizes[3][2] = {{320, 240}, {500, 375}, {240, 320}};

int cl_synth_rare(const char *dataset_dir, const char *src_manifest, uint64_t seed, int k, int per_class,
                  cl_error *e) {
  cl_manifest src;
  int rc = cl_manifest_load(src_manifest, &src, e);
  if (rc) return cl_err_wrap(e, "reading the Rare Species class list");
  if (!src.has_taxonomy || src.n_classes < 1) {
    cl_manifest_free(&src);
    return cl_err(e, CL_EFORMAT, "%s: no taxonomy columns; expected the Rare Species manifest", src_manifest);
  }
  if (k < 1 || k > src.n_classes || per_class < 1) {
    int n = src.n_classes;
    cl_manifest_free(&src);
    return cl_err(e, CL_EINVAL, "rare_sample: need 1..%d classes and at least 1 image per class (got %d, %d)", n,
                  k, per_class);
  }
  int *pick = cl_xmalloc((size_t)k * sizeof *pick);
  pick_spread(&src, k, pick);

  char path[4096];
  snprintf(path, sizeof path, "%s/images", dataset_dir);
  if ((rc = cl_mkdirs(path, e))) goto done;
  sbuf csv = {0};
  cl_synth_sb_puts(&csv, ",kingdom,phylum,cls,order,family,genus,species,common_name,filepath,class\n");
  unsigned char *px = cl_xmalloc(500 * 500 * 3);
  int row = 0;
  for (int s = 0; s < k && !rc; s++) {
    const cl_manifest_class *c = &src.classes[pick[s]];
    look l = cl_synth_class_look(seed, s);
    int gray = k >= 3 && s == 2; /* one grayscale class: decoders must keep the image's mode */
    for (int j = 0; j < per_class && !rc; j++, row++) {
      rng r = cl_synth_rng_for(seed, "rare-image", (uint64_t)s << 32 | (uint64_t)j);
      int w = rare_sizes[(s + j) % 3][0], h = rare_sizes[(s + j) % 3][1];
      cl_synth_render(&l, &r, w, h, px);
      if (gray)
        for (int i = 0; i < w * h; i++)
          px[i] = (unsigned char)((299 * px[3 * i] + 587 * px[3 * i + 1] + 114 * px[3 * i + 2] + 500) / 1000);
      char rel[64], idx[32];
      snprintf(rel, sizeof rel, "images/%04d.jpg", row + 1);
      snprintf(path, sizeof path, "%s/%s", dataset_dir, rel);
      rc = cl_synth_write_jpeg(path, px, w, h, gray, j % 2 ? TJSAMP_444 : TJSAMP_420, e);
      snprintf(idx, sizeof idx, "%d", row);
      cl_synth_sb_field(&csv, idx, 0);
      cl_synth_sb_field(&csv, c->kingdom, 0);
      cl_synth_sb_field(&csv, c->phylum, 0);
      cl_synth_sb_field(&csv, c->cls, 0);
      cl_synth_sb_field(&csv, c->order, 0);
      cl_synth_sb_field(&csv, c->family, 0);
      cl_synth_sb_field(&csv, c->genus, 0);
      cl_synth_sb_field(&csv, c->species, 0);
      cl_synth_sb_field(&csv, c->common_name, 0);
      cl_synth_sb_field(&csv, rel, 0);
      cl_synth_sb_field(&csv, c->label, 1);
    }
  }
  free(px);
  if (!rc) {
    snprintf(path, sizeof path, "%s/metadata.csv", dataset_dir);
    rc = cl_write_file(path, csv.s, csv.n, e);
  }
  free(csv.s);
done:
  free(pick);
  cl_manifest_free(&src);
  return rc;
}

/* ---- plankton_sample ---- */

/* 1 inside, 0 outside, a linear ramp over ~1.5 px: soft edges like a real micrograph. */
static double soft(double inside_by, double px) {
  double t = inside_by / (1.5 * px) + 0.5;
  return t < 0 ? 0 : t > 1 ? 1 : t;
}

/* Renders one plankton image (gray, w x h): shape by class slot, pose and brightness jittered. */
static void render_plankton(int shape, rng *r, int w, int h, unsigned char *g) {
  double S = w < h ? w : h;
  double cx = 0.5 * w + 0.1 * S * (2 * cl_synth_unif(r) - 1), cy = 0.5 * h + 0.1 * S * (2 * cl_synth_unif(r) - 1);
  double R = 0.36 * S * (0.8 + 0.4 * cl_synth_unif(r));
  double th = 2 * M_PI * cl_synth_unif(r), ct = cos(th), st = sin(th);
  double bg = 18 + 14 * cl_synth_unif(r), fg = 150 + 80 * cl_synth_unif(r), sigma = 2 + 3 * cl_synth_unif(r);
  int nchain = 3 + (int)(3 * cl_synth_unif(r));
  double px = 1.0 / R; /* one pixel in object units */
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double u = ((x - cx) * ct + (y - cy) * st) / R, v = (-(x - cx) * st + (y - cy) * ct) / R;
      double rr = sqrt(u * u + v * v), m = 0, tex = 1;
      switch (shape % 5) {
      case 0: /* round cell with a bright rim */
        m = soft(0.8 - rr, px);
        tex = 0.65 + 0.35 * (rr > 0.65);
        break;
      case 1: /* rod: ellipse 4:1 */
        m = soft(1 - sqrt(u * u + 16 * v * v), px * 1.5);
        break;
      case 2: { /* chain of small cells along u */
        double step = 1.6 / nchain, best = 1e9;
        for (int i = 0; i < nchain; i++) {
          double du = u - (-0.8 + step * (i + 0.5));
          double d = sqrt(du * du + v * v);
          if (d < best) best = d;
        }
        m = soft(0.45 * step * 1.1 - best, px);
        break;
      }
      case 3: { /* spiny star */
        double phi = atan2(v, u);
        m = soft(0.45 + 0.4 * cos(5 * phi) - rr, px);
        break;
      }
      default: /* ring with a nucleus */
        m = fmax(soft(0.15 - fabs(rr - 0.7), px), soft(0.2 - rr, px));
        break;
      }
      g[(size_t)y * w + x] = cl_synth_u8(bg + (fg * tex - bg) * m + sigma * gauss(r));
    }
}

static void safe_name(char *dst, size_t n, const char *label) {
  size_t j = 0;
  for (const char *p = label; *p && j + 1 < n; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
             c == '-' || c == '.';
    dst[j++] = ok ? c : '_';
  }
  dst[j] = 0;
}

int cl_synth_plankton(const char *dataset_dir, const char *src_manifest, uint64_t seed, int k, int per_class,
                      cl_error *e) {
  cl_manifest src;
  int rc = cl_manifest_load(src_manifest, &src, e);
  if (rc) return cl_err_wrap(e, "reading the Plankton class list");
  if (k < 1 || k > src.n_classes || per_class < 1) {
    int n = src.n_classes;
    cl_manifest_free(&src);
    return cl_err(e, CL_EINVAL, "plankton_sample: need 1..%d classes and at least 1 image per class (got %d, %d)",
                  n, k, per_class);
  }
  char path[4096];
  if ((rc = cl_mkdirs(dataset_dir, e))) {
    cl_manifest_free(&src);
    return rc;
  }
  sbuf csv = {0};
  cl_synth_sb_puts(&csv, ",filepath,class\n");
  unsigned char *g = cl_xmalloc(260 * 200), *rgb = cl_xmalloc(260 * 200 * 3);
  int row = 0;
  for (int s = 0; s < k && !rc; s++) {
    const char *label = src.classes[(size_t)s * src.n_classes / k].label; /* spread over the list */
    char dir[256];
    safe_name(dir, sizeof dir, label);
    snprintf(path, sizeof path, "%s/%s", dataset_dir, dir);
    if ((rc = cl_mkdirs(path, e))) break;
    int color = s == 3; /* one class of RGB PNGs (a fluorescence tint); the rest grayscale */
    for (int j = 0; j < per_class && !rc; j++, row++) {
      rng r = cl_synth_rng_for(seed, "plankton-image", (uint64_t)s << 32 | (uint64_t)j);
      int w = 120 + (int)(140 * cl_synth_unif(&r)), h = 90 + (int)(110 * cl_synth_unif(&r));
      render_plankton(s, &r, w, h, g);
      char rel[400], idx[32];
      snprintf(rel, sizeof rel, "%s/%04d.png", dir, row + 1);
      snprintf(path, sizeof path, "%s/%s", dataset_dir, rel);
      if (color) {
        for (int i = 0; i < w * h; i++) {
          rgb[3 * i] = cl_synth_u8(0.55 * g[i]);
          rgb[3 * i + 1] = g[i];
          rgb[3 * i + 2] = cl_synth_u8(0.75 * g[i]);
        }
        rc = write_png(path, rgb, w, h, 3, e);
      } else {
        rc = write_png(path, g, w, h, 1, e);
      }
      snprintf(idx, sizeof idx, "%d", row);
      cl_synth_sb_field(&csv, idx, 0);
      cl_synth_sb_field(&csv, rel, 0);
      cl_synth_sb_field(&csv, label, 1);
    }
  }
  free(g);
  free(rgb);
  if (!rc) {
    snprintf(path, sizeof path, "%s/metadata.csv", dataset_dir);
    rc = cl_write_file(path, csv.s, csv.n, e);
  }
  free(csv.s);
  cl_manifest_free(&src);
  return rc;
}

/* ---- the suite ---- */

void cl_synth_defaults(cl_synth_opts *o) {
  memset(o, 0, sizeof *o);
  o->rare_classes = 8;
  o->per_class = 6;
  o->plankton_classes = 5;
}

int cl_synth_suite(const cl_synth_opts *o, FILE *log, cl_error *e) {
  if (!o->out_dir || !*o->out_dir) return cl_err(e, CL_EINVAL, "synth: no output directory");
  if (o->per_class < 1 || o->per_class > 10000)
    return cl_err(e, CL_EINVAL, "synth: images per class must be 1..10000 (got %d)", o->per_class);
  char dir[4096], src[4096];
  long np = 0;
  snprintf(dir, sizeof dir, "%s/model", o->out_dir);
  int rc = cl_synth_model(dir, o->seed, &np, e);
  if (rc) return rc;
  if (log)
    fprintf(log, "synth: %s: open_clip ViT 224/16, width %d, %d+%d layers, embed %d; %ld parameters, "
                 "RANDOM weights (seed %llu)\n",
            dir, CL_SYNTH_WIDTH, CL_SYNTH_LAYERS, CL_SYNTH_LAYERS, CL_SYNTH_EMBED, np,
            (unsigned long long)o->seed);

  snprintf(dir, sizeof dir, "%s/data/rare_sample", o->out_dir);
  cl_resource_path(src, sizeof src, "lua/clade/suites/rare_species/metadata.csv");
  if ((rc = cl_synth_rare(dir, src, o->seed, o->rare_classes, o->per_class, e))) return rc;
  if (log)
    fprintf(log, "synth: %s: %d classes x %d JPEG images, real Rare Species taxonomy and common names\n", dir,
            o->rare_classes, o->per_class);

  snprintf(dir, sizeof dir, "%s/data/plankton_sample", o->out_dir);
  cl_resource_path(src, sizeof src, "lua/clade/suites/PLK_Mini/metadata.csv");
  if ((rc = cl_synth_plankton(dir, src, o->seed, o->plankton_classes, o->per_class, e))) return rc;
  if (log)
    fprintf(log, "synth: %s: %d classes x %d PNG images, Plankton (PLK_Mini) labels as-is\n", dir,
            o->plankton_classes, o->per_class);
  snprintf(dir, sizeof dir, "%s/data/bioscan_sample", o->out_dir);
  if ((rc = cl_synth_bioscan(dir, o->seed, o->per_class < 2 ? 2 : o->per_class, e))) return rc;
  if (log)
    fprintf(log, "synth: %s: 12 insect species x %d specimens with DNA barcodes and JPEG images, "
                 "BIOSCAN-1M splits (seen/unseen keys and queries) for retrieval\n",
            dir, o->per_class < 2 ? 2 : o->per_class);
  snprintf(dir, sizeof dir, "%s/clibd", o->out_dir);
  if ((rc = cl_synth_clibd(dir, o->seed, &np, e))) return rc;
  if (log)
    fprintf(log, "synth: %s: CLIBD-shaped model (image ViT with LoRA, BarcodeBERT DNA, BERT text; 64 wide, "
                 "2 layers, 32-d out); %ld parameters, RANDOM weights (seed %llu)\n",
            dir, np, (unsigned long long)o->seed);
  snprintf(dir, sizeof dir, "%s/data/tree_sample", o->out_dir);
  if ((rc = cl_synth_tree(dir, o->seed, CL_SYNTH_TREE_TRAIN, CL_SYNTH_TREE_TEST, e))) return rc;
  if (log)
    fprintf(log, "synth: %s: 36 insect species whose colour, shape, texture and mark follow order, family, "
                 "genus and species; %d train + %d test images per seen species, %d of each of 12 held-out "
                 "species of known genera (for training with text types)\n",
            dir, CL_SYNTH_TREE_TRAIN, CL_SYNTH_TREE_TEST, CL_SYNTH_TREE_TEST);
  if (log)
    fprintf(log, "synth: note: the models' weights are RANDOM, not trained: zero-shot accuracy and "
                 "image->dna retrieval are at chance; few-shot accuracy still rises with shots because the "
                 "generated classes differ visibly.\n");
  return CL_OK;
}
