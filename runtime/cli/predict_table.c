/* predict_table: the rows kept whole (the table format needs every width first). */
#include "predict_table.h"

#include <stdlib.h>
#include <string.h>

#include "core/cl_core.h"
#include "io/cl_csvtab.h"

void cl_ptable_add(cl_ptable *t, const char *const *cells, float score) {
  if (t->nrows == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 256;
    t->cells = realloc(t->cells, (size_t)t->cap * t->ncols * sizeof *t->cells);
    t->score = realloc(t->score, (size_t)t->cap * sizeof *t->score);
    if (!t->cells || !t->score) abort();
  }
  for (int c = 0; c < t->ncols; c++) t->cells[(size_t)t->nrows * t->ncols + c] = cl_strdup(cells[c]);
  t->score[t->nrows++] = score;
}

void cl_ptable_free(cl_ptable *t) {
  for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++) free(t->cells[i]);
  free(t->cells);
  free(t->score);
}


static int utf8_width(const char *s) {
  int n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

/* prettytable's centring: the odd space goes right of odd-length text, left of even */
static void centred(FILE *f, const char *s, int width) {
  int len = utf8_width(s), ex = width - len, l = ex / 2, r = ex / 2;
  if (ex % 2) {
    if (len % 2) r++;
    else l++;
  }
  fprintf(f, " %*s%s%*s |", l, "", s, r, "");
}

const char *cl_ptable_json_esc(const char *s, char *buf, size_t n) {
  size_t k = 0;
  buf[k++] = '"';
  for (; *s && k + 8 < n; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') k += (size_t)snprintf(buf + k, n - k, "\\%c", c);
    else if (c < 0x20) k += (size_t)snprintf(buf + k, n - k, "\\u%04x", c);
    else buf[k++] = (char)c;
  }
  buf[k++] = '"';
  buf[k] = 0;
  return buf;
}

static void json_str(FILE *f, const char *s) {
  char *buf = cl_xmalloc(strlen(s) * 6 + 16);
  fputs(cl_ptable_json_esc(s, buf, strlen(s) * 6 + 16), f);
  free(buf);
}

void cl_ptable_write(FILE *f, const cl_ptable *t, const char *fmt, const char *how_json) {
  char sc[32];
  if (!strcmp(fmt, "csv")) {
    for (int c = 0; c < t->ncols; c++) fprintf(f, "%s,", t->cols[c]);
    fputs("score\n", f);
    for (int i = 0; i < t->nrows; i++) {
      for (int c = 0; c < t->ncols; c++) {
        cl_csv_write_cell(f, t->cells[(size_t)i * t->ncols + c]);
        fputc(',', f);
      }
      fprintf(f, "%.9g\n", t->score[i]);
    }
  } else if (!strcmp(fmt, "json")) {
    fprintf(f, "{%s,\"predictions\":[", how_json);
    for (int i = 0; i < t->nrows; i++) {
      fputs(i ? ",\n{" : "\n{", f);
      for (int c = 0; c < t->ncols; c++) {
        json_str(f, t->cols[c]);
        fputc(':', f);
        json_str(f, t->cells[(size_t)i * t->ncols + c]);
        fputc(',', f);
      }
      fprintf(f, "\"score\":%.9g}", t->score[i]);
    }
    fputs("\n]}\n", f);
  } else { /* table: prettytable's default frame */
    int w[13];
    for (int c = 0; c <= t->ncols; c++) w[c] = utf8_width(c < t->ncols ? t->cols[c] : "score");
    for (int i = 0; i < t->nrows; i++) {
      for (int c = 0; c < t->ncols; c++) {
        int x = utf8_width(t->cells[(size_t)i * t->ncols + c]);
        if (x > w[c]) w[c] = x;
      }
      snprintf(sc, sizeof sc, "%.9g", t->score[i]);
      if ((int)strlen(sc) > w[t->ncols]) w[t->ncols] = (int)strlen(sc);
    }
    for (int pass = 0; pass < 2; pass++) {
      fputc('+', f);
      for (int c = 0; c <= t->ncols; c++) {
        for (int j = 0; j < w[c] + 2; j++) fputc('-', f);
        fputc('+', f);
      }
      fputc('\n', f);
      if (pass) break;
      fputc('|', f);
      for (int c = 0; c <= t->ncols; c++) centred(f, c < t->ncols ? t->cols[c] : "score", w[c]);
      fputc('\n', f);
    }
    for (int i = 0; i < t->nrows; i++) {
      fputc('|', f);
      for (int c = 0; c < t->ncols; c++) centred(f, t->cells[(size_t)i * t->ncols + c], w[c]);
      snprintf(sc, sizeof sc, "%.9g", t->score[i]);
      centred(f, sc, w[t->ncols]);
      fputc('\n', f);
    }
    fputc('+', f);
    for (int c = 0; c <= t->ncols; c++) {
      for (int j = 0; j < w[c] + 2; j++) fputc('-', f);
      fputc('+', f);
    }
    fputc('\n', f);
  }
}

