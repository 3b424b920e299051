/* cl_report: `clade report`, one self-contained HTML page about a run.
 * Owns: gathering the run's results and the history of its cells over the complete runs, the
 * page (inline CSS, no script, no URL, every text escaped) and its four plots, drawn as inline
 * SVG with cl_report_svg: zero-shot top1 per dataset and model (bars), accuracy vs shots (mean
 * +- std over trials), a text type x model heatmap (zero-shot top1, mean over datasets),
 * top1 of each cell across commits and, for a run with retrieval cells, micro top1 per
 * query->key, split and rank (bars); for a run that trains, the loss curves and the train-type x
 * test-type heatmaps (cl_report_train.c). A plot without data is replaced by a note. */
#ifndef CL_REPORT_H
#define CL_REPORT_H
#include <stdint.h>
#include <stdio.h>

#include "report/cl_stats.h"
#include "store/cl_store.h"

/* The most runs the history plot shows (the latest ones). */
#define CL_REPORT_HISTORY_MAX 50
/* The most cells it draws: beyond this, those whose top1 moved most. */
#define CL_REPORT_HISTORY_SERIES 12

/* The plots of training (cl_report_train.c), when the run trained models or evaluated trained
 * ones: the loss per step of each training job, and the train-type x test-type heatmaps of
 * the trained models' zero-shot top-1, one per dataset. f NULL: draws nothing, only sets
 * *drawn (may be NULL) to whether there is anything to draw. */
int cl_report_train_plots(FILE *f, cl_store *s, int64_t run_id, int *drawn, cl_error *e);

/* Writes the page about run_id (which must exist) to f; accuracies and retrieval metrics carry
 * the intervals and ties of report/cl_stats.h made as ci says (NULL: 1000 bootstrap resamples,
 * seed 0; kept in the database, cl_stats_get): in the tables ([low, high], the best and those
 * tied with it in bold, a cell without one says why on hover) and as error bars in the
 * zero-shot, shots and retrieval plots. */
int cl_report_write(cl_store *s, int64_t run_id, const cl_stats_opts *ci, FILE *f, cl_error *e);
/* The same into path, atomically (a temporary file beside it, then rename). */
int cl_report_write_file(cl_store *s, int64_t run_id, const cl_stats_opts *ci, const char *path, cl_error *e);

#endif
