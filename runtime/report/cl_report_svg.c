/* cl_report_svg: escaping, truncated labels, colours, ticks and legends for the report. */
#include "cl_report_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Average advance of a sans-serif glyph in ems: generous, so estimates err towards cutting. */
#define CHAR_EM 0.6
#define LEGEND_COL 240.0
#define LEGEND_ROW 18.0
#define PLOT_W 960.0 /* as cl_report.c */
#define MR 16.0

void cl_report_html(FILE *f, const char *s) {
  if (!s) return;
  for (; *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&#39;", f); break;
    default:
      /* other control characters are not allowed in HTML text */
      if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') fputc(' ', f);
      else fputc(*s, f);
    }
  }
}

size_t cl_report_svg_chars(const char *s) {
  size_t n = 0;
  for (; s && *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

double cl_report_svg_text_px(const char *s, double font_px) {
  return (double)cl_report_svg_chars(s) * font_px * CHAR_EM;
}

/* The byte length of the first n code points of s. */
static size_t prefix_bytes(const char *s, size_t n) {
  size_t i = 0, cps = 0;
  while (s[i]) {
    if (((unsigned char)s[i] & 0xc0) != 0x80) {
      if (cps == n) break;
      cps++;
    }
    i++;
  }
  return i;
}

void cl_report_svg_text(FILE *f, double x, double y, const char *anchor, double font_px,
                        double max_px, const char *attrs, const char *text) {
  if (!text) text = "";
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%g\"%s%s>", x, y, anchor,
          font_px, attrs ? " " : "", attrs ? attrs : "");
  size_t n = cl_report_svg_chars(text);
  size_t fit = max_px > 0 ? (size_t)(max_px / (font_px * CHAR_EM)) : n;
  if (n <= fit) {
    cl_report_html(f, text);
  } else {
    fputs("<title>", f);
    cl_report_html(f, text);
    fputs("</title>", f);
    size_t keep = fit > 1 ? fit - 1 : 0, nb = prefix_bytes(text, keep);
    char buf[1024];
    if (nb >= sizeof buf) nb = prefix_bytes(text, 200);
    memcpy(buf, text, nb);
    buf[nb] = 0;
    cl_report_html(f, buf);
    fputs("\xe2\x80\xa6", f); /* … */
  }
  fputs("</text>", f);
}

/* Tableau 10: distinct for the common colour-vision deficiencies, fine on white. */
static const char *const PALETTE[10] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
static const char *const DASHES[4] = {"", "6 3", "2 3", "8 3 2 3"};

const char *cl_report_svg_color(int i) { return PALETTE[(i < 0 ? 0 : i) % 10]; }
const char *cl_report_svg_dash(int i) { return DASHES[((i < 0 ? 0 : i) / 10) % 4]; }

void cl_report_svg_heat(double t, char out[8], int *dark) {
  static const unsigned char stops[5][3] = {
      {0x44, 0x01, 0x54}, {0x3b, 0x52, 0x8b}, {0x21, 0x91, 0x8c}, {0x5e, 0xc9, 0x62}, {0xfd, 0xe7, 0x25}};
  if (!(t >= 0)) t = 0; /* NaN too */
  if (t > 1) t = 1;
  double u = t * 4;
  int k = (int)u;
  if (k > 3) k = 3;
  double w = u - k;
  int rgb[3];
  for (int c = 0; c < 3; c++) rgb[c] = (int)lround(stops[k][c] * (1 - w) + stops[k + 1][c] * w);
  snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  if (dark) *dark = t < 0.55;
}

int cl_report_svg_ticks(double *lo, double *hi, double clamp_lo, double clamp_hi, double *ticks,
                        int max) {
  if (max < 2) return 0;
  double a = *lo, b = *hi;
  if (!(b - a > 1e-9)) a -= 0.05, b += 0.05; /* one value: show a band around it */
  double raw = (b - a) / (max > 6 ? 5 : max - 1), mag = pow(10, floor(log10(raw))), step = 10 * mag;
  static const double nice[] = {1, 2, 2.5, 5, 10};
  for (int i = 0; i < 5; i++)
    if (nice[i] * mag >= raw) {
      step = nice[i] * mag;
      break;
    }
  a = floor(a / step + 1e-9) * step;
  b = ceil(b / step - 1e-9) * step;
  if (a < clamp_lo) a = clamp_lo;
  if (b > clamp_hi) b = clamp_hi;
  int n = 0;
  for (double v = a; v <= b + step * 1e-6 && n < max; v += step) ticks[n++] = fabs(v) < 1e-12 ? 0 : v;
  *lo = a;
  *hi = b;
  return n;
}

/* Columns as wide as the longest label needs (within [LEGEND_COL, w]), as many as fit. */
static int legend_cols(double w, int n, const char *const *labels, double *colw) {
  double need = LEGEND_COL;
  for (int i = 0; i < n; i++) need = fmax(need, cl_report_svg_text_px(labels[i], 11) + 34);
  if (need > w) need = w;
  int cols = (int)(w / need);
  if (cols < 1) cols = 1;
  if (cols > n) cols = n > 0 ? n : 1;
  *colw = need;
  return cols;
}

double cl_report_svg_legend_height(double w, int n, const char *const *labels) {
  double cw;
  int cols = legend_cols(w, n, labels, &cw);
  return n > 0 ? ceil((double)n / cols) * LEGEND_ROW : 0;
}

double cl_report_svg_legend(FILE *f, double x, double y, double w, int n,
                            const char *const *labels, const char *swatch) {
  double cw;
  int cols = legend_cols(w, n, labels, &cw);
  for (int i = 0; i < n; i++) {
    double lx = x + (i % cols) * cw, ly = y + (i / cols) * LEGEND_ROW;
    const char *col = cl_report_svg_color(i), *dash = cl_report_svg_dash(i);
    fputs("<g class=\"legend\">", f);
    if (strcmp(swatch, "box") == 0) {
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", lx, ly + 2, col);
    } else {
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/>"
                 "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>",
              lx, ly + 8, lx + 18, ly + 8, col, *dash ? " stroke-dasharray=\"" : "", dash,
              *dash ? "\"" : "", lx + 9, ly + 8, col);
    }
    cl_report_svg_text(f, lx + 24, ly + 12, "start", 11, cw - 30, NULL, labels[i]);
    fputs("</g>\n", f);
  }
  return cl_report_svg_legend_height(w, n, labels);
}

