/* cl_synth: the embedded sample suite, so the demo runs anywhere without downloads.
 * Owns: a small open_clip CLIP and a small CLIBD model (image, DNA and text towers for the
 * BIOSCAN sample's retrievals), both with RANDOM weights, and three tiny datasets with
 * generated images whose classes differ visibly — `rare_sample` (JPEG, real Rare Species
 * taxonomy and common names), `plankton_sample` (PNG, PLK_Mini labels as-is) and
 * `bioscan_sample` (BIOSCAN-1M style: insects with DNA barcodes, seen/unseen splits, keys and
 * queries for retrieval; cl_synth_bioscan.c) and `tree_sample` (visual traits that follow the
 * taxonomy, train/test splits and held-out species, for training; cl_synth_tree.c).
 * Everything is a pure function of the seed: the same seed writes the same bytes.
 *
 * Layout under DIR:
 *   model/open_clip_config.json          {"model_cfg": {...}, "preprocess_cfg": {mean, std}}
 *   model/open_clip_model.safetensors    F32, open_clip state-dict names
 *   clibd/config.json                    "format": "clibd" (cl_clibd.h), three towers 64 wide, 32-d out
 *   clibd/model.safetensors              F32, CLIBD's SimpleCLIP state-dict names (ViT with LoRA q/v)
 *   clibd/vocab.txt                      the text tower's WordPiece vocabulary (letters and digits)
 *   data/rare_sample/metadata.csv        ,kingdom,phylum,cls,order,family,genus,species,common_name,filepath,class
 *   data/rare_sample/images/NNNN.jpg
 *   data/plankton_sample/metadata.csv    ,filepath,class
 *   data/plankton_sample/<class>/NNNN.png
 *   data/bioscan_sample/metadata.csv     processid,filepath,dna_barcode,order,family,genus,species,split
 *   data/bioscan_sample/images/NNNN.jpg
 *   data/tree_sample/metadata.csv        ,kingdom,...,common_name,filepath,class,split
 *   data/tree_sample/test_seen.csv, test_unseen.csv   the rows of one split
 *   data/tree_sample/images/NNNN.jpg */
#ifndef CL_SYNTH_H
#define CL_SYNTH_H
#include <stdint.h>
#include <stdio.h>

#include "../core/cl_core.h"

/* The generated model's shape: ViT 224/16, both towers width 128 x 2 layers x 2 heads. */
#define CL_SYNTH_WIDTH 128
#define CL_SYNTH_LAYERS 2
#define CL_SYNTH_EMBED 64

typedef struct cl_synth_opts {
  const char *out_dir;
  uint64_t seed;          /* default 0 */
  int rare_classes;       /* default 8, at most the 400 Rare Species classes */
  int per_class;          /* images per class in both datasets, default 6 */
  int plankton_classes;   /* default 5 */
} cl_synth_opts;

void cl_synth_defaults(cl_synth_opts *o);

/* Write the model and both datasets under o->out_dir (directories created, files
 * overwritten). One line per part goes to log (NULL for silence). */
int cl_synth_suite(const cl_synth_opts *o, FILE *log, cl_error *e);

/* The parts, each into its own directory. n_params (may be NULL) gets the parameter count. */
int cl_synth_model(const char *model_dir, uint64_t seed, long *n_params, cl_error *e);
/* The CLIBD-shaped model (cl_synth_clibd.c) into its own directory. */
int cl_synth_clibd(const char *model_dir, uint64_t seed, long *n_params, cl_error *e);
/* k classes spread across phyla, chosen from the Rare Species manifest at src_manifest. */
int cl_synth_rare(const char *dataset_dir, const char *src_manifest, uint64_t seed, int k,
                  int per_class, cl_error *e);
int cl_synth_plankton(const char *dataset_dir, const char *src_manifest, uint64_t seed, int k,
                      int per_class, cl_error *e);

/* 12 insect species (3 orders x 2 families x 1 genus x 2 species), per_species specimens
 * each: barcodes mutated from per-order prototypes down the taxonomy, an image look per
 * species; 8 seen species (seen_keys, test_seen), 2 validation unseen (val_unseen_keys) and
 * 2 test unseen (test_unseen_keys, test_unseen). */
int cl_synth_bioscan(const char *dataset_dir, uint64_t seed, int per_species, cl_error *e);

/* 36 invented insect species (3 orders x 2 families x 2 genera x 3 species) whose images
 * show their taxonomy: colour by order, shape by family, texture by genus, a mark by
 * species. Split column: n_train `train` and n_test `test_seen` images of each of the 24
 * seen species; n_test `test_unseen` images of the 12 held-out ones (one per genus).
 * test_seen.csv and test_unseen.csv hold those splits' rows alone. */
int cl_synth_tree(const char *dataset_dir, uint64_t seed, int n_train, int n_test, cl_error *e);
#define CL_SYNTH_TREE_TRAIN 8
#define CL_SYNTH_TREE_TEST 4

#endif
