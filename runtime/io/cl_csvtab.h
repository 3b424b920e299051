/* cl_csvtab: a small CSV file read whole into a table of strings (libcsv, RFC 4180, as pandas
 * reads it: spaces kept, a UTF-8 BOM skipped, blank lines skipped), for the little side files
 * commands take (clade predict's --bins and --subset). Manifests have their own reader.
 * Owns: the table's cells and their line numbers. */
#ifndef CL_CSVTAB_H
#define CL_CSVTAB_H
#include <stdio.h>

#include "../core/cl_core.h"

typedef struct cl_csvtab {
  int nrows;    /* data rows, the header excluded */
  int ncols;    /* fields in the header */
  char **head;  /* ncols header names */
  char ***rows; /* nrows rows of ncols cells ("" where a row is short) */
  int *line;    /* 1-based line of each data row, for errors */
} cl_csvtab;

/* Read path (a header row, then data rows). A row longer than the header, a malformed quote or a
 * file without a header row is an error naming the file and line. */
int cl_csvtab_read(const char *path, cl_csvtab *t, cl_error *e);
void cl_csvtab_free(cl_csvtab *t);
/* One CSV cell to f, quoted (RFC 4180, libcsv's csv_fwrite) only when it holds a comma, quote
 * or line end, as pandas' to_csv writes it; NULL is an empty cell. */
void cl_csv_write_cell(FILE *f, const char *s);

#endif
