/* predict_table: clade predict's output rows and their three formats: csv (pandas' to_csv,
 * as pybioclip writes), table (prettytable's default frame, as pybioclip prints) and json
 * (ours: how the predictions were made, then the rows).
 * Owns: the rows' copies of their cells. */
#ifndef CL_PREDICT_TABLE_H
#define CL_PREDICT_TABLE_H
#include <stdio.h>

typedef struct cl_ptable {
  int ncols;        /* the columns before score */
  const char *cols[12];
  char **cells;     /* nrows x ncols */
  float *score;
  int nrows, cap;
} cl_ptable;

void cl_ptable_add(cl_ptable *t, const char *const *cells, float score);
void cl_ptable_free(cl_ptable *t);
/* fmt: "csv", "table" or "json"; how_json: the json output's leading members ("k":v,...). */
void cl_ptable_write(FILE *f, const cl_ptable *t, const char *fmt, const char *how_json);
/* s as a JSON string literal into buf (cut short, still valid, when it does not fit). */
const char *cl_ptable_json_esc(const char *s, char *buf, size_t n);

#endif
