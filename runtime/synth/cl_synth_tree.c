/* cl_synth_tree: tree_sample, a taxonomy-structured sample for training with text types.
 * 36 invented insect species: 3 orders x 2 families x 2 genera x 3 species. What an image
 * shows follows the tree: the body's COLOUR is its order's, its SHAPE its family's, its
 * TEXTURE its genus's (pattern and scale), and a small MARK (head dot, waist band or side
 * spots) its species'. Every specimen is jittered in pose, size, hue, brightness and noise.
 * One species of each genus is held out (split `test_unseen`): its genus, family and order
 * are seen in training, its species name and mark combination are not. Seen species have
 * `train` and `test_seen` images. Common names are an adjective of the species' own and a
 * noun of its family's ("northern glider"), as real common names often name the group.
 * Names are invented (Latin-like), so nothing is known about them before training. */
#include "cl_synth.h"
#include "cl_synth_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

enum { N_ORDERS = 3, FAM_PER_ORDER = 2, GEN_PER_FAM = 2, SP_PER_GEN = 3 };
enum { N_FAMILIES = N_ORDERS * FAM_PER_ORDER, N_GENERA = N_FAMILIES * GEN_PER_FAM, N_SPECIES = N_GENERA * SP_PER_GEN };

static const char *const ORDERS[N_ORDERS] = {"Lumoptera", "Vesperoptera", "Corvoptera"};
static const char *const FAMILIES[N_FAMILIES] = {"Ardelidae", "Borvidae", "Calnidae", "Dersidae", "Eumidae", "Fostridae"};
static const char *const FAMILY_NOUN[N_FAMILIES] = {"glider", "creeper", "hopper", "borer", "dancer", "weaver"};
static const char *const GENERA[N_GENERA] = {"Abrix", "Belona", "Cardix", "Dolmia", "Erebra", "Falcis",
                                             "Gondra", "Hestra", "Ilvana", "Jorsa", "Kelpia", "Lumbra"};
static const char *const EPITHETS[N_SPECIES] = {
    "alpina",   "borealis", "cincta",  "dorsalis", "elegans", "fusca",   "gracilis", "hirta",   "insignis",
    "jucunda",  "laeta",    "maculata", "nigra",   "ornata",  "pallida", "quadrata", "rufa",    "signata",
    "tenuis",   "umbrosa",  "varia",   "vittata",  "zonata",  "aurea",   "bicolor",  "cana",    "dentata",
    "exigua",   "flava",    "grandis", "humilis",  "lineata", "minuta",  "notata",   "obscura", "picta"};
static const char *const ADJECTIVES[N_SPECIES] = {
    "lesser",  "greater", "swift",    "quiet",  "hidden",  "northern", "southern",  "eastern", "western",
    "marsh",   "meadow",  "forest",   "river",  "desert",  "mountain", "coastal",   "island",  "valley",
    "dusk",    "dawn",    "winter",   "summer", "little",  "giant",    "common",    "royal",   "shy",
    "bold",    "wandering", "lonely", "hairy",  "slender", "stout",    "tiny",      "noble",   "humble"};
/* order hues: red-orange, green, blue */
static const double ORDER_HUE[N_ORDERS] = {0.02, 0.36, 0.62};

/* The species of genus g that is held out: a different mark in each genus. */
static int held_out(int g) { return g % SP_PER_GEN; }

/* How far (u, v) lies inside the family's body outline, in body units (> 0 inside). */
static double body_inside(int family, double u, double v) {
  double r = sqrt(u * u + v * v), phi = atan2(v, u);
  switch (family) {
  case 0: return 1 - sqrt(u * u / 0.36 + v * v);                        /* long ellipse */
  case 1: return 0.8 - (fabs(u) / 0.75 + fabs(v));                      /* diamond */
  case 2: return 0.62 + 0.3 * cos(3 * phi + M_PI / 2) * 0.6 - r;        /* rounded triangle */
  case 3: return 0.5 + 0.32 * cos(5 * phi + M_PI / 2) - r;              /* five-armed star */
  case 4: return fmin(0.85 - r, sqrt((u - 0.45) * (u - 0.45) + v * v) - 0.55); /* crescent */
  default: {                                                            /* capsule */
    double du = fabs(v) > 0.55 ? fabs(v) - 0.55 : 0;
    return 0.42 - sqrt(u * u + du * du);
  }
  }
}

/* The genus' texture at (u, v): 0..1. Pattern g % 4, scale by g / 4. */
static double texture(int genus, double u, double v) {
  double f = (2.5 + 1.75 * (genus / 4)) * 2 * M_PI;
  switch (genus % 4) {
  case 0: return 0.5 + 0.5 * sin(f * v);                                 /* bands across */
  case 1: return 0.5 + 0.5 * tanh(4 * sin(f * u) * sin(f * v));          /* checker */
  case 2: return 1 / (1 + exp(-10 * (sin(f * u) * sin(f * v) - 0.35))); /* spots */
  default: return 0.5 + 0.5 * sin(f * 1.4 * u);                          /* stripes along */
  }
}

/* The species' mark at (u, v): 0 none, 1 white, -1 black. Kind s (0..2). */
static int mark(int s, double u, double v) {
  switch (s) {
  case 0: return (u * u + (v + 0.55) * (v + 0.55)) < 0.035 ? 1 : 0;            /* white head dot */
  case 1: return fabs(v) < 0.09 ? -1 : 0;                                       /* black waist band */
  default: {                                                                    /* two white side spots */
    double a = (fabs(u) - 0.28), b = v - 0.15;
    return a * a + b * b < 0.018 ? 1 : 0;
  }
  }
}

