/* cl_cli: the clade command line. Each subcommand lives in cmd_<name>.c and is listed in
 * the table in main.c. Owns: argument parsing helpers shared by subcommands.
 * Discipline: data to stdout only; notices, progress and errors to stderr; exit 0 on
 * success, non-zero on failure. */
#ifndef CL_CLI_H
#define CL_CLI_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/cl_core.h"

typedef struct cl_cmd {
  const char *name;
  const char *summary;
  const char *usage; /* full help text */
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cl_cmd;

extern const cl_cmd cl_cmds[];

/* "clade: <msg>" to stderr. */
void cl_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the usage of a command to stderr and return 2. */
int cl_cli_usage(const char *cmd);
/* How a run computed, as clade log and compare show it: "backend/precision", plus "/decode"
 * when not full ("-" for what is unknown: NULL or ""). */
void cl_cli_run_how(const char *backend, const char *precision, const char *decode, char *buf, size_t n);

/* Lines of a text file, one text a line (a final newline adds no empty text; \r\n works):
 * *buf holds them, *lines points into it; the caller frees both. */
int cl_cli_read_lines(const char *path, char **buf, char ***lines, int *n, cl_error *e);

/* One RFC 4180 CSV field: quoted by libcsv (csv_fwrite, inner quotes doubled) when it holds a
 * comma, a quote, CR or LF; as it is otherwise; NULL is empty. */
void cl_cli_csv_field(FILE *f, const char *s);

/* "--name VALUE" or "--name=VALUE" at argv[*i] for one of names[0..n): its index with *val
 * set (*i past a separate value); -1 when argv[*i] is none of them; -2 when the value is
 * missing (said on stderr as "CMD: option --name needs a value"). */
int cl_cli_option(const char *cmd, int argc, char **argv, int *i, const char *const *names, int n,
                  const char **val);

/* --db PATH, --out PATH, --run ID (also as --opt=V) at argv[*i] into *db, *out, *run (*i past
 * its value): 0, or 2 after saying what is wrong (an unknown argument, a missing value, an
 * empty path, a run id that is not a positive integer) and printing the usage. */
int cl_cli_db_out_run(const char *cmd, int argc, char **argv, int *i, const char **db, const char **out,
                      int64_t *run);

/* Confidence intervals (clade results, clade report): --ci none|bootstrap, --ci-resamples N,
 * --ci-seed S (also as --opt=V) at argv[*i]: 1 when taken (*i past its value), 0 when argv[*i]
 * is none of them, -1 on a bad value (said on stderr). Defaults: bootstrap, 1000, seed 0. */
struct cl_stats_opts;
int cl_cli_ci_option(const char *cmd, int argc, char **argv, int *i, struct cl_stats_opts *o);
void cl_cli_ci_defaults(struct cl_stats_opts *o);

int cl_cmd_version(int argc, char **argv);
int cl_cmd_help(int argc, char **argv);
int cl_cmd_results(int argc, char **argv);
int cl_cmd_predictions(int argc, char **argv);
int cl_cmd_export(int argc, char **argv);
int cl_cmd_log(int argc, char **argv);
int cl_cmd_run(int argc, char **argv);
int cl_cmd_check(int argc, char **argv);
int cl_cmd_classes(int argc, char **argv);
int cl_cmd_embed(int argc, char **argv);
int cl_cmd_predict(int argc, char **argv);
int cl_cmd_cache(int argc, char **argv);
int cl_cmd_tokenize(int argc, char **argv);
int cl_cmd_synth(int argc, char **argv);
int cl_cmd_preprocess(int argc, char **argv);
int cl_cmd_bench(int argc, char **argv);
int cl_cmd_compare(int argc, char **argv);
int cl_cmd_report(int argc, char **argv);
int cl_cmd_merge(int argc, char **argv);
int cl_cmd_slurm(int argc, char **argv);
int cl_cmd_grad(int argc, char **argv);
int cl_cmd_train(int argc, char **argv);

#endif
