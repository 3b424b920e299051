/* cl_manifest: libcsv does the RFC 4180 tokenising; this file maps columns, builds the class
 * list and tracks physical line numbers, which libcsv does not report. */
#include "cl_manifest.h"

#include <csv.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum { COL_FILEPATH, COL_CLASS, COL_KINGDOM, COL_PHYLUM, COL_CLS, COL_ORDER, COL_FAMILY,
       COL_GENUS, COL_SPECIES, COL_COMMON, NCOL };
static const char *const col_names[NCOL] = {"filepath", "class",  "kingdom", "phylum",  "cls",
                                            "order",    "family", "genus",   "species", "common_name"};

typedef struct field {
  char *s;
  size_t len;
} field;

typedef struct ctx {
  const char *path;
  cl_error *e;
  int rc;
  int line;      /* physical line being fed */
  int row_line;  /* physical line where the current record began */
  int started;   /* the current record has begun */
  field *f;
  int nf, capf;
  int header_done, ncols;
  int col[NCOL]; /* header position of each known column, or -1 */
  cl_manifest *m;
  int cap_rows, cap_classes;
  int cap_cells; /* rows the cells array has room for */
  int *hash; /* open addressing: class index + 1, 0 = empty */
  int hash_cap;
} ctx;

static uint32_t fnv1a(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static int hash_find(const ctx *c, const char *label, uint32_t h) {
  if (!c->hash) return -1;
  for (int i = (int)(h & (uint32_t)(c->hash_cap - 1));; i = (i + 1) & (c->hash_cap - 1)) {
    int v = c->hash[i];
    if (!v) return -1;
    if (strcmp(c->m->classes[v - 1].label, label) == 0) return v - 1;
  }
}

static void hash_insert(ctx *c, int idx) {
  /* Keep the load under one half so probes stay short. */
  if (2 * (c->m->n_classes + 1) > c->hash_cap) {
    int ncap = c->hash_cap ? 2 * c->hash_cap : 64;
    free(c->hash);
    c->hash = cl_xcalloc((size_t)ncap, sizeof *c->hash);
    c->hash_cap = ncap;
    for (int k = 0; k < c->m->n_classes; k++)
      if (k != idx) hash_insert(c, k);
  }
  int i = (int)(fnv1a(c->m->classes[idx].label) & (uint32_t)(c->hash_cap - 1));
  while (c->hash[i]) i = (i + 1) & (c->hash_cap - 1);
  c->hash[i] = idx + 1;
}

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
  return 1;
}

static char *cell_dup(const ctx *c, int col) {
  if (c->col[col] < 0) return NULL;
  const field *f = &c->f[c->col[col]];
  return f->len ? cl_strdup(f->s) : NULL;
}

static const char *cell(const ctx *c, int col) {
  return c->col[col] < 0 ? "" : c->f[c->col[col]].s;
}

static int do_header(ctx *c) {
  for (int k = 0; k < NCOL; k++) c->col[k] = -1;
  c->ncols = c->nf;
  cl_manifest *m = c->m;
  m->n_cols = c->nf;
  m->col_names = cl_xcalloc((size_t)c->nf, sizeof *m->col_names);
  for (int i = 0; i < c->nf; i++) {
    /* Header names are matched without surrounding spaces; values are kept exact. */
    char *s = c->f[i].s;
    size_t n = c->f[i].len;
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    m->col_names[i] = cl_xmalloc(n + 1);
    memcpy(m->col_names[i], s, n);
    m->col_names[i][n] = 0;
    for (int k = 0; k < NCOL; k++)
      if (strlen(col_names[k]) == n && memcmp(col_names[k], s, n) == 0) {
        if (c->col[k] >= 0)
          return cl_err(c->e, CL_EFORMAT, "%s:%d: column '%s' appears twice in the header", c->path,
                        c->row_line, col_names[k]);
        c->col[k] = i;
      }
  }
  if (c->col[COL_FILEPATH] < 0) c->col[COL_FILEPATH] = cl_manifest_column(m, "image_file"); /* BIOSCAN-5M */
  if (c->col[COL_FILEPATH] < 0) {
    char have[512] = "";
    size_t o = 0;
    for (int i = 0; i < c->nf && o < sizeof have; i++)
      o += (size_t)snprintf(have + o, sizeof have - o, "%s'%s'", i ? ", " : "", c->f[i].s);
    return cl_err(c->e, CL_EFORMAT, "%s:%d: no 'filepath' (or 'image_file') column in the header (columns: %s)",
                  c->path, c->row_line, have);
  }
  if (c->col[COL_CLASS] < 0 && c->col[COL_GENUS] < 0)
    return cl_err(c->e, CL_EFORMAT,
                  "%s:%d: no 'class' column, and no 'genus' column to build 'Genus species' labels from",
                  c->path, c->row_line);
  m->has_class = c->col[COL_CLASS] >= 0;
  m->has_common = c->col[COL_COMMON] >= 0;
  for (int k = COL_KINGDOM; k <= COL_SPECIES; k++)
    if (c->col[k] >= 0) m->has_taxonomy = 1;
  c->header_done = 1;
  return CL_OK;
}