/* ---- plot scaffolding ---- */

void cl_report_svg_open(FILE *f, double w, double h, const char *label) {
  fprintf(f, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"",
          w, h, w, h);
  cl_report_html(f, label);
  fputs("\">\n", f);
}

void cl_report_note(FILE *f, const char *cls, const char *text) {
  fprintf(f, "<p class=\"%s\">", cls);
  cl_report_html(f, text);
  fputs("</p>\n", f);
}

void cl_report_figure_open(FILE *f, const char *id, const char *title, const char *caption) {
  fprintf(f, "<figure id=\"%s\">\n<figcaption><strong>", id);
  cl_report_html(f, title);
  fputs("</strong> ", f);
  cl_report_html(f, caption);
  fputs("</figcaption>\n", f);
}

double cl_report_ymap(const cl_report_frame *fr, double v) {
  if (v < fr->lo) v = fr->lo;
  if (v > fr->hi) v = fr->hi;
  return fr->y0 + fr->h * (1 - (v - fr->lo) / (fr->hi - fr->lo));
}

/* As many decimals as the tick step needs: 2.5-point steps read 92.5%, not 93%; 0.25 reads 0.25. */
static void tick_label(char *buf, size_t n, double v, double step, int pct) {
  const double k = pct ? 100 : 1;
  int d = 0;
  while (d < 3 && fabs(k * step * pow(10, d) - round(k * step * pow(10, d))) > 1e-6) d++;
  snprintf(buf, n, pct ? "%.*f%%" : "%.*f", d, k * v);
}

