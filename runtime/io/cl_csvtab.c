/* cl_csvtab: libcsv's callbacks collect fields into rows; the first record is the header. */
#include "cl_csvtab.h"

#include <csv.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  cl_csvtab *t;
  const char *path;
  cl_error *e;
  int rc, line, row_line, started, have_head, cap;
  char **f;
  int nf, capf;
} ctx;

static void on_field(void *s, size_t len, void *data) {
  ctx *c = data;
  if (c->rc) return;
  if (!c->started) c->started = 1, c->row_line = c->line;
  if (c->nf == c->capf) {
    if (c->capf > INT_MAX / 4) {
      c->rc = cl_err(c->e, CL_EUNSUP, "%s:%d: too many fields in a row", c->path, c->row_line);
      return;
    }
    c->capf = c->capf ? 2 * c->capf : 8;
    c->f = realloc(c->f, (size_t)c->capf * sizeof *c->f);
    if (!c->f) abort();
  }
  char *d = cl_xmalloc(len + 1);
  if (len) memcpy(d, s, len);
  d[len] = 0;
  c->f[c->nf++] = d;
}

static void on_record(int term, void *data) {
  (void)term;
  ctx *c = data;
  c->started = 0;
  cl_csvtab *t = c->t;
  int blank = c->nf == 1 && c->f[0][0] == 0;
  if (c->rc || blank) {
    for (int i = 0; i < c->nf; i++) free(c->f[i]);
  } else if (!c->have_head) {
    t->head = c->f, t->ncols = c->nf;
    c->f = NULL, c->capf = 0, c->have_head = 1;
  } else if (c->nf > t->ncols) {
    for (int i = 0; i < c->nf; i++) free(c->f[i]);
    c->rc = cl_err(c->e, CL_EFORMAT, "%s:%d: %d fields, the header has %d", c->path, c->row_line, c->nf, t->ncols);
  } else {
    if (t->nrows == c->cap) {
      c->cap = c->cap ? 2 * c->cap : 16;
      t->rows = realloc(t->rows, (size_t)c->cap * sizeof *t->rows);
      t->line = realloc(t->line, (size_t)c->cap * sizeof *t->line);
      if (!t->rows || !t->line) abort();
    }
    char **row = cl_xmalloc((size_t)t->ncols * sizeof *row);
    for (int i = 0; i < t->ncols; i++) row[i] = i < c->nf ? c->f[i] : cl_strdup("");
    t->line[t->nrows] = c->row_line;
    t->rows[t->nrows++] = row;
  }
  c->nf = 0;
}

static int keep_space(unsigned char ch) {
  (void)ch;
  return 0;
}

int cl_csvtab_read(const char *path, cl_csvtab *t, cl_error *e) {
  memset(t, 0, sizeof *t);
  char *buf;
  size_t len;
  CL_TRY(cl_read_file(path, &buf, &len, e));
  ctx c = {.t = t, .path = path, .e = e, .line = 1};
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_APPEND_NULL | CSV_STRICT_FINI) != 0) {
    free(buf);
    return cl_err(e, CL_ENOMEM, "%s: cannot initialise the CSV parser", path);
  }
  csv_set_space_func(&p, keep_space);
  size_t pos = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
  while (pos < len && !c.rc) { /* line by line, to count lines */
    char *nl = memchr(buf + pos, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
    if (csv_parse(&p, buf + pos, n, on_field, on_record, &c) != n && !c.rc)
      c.rc = cl_err(e, CL_EFORMAT, "%s:%d: malformed CSV (%s)", path, c.started ? c.row_line : c.line,
                    csv_strerror(csv_error(&p)));
    pos += n;
    if (nl) c.line++;
  }
  if (!c.rc && csv_fini(&p, on_field, on_record, &c) != 0 && !c.rc)
    c.rc = cl_err(e, CL_EFORMAT, "%s:%d: unterminated quoted field", path, c.row_line);
  if (!c.rc && !c.have_head) c.rc = cl_err(e, CL_EFORMAT, "%s: empty file: no header row", path);
  for (int i = 0; i < c.nf; i++) free(c.f[i]);
  free(c.f);
  csv_free(&p);
  free(buf);
  if (c.rc) cl_csvtab_free(t);
  return c.rc;
}

void cl_csvtab_free(cl_csvtab *t) {
  for (int r = 0; r < t->nrows; r++) {
    for (int i = 0; i < t->ncols; i++) free(t->rows[r][i]);
    free(t->rows[r]);
  }
  for (int i = 0; i < t->ncols; i++) free(t->head[i]);
  free(t->head);
  free(t->rows);
  free(t->line);
  memset(t, 0, sizeof *t);
}

void cl_csv_write_cell(FILE *f, const char *s) {
  if (!s) s = "";
  if (strpbrk(s, ",\"\r\n")) csv_fwrite(f, s, strlen(s));
  else fputs(s, f);
}
