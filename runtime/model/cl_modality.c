/* cl_modality: the registered modalities. */
#include "cl_modality.h"

#include <stdio.h>
#include <string.h>

static const cl_modality image = {
    .name = "image", .plural = "images", .column = "filepath", .key_by = CL_KEY_FILE, .parallel_read = 1};
static const cl_modality text = {.name = "text", .plural = "texts", .key_by = CL_KEY_ITEM};
/* DNA barcodes (BIOSCAN's column), read into k-mer ids by a model's DNA tower */
static const cl_modality dna = {.name = "dna", .plural = "barcodes", .column = "dna_barcode", .key_by = CL_KEY_ITEM};

/* The registry: one line per modality. */
static const cl_modality *const registry[] = {&image, &text, &dna};
#define NMOD ((int)(sizeof registry / sizeof registry[0]))
_Static_assert(sizeof registry / sizeof registry[0] <= CL_MODALITY_MAX, "raise CL_MODALITY_MAX");

int cl_modality_count(void) { return NMOD; }

const cl_modality *cl_modality_at(int i) { return i >= 0 && i < NMOD ? registry[i] : NULL; }

int cl_modality_index(const cl_modality *m) {
  for (int i = 0; i < NMOD; i++)
    if (registry[i] == m) return i;
  return -1;
}

const cl_modality *cl_modality_find(const char *name) {
  for (int i = 0; name && i < NMOD; i++)
    if (!strcmp(registry[i]->name, name)) return registry[i];
  return NULL;
}

static const char *name_at(int i) { return registry[i]->name; }

const char *cl_modality_list(char *buf, size_t n) { return cl_join_names(buf, n, NMOD, name_at); }
