/* cl_manifest: dataset manifests, the CSV that lists a dataset's images and their labels.
 * Owns: CSV parsing (libcsv, RFC 4180), the column vocabulary, class order and the
 * per-class taxonomy. Paths in a manifest are kept as written (relative to the dataset
 * root); resolving them is the caller's business.
 *
 * Columns: `filepath` (or BIOSCAN's `image_file`; required); `class` (the dataset's own label);
 * optional taxonomy `kingdom,phylum,cls,order,family,genus,species,common_name` (`cls` is the
 * rank Class). Without `class` the label is `Genus species` (or `Genus`; a species cell that
 * already starts with "Genus " is the label as written, BIOSCAN's binomial species); a row
 * without genus takes its deepest rank present (BIOSCAN's missing ranks). Every column,
 * known or not, is kept per row by name (cl_manifest_column / cl_manifest_cell), so a protocol
 * can read e.g. `dna_barcode` or `split`. A UTF-8 BOM and CRLF line ends are accepted. */
#ifndef CL_MANIFEST_H
#define CL_MANIFEST_H
#include "../core/cl_core.h"

typedef struct cl_manifest_row {
  char *filepath; /* as written in the manifest */
  int cls;        /* class index into cl_manifest.classes */
  int line;       /* 1-based physical line of the row in the file, for error messages */
} cl_manifest_row;

typedef struct cl_manifest_class {
  char *label; /* the `class` value, or `Genus species` without a class column */
  /* Taxonomy of the class's first row; NULL when the column is absent or the cell empty. */
  char *kingdom, *phylum, *cls, *order, *family, *genus, *species, *common_name;
  int n_images;
} cl_manifest_class;

typedef struct cl_manifest {
  char *path;
  int n_rows;
  cl_manifest_row *rows; /* manifest order */
  int n_classes;
  cl_manifest_class *classes; /* order of first appearance */
  int has_class;    /* a `class` column exists (else labels are built from genus/species) */
  int has_taxonomy; /* at least one rank column (kingdom..species) exists */
  int has_common;   /* a `common_name` column exists */
  int n_cols;
  char **col_names; /* header names as written, without surrounding spaces */
  char **cells;     /* n_rows x n_cols, row-major; "" for an empty cell */
} cl_manifest;

/* Load csv_path into m (initialised here; freed on error). A bad row fails with
 * "path:LINE: why"; a missing file with "path: <strerror>". */
int cl_manifest_load(const char *csv_path, cl_manifest *m, cl_error *e);
void cl_manifest_free(cl_manifest *m);
/* Index of the class with this label, or -1. */
int cl_manifest_find_class(const cl_manifest *m, const char *label);
/* Index of the column with this header name (the first, for an unnamed repeat), or -1. */
int cl_manifest_column(const cl_manifest *m, const char *name);
/* The cell of row (0-based) in column col. */
const char *cl_manifest_cell(const cl_manifest *m, int row, int col);

#endif