static int do_row(ctx *c) {
  if (c->nf != c->ncols)
    return cl_err(c->e, CL_EFORMAT, "%s:%d: %d fields, but the header has %d", c->path, c->row_line,
                  c->nf, c->ncols);
  const char *fp = cell(c, COL_FILEPATH);
  if (!*fp) return cl_err(c->e, CL_EFORMAT, "%s:%d: empty filepath", c->path, c->row_line);
  char *label;
  if (c->col[COL_CLASS] >= 0) {
    if (!*cell(c, COL_CLASS)) return cl_err(c->e, CL_EFORMAT, "%s:%d: empty class", c->path, c->row_line);
    label = cl_strdup(cell(c, COL_CLASS));
  } else {
    const char *g = cell(c, COL_GENUS), *s = cell(c, COL_SPECIES);
    size_t gn = strlen(g);
    if (!*g) {
      /* BIOSCAN leaves ranks it could not identify empty: the deepest rank present. */
      for (int k = COL_SPECIES; k >= COL_KINGDOM && !*g; k--) g = cell(c, k);
      if (!*g)
        return cl_err(c->e, CL_EFORMAT, "%s:%d: no taxonomic rank, and no 'class' column to label the row by",
                      c->path, c->row_line);
      label = cl_strdup(g);
    } else if (strncmp(s, g, gn) == 0 && s[gn] == ' ') {
      label = cl_strdup(s); /* the species cell is already the binomial (BIOSCAN) */
    } else {
      size_t n = gn + strlen(s) + 2;
      label = cl_xmalloc(n);
      snprintf(label, n, *s ? "%s %s" : "%s", g, s);
    }
  }
  cl_manifest *m = c->m;
  uint32_t h = fnv1a(label);
  int k = hash_find(c, label, h);
  if (k < 0) {
    if (m->n_classes == c->cap_classes) {
      if (c->cap_classes > INT_MAX / 8) { /* the class hash table stays within an int too */
        free(label);
        return cl_err(c->e, CL_EUNSUP, "%s:%d: more than %d classes", c->path, c->row_line, c->cap_classes);
      }
      c->cap_classes = c->cap_classes ? 2 * c->cap_classes : 16;
      m->classes = realloc(m->classes, (size_t)c->cap_classes * sizeof *m->classes);
      if (!m->classes) { free(label); return cl_err(c->e, CL_ENOMEM, "%s: out of memory", c->path); }
    }
    k = m->n_classes;
    cl_manifest_class *cl = &m->classes[k];
    memset(cl, 0, sizeof *cl);
    cl->label = label;
    cl->kingdom = cell_dup(c, COL_KINGDOM);
    cl->phylum = cell_dup(c, COL_PHYLUM);
    cl->cls = cell_dup(c, COL_CLS);
    cl->order = cell_dup(c, COL_ORDER);
    cl->family = cell_dup(c, COL_FAMILY);
    cl->genus = cell_dup(c, COL_GENUS);
    cl->species = cell_dup(c, COL_SPECIES);
    cl->common_name = cell_dup(c, COL_COMMON);
    m->n_classes++;
    hash_insert(c, k);
  } else {
    free(label);
  }
  if (m->n_rows == c->cap_rows) {
    if (c->cap_rows > INT_MAX / 2)
      return cl_err(c->e, CL_EUNSUP, "%s:%d: more than %d rows", c->path, c->row_line, c->cap_rows);
    c->cap_rows = c->cap_rows ? 2 * c->cap_rows : 256;
    m->rows = realloc(m->rows, (size_t)c->cap_rows * sizeof *m->rows);
    if (!m->rows) return cl_err(c->e, CL_ENOMEM, "%s: out of memory", c->path);
  }
  if (m->n_rows == c->cap_cells) {
    size_t ncap = c->cap_cells ? 2 * (size_t)c->cap_cells : 256;
    if (ncap > (size_t)INT_MAX || ncap > SIZE_MAX / sizeof *m->cells / (size_t)c->ncols)
      return cl_err(c->e, CL_ENOMEM, "%s:%d: too many rows x columns", c->path, c->row_line);
    char **cells = realloc(m->cells, ncap * (size_t)c->ncols * sizeof *cells);
    if (!cells) return cl_err(c->e, CL_ENOMEM, "%s: out of memory", c->path);
    m->cells = cells;
    c->cap_cells = (int)ncap;
  }
  m->rows[m->n_rows] = (cl_manifest_row){cl_strdup(fp), k, c->row_line};
  char **row = m->cells + (size_t)m->n_rows * (size_t)c->ncols;
  for (int i = 0; i < c->ncols; i++) { /* the cells move into the manifest */
    row[i] = c->f[i].s;
    c->f[i].s = NULL;
  }
  m->n_rows++;
  m->classes[k].n_images++;
  return CL_OK;
}

