/* cl_synth_bioscan: the BIOSCAN-like sample (bioscan_sample) for retrieval: insects with DNA
 * barcodes and images, in BIOSCAN-1M's manifest layout and split names. Barcodes descend from
 * per-order prototypes by mutation (order -> family -> genus -> species -> specimen), so
 * specimens of one species share most of their sequence and related species more than
 * unrelated ones; some specimens are cut short or carry a run of N. Images per species share
 * a look (colours and pattern), jittered per specimen. Seen species have keys (seen_keys)
 * and queries (test_seen); unseen species are validation ones (val_unseen_keys) or test ones
 * (test_unseen_keys and test_unseen queries). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "cl_synth.h"
#include "cl_synth_priv.h"

#define BARCODE_LEN 658

static const char *const ORDERS[] = {"Diptera", "Hymenoptera", "Lepidoptera"};
static const char *const FAMILIES[][2] = {{"Cecidomyiidae", "Sciaridae"}, {"Braconidae", "Ichneumonidae"},
                                          {"Noctuidae", "Geometridae"}};
static const char *const GENERA[][2] = {{"Asynapta", "Corynoptera"}, {"Apanteles", "Ophion"},
                                        {"Agrotis", "Idaea"}};
enum { N_ORDERS = 3, FAM_PER_ORDER = 2, SPECIES_PER_GENUS = 2,
       N_SPECIES = N_ORDERS * FAM_PER_ORDER * SPECIES_PER_GENUS };

static void random_seq(cl_synth_rng *r, char *s, int n) {
  static const char B[4] = {'A', 'C', 'G', 'T'};
  for (int i = 0; i < n; i++) s[i] = B[(int)(4 * cl_synth_unif(r)) & 3];
  s[n] = 0;
}

/* Each base replaced by another (never itself) with probability p. */
static void mutate(cl_synth_rng *r, const char *from, char *to, int n, double p) {
  static const char B[4] = {'A', 'C', 'G', 'T'};
  for (int i = 0; i < n; i++) {
    to[i] = from[i];
    if (cl_synth_unif(r) < p) {
      char c;
      do c = B[(int)(4 * cl_synth_unif(r)) & 3];
      while (c == from[i]);
      to[i] = c;
    }
  }
  to[n] = 0;
}

/* The split of specimen j (of per) of species s: seen species (two in three) give keys then
 * queries; of the unseen, every other one is a validation species (keys only), the others
 * test species (keys, then queries). */
static const char *split_of(int s, int j, int per) {
  if (s % 3 != 2) return j < (per + 1) / 2 ? "seen_keys" : "test_seen";
  if ((s / 3) % 2 == 0) return "val_unseen_keys";
  return j < (per + 1) / 2 ? "test_unseen_keys" : "test_unseen";
}

int cl_synth_bioscan(const char *dataset_dir, uint64_t seed, int per_species, cl_error *e) {
  if (per_species < 2 || per_species > 1000)
    return cl_err(e, CL_EINVAL, "bioscan_sample: need 2..1000 specimens per species (got %d)", per_species);
  char path[4096];
  snprintf(path, sizeof path, "%s/images", dataset_dir);
  int rc = cl_mkdirs(path, e);
  if (rc) return rc;
  /* prototypes down the taxonomy */
  char order[N_ORDERS][BARCODE_LEN + 1], fam[N_ORDERS][FAM_PER_ORDER][BARCODE_LEN + 1];
  char sp[N_SPECIES][BARCODE_LEN + 1], genus[BARCODE_LEN + 1], seq[BARCODE_LEN + 1];
  for (int o = 0; o < N_ORDERS; o++) {
    cl_synth_rng r = cl_synth_rng_for(seed, "bioscan-order", (uint64_t)o);
    random_seq(&r, order[o], BARCODE_LEN);
    for (int f = 0; f < FAM_PER_ORDER; f++) {
      r = cl_synth_rng_for(seed, "bioscan-family", (uint64_t)(o * FAM_PER_ORDER + f));
      mutate(&r, order[o], fam[o][f], BARCODE_LEN, 0.15);
      mutate(&r, fam[o][f], genus, BARCODE_LEN, 0.08); /* one genus per family */
      for (int k = 0; k < SPECIES_PER_GENUS; k++)
        mutate(&r, genus, sp[(o * FAM_PER_ORDER + f) * SPECIES_PER_GENUS + k], BARCODE_LEN, 0.04);
    }
  }
  cl_synth_sbuf csv = {0};
  cl_synth_sb_puts(&csv, "processid,filepath,dna_barcode,order,family,genus,species,split\n");
  enum { W = 160, H = 120 };
  unsigned char *px = cl_xmalloc(W * H * 3);
  int row = 0;
  for (int s = 0; s < N_SPECIES && !rc; s++) {
    int o = s / (FAM_PER_ORDER * SPECIES_PER_GENUS), f = s / SPECIES_PER_GENUS % FAM_PER_ORDER;
    char species[96];
    snprintf(species, sizeof species, "%s sp%d", GENERA[o][f], s % SPECIES_PER_GENUS + 1);
    cl_synth_look look = cl_synth_class_look(seed ^ 0xb105ca9ULL, s);
    for (int j = 0; j < per_species && !rc; j++, row++) {
      cl_synth_rng r = cl_synth_rng_for(seed, "bioscan-specimen", (uint64_t)s << 32 | (uint64_t)j);
      mutate(&r, sp[s], seq, BARCODE_LEN, 0.01);
      if (cl_synth_unif(&r) < 0.2) seq[600 + (int)(50 * cl_synth_unif(&r))] = 0; /* cut short */
      if (cl_synth_unif(&r) < 0.2) { /* a run of N where the read failed */
        int at = (int)(400 * cl_synth_unif(&r)), len = 5 + (int)(15 * cl_synth_unif(&r));
        for (int i = at; i < at + len && seq[i]; i++) seq[i] = 'N';
      }
      cl_synth_render(&look, &r, W, H, px);
      char rel[64], pid[32];
      snprintf(rel, sizeof rel, "images/%04d.jpg", row + 1);
      snprintf(path, sizeof path, "%s/%s", dataset_dir, rel);
      rc = cl_synth_write_jpeg(path, px, W, H, 0, TJSAMP_420, e);
      snprintf(pid, sizeof pid, "SYNTH%05d-24", row + 1);
      cl_synth_sb_field(&csv, pid, 0);
      cl_synth_sb_field(&csv, rel, 0);
      cl_synth_sb_field(&csv, seq, 0);
      cl_synth_sb_field(&csv, ORDERS[o], 0);
      cl_synth_sb_field(&csv, FAMILIES[o][f], 0);
      cl_synth_sb_field(&csv, GENERA[o][f], 0);
      cl_synth_sb_field(&csv, species, 0);
      cl_synth_sb_field(&csv, split_of(s, j, per_species), 1);
    }
  }
  free(px);
  if (!rc) {
    snprintf(path, sizeof path, "%s/metadata.csv", dataset_dir);
    rc = cl_write_file(path, csv.s, csv.n, e);
  }
  free(csv.s);
  return rc;
}
