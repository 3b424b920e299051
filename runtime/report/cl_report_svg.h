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

#endif