static void clear_fields(ctx *c) {
  for (int i = 0; i < c->nf; i++) free(c->f[i].s);
  c->nf = 0;
}

static void on_field(void *s, size_t len, void *data) {
  ctx *c = data;
  if (c->rc) return;
  if (c->nf == c->capf) {
    if (c->capf > INT_MAX / 2) {
      c->rc = cl_err(c->e, CL_EUNSUP, "%s:%d: more than %d fields in a row", c->path, c->row_line, c->capf);
      return;
    }
    c->capf = c->capf ? 2 * c->capf : 16;
    c->f = realloc(c->f, (size_t)c->capf * sizeof *c->f);
    if (!c->f) { c->rc = cl_err(c->e, CL_ENOMEM, "%s: out of memory", c->path); return; }
  }
  char *d = cl_xmalloc(len + 1);
  if (len) memcpy(d, s, len);
  d[len] = 0;
  c->f[c->nf++] = (field){d, len};
}

static void on_record(int term, void *data) {
  (void)term;
  ctx *c = data;
  c->started = 0;
  if (c->rc) { clear_fields(c); return; }
  /* Every field is UTF-8 (labels become prompts, paths are stored as text): checked here,
   * before any image is encoded. */
  for (int i = 0; i < c->nf && !c->rc; i++)
    for (size_t at = 0; at < c->f[i].len;) {
      utf8proc_int32_t cp;
      utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)c->f[i].s + at,
                                               (utf8proc_ssize_t)(c->f[i].len - at), &cp);
      if (step <= 0) {
        c->rc = cl_err(c->e, CL_EFORMAT, "%s:%d: field %d is not valid UTF-8 (byte 0x%02x at offset %zu)",
                       c->path, c->row_line, i + 1, (unsigned char)c->f[i].s[at], at);
        break;
      }
      at += (size_t)step;
    }
  /* A line of spaces is a blank line, not a one-field record. */
  if (!c->rc && !(c->nf == 1 && is_blank(c->f[0].s, c->f[0].len)))
    c->rc = c->header_done ? do_row(c) : do_header(c);
  clear_fields(c);
}

/* libcsv strips spaces around unquoted fields by default; RFC 4180 (and pandas) keep them. */
static int no_space(unsigned char ch) {
  (void)ch;
  return 0;
}

