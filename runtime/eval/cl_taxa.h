/* cl_taxa: the Tree of Life label set of a BioCLIP model folder, as the hub lays it out:
 * embeddings/txt_emb_species.npy (the text embedding of each taxon, [D, N], float32 or float16,
 * memory-mapped, never copied whole) and embeddings/txt_emb_species.json (N entries
 * [[kingdom, phylum, class, order, family, genus, species_epithet], common_name]).
 * Owns: the names, the per-rank grouping of taxa by their whole path (so a genus name used in
 * two kingdoms stays two groups), the subset filter, and the rank names. */
#ifndef CL_TAXA_H
#define CL_TAXA_H
#include <stddef.h>
#include <stdint.h>

#include "io/cl_npy.h"

enum { CL_RANK_KINGDOM, CL_RANK_PHYLUM, CL_RANK_CLASS, CL_RANK_ORDER, CL_RANK_FAMILY, CL_RANK_GENUS,
       CL_RANK_SPECIES, CL_NRANKS };

/* "kingdom" .. "species" (pybioclip's labels; the rank Class is "class"). */
const char *cl_rank_name(int rank);
/* Case-insensitive; -1 when s names no rank. */
int cl_rank_parse(const char *s);

typedef struct cl_taxa {
  char npy_path[4200], json_path[4200];
  cl_npy emb;   /* [D, N] */
  int D;
  int N;
  char *arena;        /* every name, NUL-terminated */
  uint32_t *name_off; /* N x 8 offsets into arena: the 7 ranks (species: the epithet), then common */
  int32_t *group[CL_NRANKS - 1]; /* per taxon: its group at kingdom .. genus (path down to the rank) */
  int ngroups[CL_NRANKS - 1];
} cl_taxa;

/* Open the label set of model_dir (expected embedding width D, or 0 to take the file's). Checks
 * that the .npy is 2-D, its columns match the .json's entries and D; errors name the file. */
int cl_taxa_open(const char *model_dir, int D, cl_taxa *t, cl_error *e);
/* The same from the two files' paths. The .json is streamed (yajl), never held whole: an
 * entry that is not [[7 strings or nulls], string or null] names its index, rank and byte; a
 * syntax error its byte; more entries than the .npy's columns is refused at the first extra
 * one. Null names read as "". */
int cl_taxa_open_files(const char *npy_path, const char *json_path, int D, cl_taxa *t, cl_error *e);
/* The same with the embeddings' float16 variant (clade predict --label-dtype fp16): a float16
 * txt_emb_species.npy as it is; for a float32 one, the variant cl_taxa_fp16_path gives. */
int cl_taxa_open_fp16(const char *model_dir, int D, cl_taxa *t, cl_error *e);
void cl_taxa_close(cl_taxa *t);
/* The float16 variant of model_dir's float32 embeddings/txt_emb_species.npy into path (n
 * bytes), made when missing or stale (the float32 file changed since): beside it as
 * embeddings/txt_emb_species.fp16.npy, or, when the model folder is not writable (said on
 * stderr), as $XDG_CACHE_HOME/clade/labels/<SHA-1 of the float32 file's real path>.npy
 * ($HOME/.cache without XDG_CACHE_HOME); each with a <variant>.source record of the float32
 * file's size, mtime, inode and device and its own size and mtime. The values are NumPy's
 * astype(np.float16), bit for bit (round to nearest even). A float16 (or otherwise not
 * float32 [D, N]) txt_emb_species.npy gives its own path. Errors name the paths tried. */
int cl_taxa_fp16_path(const char *model_dir, char *path, size_t n, cl_error *e);
/* 1 when model_dir has embeddings/txt_emb_species.npy. */
int cl_taxa_present(const char *model_dir);
/* Name of taxon i at rank r (CL_RANK_SPECIES: the epithet, possibly ""), or its common name
 * (r = CL_NRANKS). */
static inline const char *cl_taxa_name(const cl_taxa *t, int i, int r) {
  return t->arena + t->name_off[(size_t)i * 8 + r];
}
/* pybioclip's value of taxon i in the column of rank r: the name, or at species
 * "genus epithet" (a trailing space when the epithet is empty), into buf. */
const char *cl_taxa_value(const cl_taxa *t, int i, int r, char *buf, size_t n);

/* pybioclip's --subset: the CSV's first column is named after a rank (case-insensitive); keep
 * the taxa whose value at that rank is one of the column's values. *keep gets the kept taxa
 * in label-set order (*nkeep of them). A first column that names no rank, a value in no taxon,
 * or no value at all is an error naming the file (and the value). */
int cl_taxa_subset_csv(const cl_taxa *t, const char *csv_path, int **keep, int *nkeep, cl_error *e);

#endif