static void render(int sp, cl_synth_rng *r, int W, int H, unsigned char *rgb) {
  const int g = sp / SP_PER_GEN, f = g / GEN_PER_FAM, o = f / FAM_PER_ORDER, s = sp % SP_PER_GEN;
  /* one draw per statement: C leaves argument evaluation order open */
  double cx = 0.5 + 0.08 * (2 * cl_synth_unif(r) - 1);
  double cy = 0.5 + 0.08 * (2 * cl_synth_unif(r) - 1);
  double size = 0.30 + 0.06 * cl_synth_unif(r);
  double ang = 0.5 * (2 * cl_synth_unif(r) - 1), ca = cos(ang), sa = sin(ang);
  double hue = ORDER_HUE[o] + 0.03 * (2 * cl_synth_unif(r) - 1);
  double sat = 0.65 + 0.25 * cl_synth_unif(r), val = 0.75 + 0.2 * cl_synth_unif(r);
  double bgv = 0.55 + 0.3 * cl_synth_unif(r), bgh = cl_synth_unif(r), sigma = 3 + 5 * cl_synth_unif(r);
  double phase_u = cl_synth_unif(r), phase_v = cl_synth_unif(r);
  double body[3], bg[3];
  cl_synth_hsv(hue, sat, val, body);
  cl_synth_hsv(bgh, 0.08, bgv, bg);
  const double S = W < H ? W : H, px = 1.0 / (size * S);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      double dx = (x + 0.5) / S - cx, dy = (y + 0.5) / S - cy;
      double u = (ca * dx + sa * dy) / size, v = (-sa * dx + ca * dy) / size;
      double in = body_inside(f, u, v) / (1.5 * px) + 0.5; /* soft edge over ~1.5 px */
      double m = in < 0 ? 0 : in > 1 ? 1 : in;
      double t = texture(g, u + phase_u, v + phase_v), shade = 0.45 + 0.55 * t;
      int mk = mark(s, u, v);
      for (int c = 0; c < 3; c++) {
        double col = body[c] * shade;
        if (mk > 0) col = 0.97;
        else if (mk < 0) col = 0.06;
        col = bg[c] + (col - bg[c]) * m;
        rgb[((size_t)y * W + x) * 3 + c] = cl_synth_u8(255 * col + sigma * (2 * cl_synth_unif(r) - 1));
      }
    }
}

int cl_synth_tree(const char *dataset_dir, uint64_t seed, int n_train, int n_test, cl_error *e) {
  if (n_train < 1 || n_train > 1000 || n_test < 1 || n_test > 1000)
    return cl_err(e, CL_EINVAL, "tree_sample: need 1..1000 training and test images per species (got %d, %d)",
                  n_train, n_test);
  char path[4096];
  snprintf(path, sizeof path, "%s/images", dataset_dir);
  int rc = cl_mkdirs(path, e);
  if (rc) return rc;
  /* metadata.csv holds every row; test_seen.csv and test_unseen.csv the rows of one split, for
   * evaluations of one part (zero-shot's classes are the species a manifest holds) */
  static const char header[] = ",kingdom,phylum,cls,order,family,genus,species,common_name,filepath,class,split\n";
  cl_synth_sbuf csv = {0}, part[2] = {{0}, {0}};
  cl_synth_sb_puts(&csv, header);
  cl_synth_sb_puts(&part[0], header);
  cl_synth_sb_puts(&part[1], header);
  enum { W = 128, H = 128 };
  unsigned char *px = cl_xmalloc(W * H * 3);
  int row = 0;
  for (int sp = 0; sp < N_SPECIES && !rc; sp++) {
    const int g = sp / SP_PER_GEN, f = g / GEN_PER_FAM, o = f / FAM_PER_ORDER;
    const int unseen = sp % SP_PER_GEN == held_out(g);
    char cls[96], common[96];
    snprintf(cls, sizeof cls, "%s %s", GENERA[g], EPITHETS[sp]);
    snprintf(common, sizeof common, "%s %s", ADJECTIVES[sp], FAMILY_NOUN[f]);
    const int n = unseen ? n_test : n_train + n_test;
    for (int j = 0; j < n && !rc; j++, row++) {
      cl_synth_rng r = cl_synth_rng_for(seed, "tree-image", (uint64_t)sp << 32 | (uint64_t)j);
      render(sp, &r, W, H, px);
      char rel[64], idx[32];
      snprintf(rel, sizeof rel, "images/%04d.jpg", row + 1);
      snprintf(path, sizeof path, "%s/%s", dataset_dir, rel);
      rc = cl_synth_write_jpeg(path, px, W, H, 0, TJSAMP_444, e);
      snprintf(idx, sizeof idx, "%d", row);
      const char *split = unseen ? "test_unseen" : j < n_train ? "train" : "test_seen";
      const char *cells[] = {idx, "Animalia", "Arthropoda", "Insecta", ORDERS[o], FAMILIES[f], GENERA[g],
                             EPITHETS[sp], common, rel, cls, split};
      for (int k = 0; k < 12; k++) cl_synth_sb_field(&csv, cells[k], k == 11);
      if (unseen || j >= n_train)
        for (int k = 0; k < 12; k++) cl_synth_sb_field(&part[unseen], cells[k], k == 11);
    }
  }
  free(px);
  static const char *const names[3] = {"metadata.csv", "test_seen.csv", "test_unseen.csv"};
  const cl_synth_sbuf *bufs[3] = {&csv, &part[0], &part[1]};
  for (int k = 0; k < 3 && !rc; k++) {
    snprintf(path, sizeof path, "%s/%s", dataset_dir, names[k]);
    rc = cl_write_file(path, bufs[k]->s, bufs[k]->n, e);
  }
  free(csv.s);
  free(part[0].s);
  free(part[1].s);
  return rc;
}