int cl_manifest_load(const char *csv_path, cl_manifest *m, cl_error *e) {
  memset(m, 0, sizeof *m);
  char *buf;
  size_t len;
  int rc = cl_read_file(csv_path, &buf, &len, e);
  if (rc) return rc;
  m->path = cl_strdup(csv_path);
  ctx c = {.path = csv_path, .e = e, .m = m};
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_APPEND_NULL | CSV_STRICT_FINI) != 0) {
    free(buf);
    cl_manifest_free(m);
    return cl_err(e, CL_ENOMEM, "%s: cannot initialise the CSV parser", csv_path);
  }
  csv_set_space_func(&p, no_space);
  size_t pos = 0;
  if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) pos = 3;
  /* Feed one physical line at a time so every record knows the line it started on. */
  while (pos < len && !c.rc) {
    if (c.line == INT_MAX) {
      c.rc = cl_err(e, CL_EUNSUP, "%s: more than %d lines", csv_path, INT_MAX);
      break;
    }
    c.line++;
    const char *nl = memchr(buf + pos, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
    if (!c.started && !is_blank(buf + pos, n)) {
      c.started = 1;
      c.row_line = c.line;
    }
    if (csv_parse(&p, buf + pos, n, on_field, on_record, &c) != n && !c.rc) {
      if (csv_error(&p) == CSV_EPARSE)
        c.rc = cl_err(e, CL_EFORMAT,
                      "%s:%d: bad quoting (a '\"' inside an unquoted field, or text after a closing quote)",
                      csv_path, c.started ? c.row_line : c.line);
      else
        c.rc = cl_err(e, CL_EFORMAT, "%s:%d: %s", csv_path, c.line, csv_strerror(csv_error(&p)));
    }
    pos += n;
  }
  if (!c.rc && csv_fini(&p, on_field, on_record, &c) != 0 && !c.rc)
    c.rc = cl_err(e, CL_EFORMAT, "%s:%d: unterminated quoted field (a '\"' is never closed)", csv_path,
                  c.row_line);
  if (!c.rc && !c.header_done)
    c.rc = cl_err(e, CL_EFORMAT, "%s: empty manifest: no header row", csv_path);
  if (!c.rc && m->n_rows == 0)
    c.rc = cl_err(e, CL_EFORMAT, "%s: no images: the manifest has a header but no rows", csv_path);
  csv_free(&p);
  clear_fields(&c);
  free(c.f);
  free(c.hash);
  free(buf);
  if (c.rc) cl_manifest_free(m);
  return c.rc;
}

void cl_manifest_free(cl_manifest *m) {
  if (!m) return;
  for (int i = 0; i < m->n_rows; i++) free(m->rows[i].filepath);
  for (size_t i = 0; m->cells && i < (size_t)m->n_rows * (size_t)m->n_cols; i++) free(m->cells[i]);
  for (int i = 0; m->col_names && i < m->n_cols; i++) free(m->col_names[i]);
  free(m->cells);
  free(m->col_names);
  for (int i = 0; i < m->n_classes; i++) {
    cl_manifest_class *k = &m->classes[i];
    free(k->label);
    free(k->kingdom);
    free(k->phylum);
    free(k->cls);
    free(k->order);
    free(k->family);
    free(k->genus);
    free(k->species);
    free(k->common_name);
  }
  free(m->rows);
  free(m->classes);
  free(m->path);
  memset(m, 0, sizeof *m);
}

int cl_manifest_column(const cl_manifest *m, const char *name) {
  for (int i = 0; i < m->n_cols; i++)
    if (strcmp(m->col_names[i], name) == 0) return i;
  return -1;
}

const char *cl_manifest_cell(const cl_manifest *m, int row, int col) {
  return m->cells[(size_t)row * (size_t)m->n_cols + (size_t)col];
}

int cl_manifest_find_class(const cl_manifest *m, const char *label) {
  for (int i = 0; i < m->n_classes; i++)
    if (strcmp(m->classes[i].label, label) == 0) return i;
  return -1;
}
