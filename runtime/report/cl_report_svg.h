/* cl_report_svg: the drawing helpers behind the report's plots: HTML escaping, text that is
 * truncated to a width with its full content as a tooltip, colours, axis ticks, legends.
 * Inline SVG inside HTML5 (no xmlns: the page must hold no URL at all). Private to report/. */
#ifndef CL_REPORT_SVG_H
#define CL_REPORT_SVG_H
#include <stdio.h>

/* s with & < > " ' escaped; NULL prints nothing. */
void cl_report_html(FILE *f, const char *s);

/* Width of text in code points (UTF-8), and an estimate of its width in pixels. */
size_t cl_report_svg_chars(const char *s);
double cl_report_svg_text_px(const char *s, double font_px);

/* <text> at (x, y); anchor "start", "middle" or "end"; attrs: extra attributes (class,
 * transform) or NULL. Text wider than max_px (0: no limit) is cut with an ellipsis and the
 * whole text becomes a <title> tooltip. */
void cl_report_svg_text(FILE *f, double x, double y, const char *anchor, double font_px,
                        double max_px, const char *attrs, const char *text);

/* A categorical palette (10 colours) and a dash pattern that changes every 10 series, so 1..N
 * series stay distinguishable. dash: "" for solid. */
const char *cl_report_svg_color(int i);
const char *cl_report_svg_dash(int i);
/* A sequential (viridis-like) colour for t in [0, 1] as "#rrggbb"; *dark: white text reads
 * better on it. */
void cl_report_svg_heat(double t, char out[8], int *dark);

/* Nice tick positions covering [lo, hi] (lo < hi), at most max of them, clamped to [clamp_lo,
 * clamp_hi]; *lo and *hi widen to the first and last tick. Returns the count. */
int cl_report_svg_ticks(double *lo, double *hi, double clamp_lo, double clamp_hi, double *ticks,
                        int max);

/* A legend of n entries in columns starting at (x, y) within width w: a swatch ("line" or
 * "box") of each series' colour and its label. Columns are as wide as the longest label (at
 * most w, where a label is cut with a tooltip). Returns the height used. */
double cl_report_svg_legend(FILE *f, double x, double y, double w, int n,
                            const char *const *labels, const char *swatch);
/* The height legend() would use. */
double cl_report_svg_legend_height(double w, int n, const char *const *labels);

/* ---- plot scaffolding shared by the report's plots ---- */

/* An <svg> element of w x h whose accessible label is label (closed by the caller). */
void cl_report_svg_open(FILE *f, double w, double h, const char *label);
/* <figure id=...><figcaption><strong>title</strong> caption</figcaption> (closed by the caller). */
void cl_report_figure_open(FILE *f, const char *id, const char *title, const char *caption);
/* A note under a plot; an omitted plot's note says so in its class ("note omitted"), for
 * tools to count. */
void cl_report_note(FILE *f, const char *cls, const char *text);

/* A plot area: (x0, y0) its top left, w x h, the y values lo..hi it spans. */
typedef struct cl_report_frame {
  double x0, y0, w, h, lo, hi;
} cl_report_frame;
/* The y pixel of value v (clamped to the frame's range). */
double cl_report_ymap(const cl_report_frame *fr, double v);
/* Grid lines, tick labels and the title of the y axis over [lo, hi] (widened to nice ticks
 * within [clamp_lo, clamp_hi]); pct: values are fractions shown in % (accuracies), else
 * plain numbers (losses). Sets fr->lo and fr->hi. */
void cl_report_svg_yaxis(FILE *f, cl_report_frame *fr, double lo, double hi, double clamp_lo, double clamp_hi, int pct,
                         const char *title);

/* A heatmap of fractions (shown in %, one decimal, coloured from the smallest to the largest
 * value): R rows x C columns, val row-major, NAN for a cell not evaluated; tips: each cell's
 * tooltip (row-major). scale_id: the colour scale's id, unique on the page. A whole <svg>. */
void cl_report_svg_heatmap(FILE *f, const char *scale_id, const char *label, int R, int C, const char *const *rows,
                           const char *const *cols, const double *val, const char *const *tips);

#endif