void cl_report_svg_yaxis(FILE *f, cl_report_frame *fr, double lo, double hi, double clamp_lo, double clamp_hi, int pct,
                         const char *title) {
  double ticks[12];
  int nt = cl_report_svg_ticks(&lo, &hi, clamp_lo, clamp_hi, ticks, 7);
  fr->lo = lo, fr->hi = hi;
  if (!(fr->hi > fr->lo)) fr->hi = fr->lo + 0.01;
  double step = nt > 1 ? ticks[1] - ticks[0] : 0.1;
  for (int i = 0; i < nt; i++) {
    double y = cl_report_ymap(fr, ticks[i]);
    char lab[32];
    tick_label(lab, sizeof lab, ticks[i], step, pct);
    fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", fr->x0, y,
            fr->x0 + fr->w, y);
    cl_report_svg_text(f, fr->x0 - 6, y + 4, "end", 11, 0, NULL, lab);
    fputc('\n', f);
  }
  fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", fr->x0,
          fr->y0 + fr->h, fr->x0 + fr->w, fr->y0 + fr->h);
  char tr[96];
  double cx = 14, cy = fr->y0 + fr->h / 2;
  snprintf(tr, sizeof tr, "transform=\"rotate(-90 %.1f %.1f)\" class=\"axis-title\"", cx, cy);
  cl_report_svg_text(f, cx, cy, "middle", 11, fr->h, tr, title);
  fputc('\n', f);
}

void cl_report_svg_heatmap(FILE *f, const char *scale_id, const char *label, int R, int C, const char *const *rows,
                           const char *const *cols, const double *val, const char *const *tips) {
  double vmin = INFINITY, vmax = -INFINITY;
  for (int k = 0; k < R * C; k++)
    if (!isnan(val[k])) vmin = fmin(vmin, val[k]), vmax = fmax(vmax, val[k]);
  double lw = 200, cw = fmin(fmax((PLOT_W - lw - MR) / C, 64), 140), ch = 28, top = 34;
  double W = lw + C * cw + MR, H = top + R * ch + 46;
  cl_report_svg_open(f, W, H, label);
  for (int j = 0; j < C; j++)
    cl_report_svg_text(f, lw + j * cw + cw / 2, top - 10, "middle", 11, cw - 4, NULL, cols[j]);
  fputc('\n', f);
  for (int r = 0; r < R; r++) {
    double y = top + r * ch;
    cl_report_svg_text(f, lw - 8, y + ch / 2 + 4, "end", 11, lw - 12, NULL, rows[r]);
    for (int j = 0; j < C; j++) {
      int k = r * C + j;
      double x = lw + j * cw;
      if (isnan(val[k])) {
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"empty\"><title>not evaluated</title></rect>",
                x + 1, y + 1, cw - 2, ch - 2);
        continue;
      }
      double v = val[k], t = vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5;
      char col[8];
      int dark;
      cl_report_svg_heat(t, col, &dark);
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", x + 1,
              y + 1, cw - 2, ch - 2, col);
      cl_report_html(f, tips ? tips[k] : NULL);
      fputs("</title></rect>", f);
      char lab[16];
      snprintf(lab, sizeof lab, "%.1f", 100 * v);
      cl_report_svg_text(f, x + cw / 2, y + ch / 2 + 4, "middle", 11, 0,
                         dark ? "class=\"on-dark\"" : "class=\"on-light\"", lab);
    }
    fputc('\n', f);
  }
  /* the colour scale */
  double sy = top + R * ch + 14, sx = lw, sw = fmin(C * cw, 240);
  fprintf(f, "<defs><linearGradient id=\"%s\">", scale_id);
  for (int i = 0; i <= 4; i++) {
    char col[8];
    cl_report_svg_heat(i / 4.0, col, NULL);
    fprintf(f, "<stop offset=\"%d%%\" stop-color=\"%s\"/>", i * 25, col);
  }
  fprintf(f, "</linearGradient></defs><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"10\" fill=\"url(#%s)\"/>",
          sx, sy, sw, scale_id);
  char a[32], b[32];
  snprintf(a, sizeof a, "%.1f%%", 100 * vmin);
  snprintf(b, sizeof b, "%.1f%%", 100 * vmax);
  cl_report_svg_text(f, sx, sy + 24, "start", 10, 0, NULL, a);
  cl_report_svg_text(f, sx + sw, sy + 24, "end", 10, 0, NULL, b);
  fputs("\n</svg>\n", f);
}
