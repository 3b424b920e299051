/* cl_store: the results database (SQLite) and run provenance (libgit2).
 * Owns: the schema and its forward migrations, every SQL statement run against the results
 * database and run provenance (git commit, branch, dirty flag, host, version). Content
 * hashes are core's (cl_hash_file).
 *
 * Model: a run is one `clade run` of one file; it holds evaluations (one model x dataset x
 * protocol x text type x shots x query x key x split x rank cell; the last four are the
 * retrieval axes, "" for a classification), each with results (per trial, or the
 * aggregate), per-example predictions (with the retrieved key rows for a retrieval) and
 * few-shot support ids. Rows are append-only. Each evaluation is
 * written in one transaction (eval_begin .. eval_commit), so a crash loses at most the
 * evaluation in flight. Two processes may share a database (WAL, 30 s busy timeout); a handle
 * serves one thread at a time (open one per thread). */
#ifndef CL_STORE_H
#define CL_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "../core/cl_core.h"

/* PRAGMA user_version of a database this build writes; older ones migrate forward on open. */
#define CL_STORE_SCHEMA_VERSION 11
/* PRAGMA application_id marking a clade database ("Clad"). */
#define CL_STORE_APP_ID 0x436c6164
#define CL_STORE_DEFAULT_PATH "results/clade.db"

typedef struct cl_store cl_store;

/* Open (creating it, its parent directories and the schema when missing) for writing. */
int cl_store_open(const char *path, cl_store **out, cl_error *e);
/* Open an existing database for reading: a missing file is an error naming the path (and
 * nothing is created), so is a file that is not a clade database. */
int cl_store_open_existing(const char *path, cl_store **out, cl_error *e);
/* Rolls back an evaluation still open. NULL is fine. */
void cl_store_close(cl_store *s);
const char *cl_store_path(const cl_store *s);
/* A non-fatal notice from the last call that had one (e.g. git provenance unreadable, WAL
 * unavailable), for the caller to show on stderr; NULL when none. Cleared by clear_warning. */
const char *cl_store_warning(const cl_store *s);
void cl_store_clear_warning(cl_store *s);
/* PRAGMA user_version as found on disk after migration. */
int cl_store_schema_version(cl_store *s, int *version, cl_error *e);

/* ---- runs ---- */
typedef struct cl_run_info {
  const char *file;      /* the experiment file as given */
  const char *file_hash; /* NULL: hashed here when the file is readable */
  const char *backend;
  const char *device;
  const char *precision;
  const char *decode; /* image decoding, "full" (NULL) or "draft" */
  int shard_index, shard_count; /* shard I of N (`clade run --shard I/N`); count 0: not a shard */
} cl_run_info;

/* Records a run with status 'running'. Fills git_commit/branch/dirty via libgit2 from the
 * repository containing `file` (NULL, not an error, outside a repository; other git failures
 * also leave NULL and set the warning), clade version, host, pid and start time. */
int cl_store_run_begin(cl_store *s, const cl_run_info *ri, int64_t *run_id, cl_error *e);
/* status: "complete", "interrupted", "failed" (or "running" again). Sets ended_at and
 * wall_seconds (monotonic when this handle began the run, else from the timestamps). */
int cl_store_run_end(cl_store *s, int64_t run_id, const char *status, cl_error *e);

/* Work counters of a run (orchestration fills these); stats_json: NULL or a JSON text. */
typedef struct cl_run_stats {
  int64_t images_encoded, texts_encoded, images_cached, texts_cached;
  const char *stats_json;
} cl_run_stats;
int cl_store_run_set_stats(cl_store *s, int64_t run_id, const cl_run_stats *st, cl_error *e);

/* ---- evaluations: one transaction each ---- */
typedef struct cl_eval_info {
  const char *experiment, *model, *model_hash, *dataset;
  /* the model's config beside its checkpoint (cl_encoder's config_hash; schema 11), or NULL */
  const char *config_hash;
  const char *protocol;  /* "zero_shot", "few_shot", "linear_probe" or a user protocol */
  const char *text_type; /* Lua name; NULL or "" when the protocol uses no text */
  int shots;             /* 0 for zero-shot */
  const char *params_json;
  int n_examples;
  /* retrieval axes: query and key modality ("image", "dna", "image+dna", ...), the query
   * split and the taxonomic rank; NULL or "" for a classification */
  const char *query, *key, *split, *rank;
} cl_eval_info;

/* Opens a write transaction (BEGIN IMMEDIATE) and inserts the evaluation. Only one evaluation
 * may be open per handle. */
int cl_store_eval_begin(cl_store *s, int64_t run_id, const cl_eval_info *ei, int64_t *eval_id,
                        cl_error *e);
/* trial: 0..n-1, or -1 for the aggregate over trials ('all'). The rows below go into the open
 * evaluation only; a failed insert poisons it, so commit then rolls back instead. */
int cl_store_add_result(cl_store *s, int64_t eval_id, int trial, const char *metric,
                        double value, cl_error *e);
/* `correct` is stored as label == prediction. */
int cl_store_add_prediction(cl_store *s, int64_t eval_id, int trial, int example,
                            const char *filepath, const char *label, const char *prediction,
                            cl_error *e);
/* The same with hit: where the true label ranked among the prediction's ranked classes
 * (1-based), 0 when beyond those kept (stored NULL); top-k is correct when 1 <= hit <= k. */
int cl_store_add_prediction_hit(cl_store *s, int64_t eval_id, int trial, int example, const char *filepath,
                                const char *label, const char *prediction, int hit, cl_error *e);
/* A retrieval's prediction: the query row `example`, its label, the top key's label as the
 * prediction, and retrieved_json the retrieved key rows best first (a JSON array of 0-based
 * manifest rows); hit: the 1-based position of the first retrieved key of the query's label,
 * 0 when none has it (stored NULL; schema 9 on: before, every retrieval's hit is NULL). */
int cl_store_add_retrieval(cl_store *s, int64_t eval_id, int trial, int example, const char *filepath,
                           const char *label, const char *prediction, const char *retrieved_json, int hit,
                           cl_error *e);
/* A few-shot support image of class `cls` in trial (>= 0); rows keep insertion order. */
int cl_store_add_support(cl_store *s, int64_t eval_id, int trial, const char *cls,
                         const char *filepath, cl_error *e);
int cl_store_eval_commit(cl_store *s, int64_t eval_id, cl_error *e);
/* Rolls back the open evaluation, if any: none of its rows remain. */
void cl_store_eval_abort(cl_store *s);


/* ---- provenance without a run ---- */
typedef struct cl_git_info {
  int in_repo;       /* 0: not inside a git repository; the fields below are unset */
  char commit[41];   /* HEAD's commit; "" when the repository has no commits */
  char branch[256];  /* current branch; "" on a detached HEAD */
  int dirty;         /* 1 modified, staged or untracked (not ignored) files; 0 clean; -1 bare */
} cl_git_info;
/* The repository containing path (a file or a directory). Outside a repository: CL_OK with
 * in_repo = 0. */
int cl_store_git_info(const char *path, cl_git_info *gi, cl_error *e);

/* ---- reading ---- */
/* Every iterator calls fn once per row, in a stable order; the row's strings live until fn
 * returns. A non-zero return from fn stops the iteration and is returned (fn sets e). */
typedef struct cl_run_row {
  int64_t id;
  const char *file, *file_hash;
  const char *git_commit, *git_branch; /* NULL when unknown */
  int git_dirty;                       /* -1 unknown */
  const char *clade_version, *backend, *device, *precision, *host;
  const char *decode; /* "full" or "draft" */
  int64_t pid;
  const char *started_at, *ended_at; /* ISO 8601 UTC; ended_at NULL while running */
  const char *status;
  double wall_seconds;
  int has_wall;
  int64_t images_encoded, texts_encoded, images_cached, texts_cached;
  const char *stats_json; /* NULL when none */
  int64_t n_evaluations;
  int shard_index, shard_count; /* a shard: I/N; a merged run: -1/N; otherwise -1/0 */
  const char *plan_hash, *slurm_job; /* NULL when none */
} cl_run_row;
typedef int (*cl_store_run_fn)(const cl_run_row *r, void *ud, cl_error *e);
/* run_id 0: every run, ascending id; otherwise that run (error naming it when absent). */
int cl_store_each_run(cl_store *s, int64_t run_id, cl_store_run_fn fn, void *ud, cl_error *e);
/* The highest run id; an error when the database holds no run. */
int cl_store_latest_run(cl_store *s, int64_t *run_id, cl_error *e);
/* CL_OK when the run exists, else CL_EINVAL naming it and the database. */
int cl_store_check_run(cl_store *s, int64_t run_id, cl_error *e);

typedef struct cl_result_row {
  int64_t run_id, eval_id;
  const char *experiment, *model, *model_hash, *dataset, *protocol, *text_type;
  int shots;
  int trial; /* -1: aggregate ('all') */
  const char *metric;
  double value;
  int has_value; /* 0 when stored NULL (a NaN) */
  int64_t n_examples;
  const char *query, *key, *split, *rank; /* "" when not a retrieval */
  const char *config_hash; /* the model's config file (schema 11), or NULL */
} cl_result_row;
typedef int (*cl_store_result_fn)(const cl_result_row *r, void *ud, cl_error *e);
/* Order: evaluation id, the aggregate then trials ascending, metric name. */
int cl_store_each_result(cl_store *s, int64_t run_id, cl_store_result_fn fn, void *ud,
                         cl_error *e);

typedef struct cl_prediction_row {
  int64_t run_id, eval_id;
  const char *experiment, *model, *dataset, *protocol, *text_type;
  int shots, trial; /* trial -1: none ('all') */
  int example;
  const char *filepath, *label, *prediction;
  int correct;
  const char *query, *key, *split, *rank; /* "" when not a retrieval */
  const char *retrieved;                  /* JSON array of key rows; NULL when not a retrieval */
  int hit; /* the true label's 1-based rank among the ranked classes; 0: beyond them or unknown */
} cl_prediction_row;
typedef int (*cl_store_prediction_fn)(const cl_prediction_row *r, void *ud, cl_error *e);
/* Order: evaluation id, no trial then trials ascending, example. */
int cl_store_each_prediction(cl_store *s, int64_t run_id, cl_store_prediction_fn fn, void *ud,
                             cl_error *e);

typedef struct cl_support_row {
  int64_t eval_id;
  int trial;
  const char *cls, *filepath;
} cl_support_row;
typedef int (*cl_store_support_fn)(const cl_support_row *r, void *ud, cl_error *e);
/* Order: trial, then insertion order. */
int cl_store_each_support(cl_store *s, int64_t eval_id, cl_store_support_fn fn, void *ud,
                          cl_error *e);


/* ---- resume and claims (cl_store_jobs.c) ----
 * A job is one protocol on one model x dataset of one experiment. Several processes may work
 * on one run: each claims a job before doing it; a claim whose process no longer exists on
 * this host is reaped at once, one from another host when its lease has run out. */
#define CL_STORE_LEASE_SECONDS 900.0

/* The latest unfinished run (running, interrupted or failed) of this file content
 * (ri->file_hash) on the same backend, precision and decoding: *run_id 0 when none. *live is 1 when a
 * live process (this host) or an unexpired lease elsewhere is still running it, so the
 * caller joins it instead of taking it over. */
int cl_store_find_unfinished(cl_store *s, const cl_run_info *ri, int64_t *run_id, int *live, cl_error *e);
/* Atomically: resume/join the unfinished run of ri's content, backend, precision and
 * decoding, or begin a new run. */
int cl_store_begin_or_resume(cl_store *s, const cl_run_info *ri, int64_t *run_id, int *resumed, int *live,
                             cl_error *e);
/* Take over (or join) a run: status running, and this process's host and pid on the run
 * when taking it over. */
int cl_store_run_adopt(cl_store *s, int64_t run_id, int take_over, cl_error *e);
/* Claim a job: *state 1 = claimed by us (do it), 0 = already done (skip), -1 = another live
 * process holds it (skip for now). */
int cl_store_job_claim(cl_store *s, int64_t run_id, const char *job, int *state, cl_error *e);
int cl_store_job_done(cl_store *s, int64_t run_id, const char *job, cl_error *e);
/* Drop this process's unfinished claims (on a clean interrupt). */
int cl_store_jobs_release(cl_store *s, int64_t run_id, cl_error *e);
/* Add a process's counters to the run's (a resumed or shared run sums its parts). */
int cl_store_run_add_stats(cl_store *s, int64_t run_id, const cl_run_stats *st, cl_error *e);
/* Jobs of the run marked done. */
int cl_store_jobs_done(cl_store *s, int64_t run_id, int64_t *n, cl_error *e);
/* Whether this run already holds the evaluation cell (a job cut short by a crash). */
int cl_store_eval_exists(cl_store *s, int64_t run_id, const cl_eval_info *ei, int *exists, cl_error *e);

/* ---- shards and merging (cl_store_merge.c) ----
 * `clade run --shard I/N` records one part of a run's plan; `clade merge` folds the shard
 * runs of one plan, from any number of databases, into one merged run of a target database. */
/* The plan of a shard run: its text (job keys and costs, one job a line, in run order), the
 * text's hash and how many of its jobs are this shard's. A resumed run whose recorded plan
 * differs is an error naming both hashes. */
int cl_store_run_set_plan(cl_store *s, int64_t run_id, const char *plan, const char *plan_hash, int64_t plan_jobs,
                          cl_error *e);
/* The job key of the open evaluation (what puts merged evaluations in run order). */
int cl_store_eval_set_job(cl_store *s, int64_t eval_id, const char *job, cl_error *e);
/* The Slurm job (e.g. "1234_2") now working on the run. */
int cl_store_run_set_slurm(cl_store *s, int64_t run_id, const char *slurm_job, cl_error *e);

/* Where the latest shard run of a database stands (`clade slurm --status`). */
typedef struct cl_shard_state {
  int64_t run_id;   /* 0: the database holds no shard run */
  int index, count; /* I/N */
  char status[16];  /* the run's status */
  int64_t jobs_done, plan_jobs; /* plan_jobs -1: not yet planned */
  char plan_hash[41], slurm_job[64];
} cl_shard_state;
int cl_store_shard_state(cl_store *s, cl_shard_state *st, cl_error *e);

/* What a merge found: the merged run, and per shard index whether it is complete. */
typedef struct cl_merge_report {
  int64_t run_id;      /* the merged run in the target */
  int shard_count;     /* N */
  int complete;        /* every shard 0..N-1 merged complete */
  int64_t evaluations_added, evaluations_same;
  int64_t trainings_added, trainings_same; /* training jobs (one per trained model) */
  char *incomplete;    /* malloc'd, NULL when complete: "1 (interrupted, 1 of 2 jobs, shards/1.db), 2 (missing)" */
  char *rerun;         /* malloc'd: the shard indices to rerun, "1,2" */
  char *file;          /* malloc'd: the experiment file of the plan */
} cl_merge_report;
void cl_merge_report_free(cl_merge_report *r);
/* Folds every shard run (of one plan) found in the databases at paths[0..n) into target's
 * merged run of that plan, creating it when absent: evaluations with their results,
 * predictions, supports and any other table that references evaluations (every column the
 * target has), done jobs, training jobs with their steps (one record per trained model: shards
 * that trained the same model, or took it from a shared cache, hold one key and weights), and
 * a run_shards row per shard run. One transaction: on any error
 * the target is left as it was. Idempotent: an evaluation already merged with the same rows
 * is skipped; the same evaluation with different rows is an error naming it. A path that
 * does not exist counts as a missing shard; runs of different plans, files, backends,
 * precisions or decodings are refused naming the database. The merged run is complete
 * when every shard 0..N-1 has been merged complete, incomplete otherwise (schema 10; a
 * merged run stored 'interrupted' before is migrated to 'incomplete'). */
int cl_store_merge(cl_store *target, const char *const *paths, int n, cl_merge_report *r, cl_error *e);
/* The shards of merged run run_id not merged complete, as cl_merge_report's incomplete
 * (NULL when none) and rerun (both malloc'd); a run that is not merged is an error. */
int cl_store_merged_shards(cl_store *s, int64_t run_id, char **incomplete, char **rerun, cl_error *e);

/* ---- speed measurements (cl_store_bench.c, `clade bench`) ----
 * A benchmark is a run (cl_store_run_begin with the clade binary as the file, so the run
 * carries the git commit, host, backend and device) holding one row per measure. */
typedef struct cl_bench_row {
  const char *name;     /* "image_tower", "text_tower", "end_to_end", "gemm_peak", "peak_rss", ... */
  int batch;            /* items per call; 0: not batched (stored NULL) */
  double value;         /* the median over reps */
  const char *unit;     /* "images/s", "prompts/s", "GFLOP/s", "MiB", ... */
  double value_min, value_max;
  int reps;             /* timed repetitions */
  int64_t n;            /* items per repetition */
  double peak_fraction; /* of the measured fp32 GEMM peak; < 0: none (stored NULL) */
  const char *model, *model_hash;
  int threads;
  const char *params_json; /* NULL or a JSON object with anything else */
} cl_bench_row;
/* Inserts one measure (its own statement; not inside an evaluation). */
int cl_store_bench_add(cl_store *s, int64_t run_id, const cl_bench_row *r, cl_error *e);
typedef int (*cl_store_bench_fn)(int64_t run_id, const cl_bench_row *r, void *ud, cl_error *e);
/* run_id 0: every run's measures; in run then insertion order. */
int cl_store_each_bench(cl_store *s, int64_t run_id, cl_store_bench_fn fn, void *ud, cl_error *e);

/* ---- training jobs (cl_store_train.c, schema 7) ----
 * Tables (what `clade log` and `clade report` read):
 *   train_jobs(id, run_id -> runs, name, content_key, parent, parent_hash, model_hash,
 *              out_dir, spec_json, mixture_json, data_json, n_examples, steps, steps_done,
 *              status running|complete|interrupted|failed, clade_version, started_at,
 *              ended_at, wall_seconds): one training of a `train "name" { ... }` model (or
 *              of `clade train`). spec_json holds every hyperparameter (epochs, batch_size,
 *              lr, weight_decay, warmup, seed, freeze, projections_only, clip_grad, augment,
 *              draw, templates); mixture_json the text-type mixture [{"type","weight"}].
 *   train_steps(train_id -> train_jobs, step (0-based), epoch, loss (before the step's
 *              update), lr, grad_norm (NULL without clipping), text_type (the batch's drawn
 *              type; '' when drawn per example), draws (JSON {"types": [...], "templates":
 *              [...]}, one entry per example of the batch)).
 * The link to evaluations: train_jobs.model_hash (the trained checkpoint's content hash)
 * equals evaluations.model_hash of every evaluation of the trained model, in this run or a
 * later one that took the trained model from the cache. */
typedef struct cl_train_job_info {
  int64_t run_id; /* 0: none (stored NULL) */
  const char *name, *content_key, *parent, *parent_hash, *out_dir;
  const char *spec_json, *mixture_json, *data_json;
  int64_t n_examples, steps;
} cl_train_job_info;
/* Records a training job (status running), or takes over the unfinished one of the same run
 * and content key (a resumed training): *train_id either way. */
int cl_store_train_begin(cl_store *s, const cl_train_job_info *ti, int64_t *train_id, cl_error *e);

typedef struct cl_train_step_row {
  int64_t step;
  int epoch;
  double loss, lr, grad_norm; /* grad_norm < 0: none */
  const char *text_type;      /* "" when drawn per example */
  const char *draws_json;     /* NULL: none */
} cl_train_step_row;
/* Records steps (one transaction; a step already recorded is replaced: a resumed training
 * redoes the steps after its last checkpoint bit for bit) and sets steps_done to the highest
 * step + 1. */
int cl_store_train_steps(cl_store *s, int64_t train_id, const cl_train_step_row *rows, int n, cl_error *e);
/* The latest complete training job of a content key: *train_id, 0 when there is none. */
int cl_store_train_find(cl_store *s, const char *content_key, int64_t *train_id, cl_error *e);
/* status: "complete" (with the trained checkpoint's model_hash), "interrupted" or "failed". */
int cl_store_train_end(cl_store *s, int64_t train_id, const char *status, const char *model_hash, cl_error *e);
/* What the database knows of a trained/<key>.partial folder's content key: its latest
 * training job (id 0 when none) and superseded_run, the run of a later complete job of the
 * same name and experiment file under another key (0 when none: the declaration changed
 * and that model was trained since). */
typedef struct cl_train_key_info {
  int64_t id, run_id, steps, steps_done, superseded_run;
  char name[256], status[16];
} cl_train_key_info;
int cl_store_train_key_info(cl_store *s, const char *content_key, cl_train_key_info *ki, cl_error *e);

typedef struct cl_train_job_row {
  int64_t id, run_id; /* run_id 0: none */
  const char *name, *content_key, *parent, *parent_hash, *model_hash, *out_dir; /* NULL when unknown */
  const char *spec_json, *mixture_json, *data_json;
  int64_t n_examples, steps, steps_done;
  const char *status, *clade_version, *started_at, *ended_at;
  double wall_seconds;
  int has_wall;
  double last_loss; /* the loss of the last recorded step; NAN when none */
} cl_train_job_row;
typedef int (*cl_store_train_job_fn)(const cl_train_job_row *r, void *ud, cl_error *e);
/* run_id 0: every training job, ascending id; otherwise the run's. */
int cl_store_each_train_job(cl_store *s, int64_t run_id, cl_store_train_job_fn fn, void *ud, cl_error *e);
typedef int (*cl_store_train_step_fn)(const cl_train_step_row *r, void *ud, cl_error *e);
/* A training job's steps, ascending (loss curves). */
int cl_store_each_train_step(cl_store *s, int64_t train_id, cl_store_train_step_fn fn, void *ud, cl_error *e);

/* One evaluation of a trained model (the train-type x test-type table): the run's
 * evaluations whose model_hash is a complete training job's, with that job (the latest
 * such, when several trained the same weights) and the metric's aggregate. */
typedef struct cl_train_eval_row {
  int64_t train_id, eval_id;
  const char *train_name, *mixture_json, *spec_json; /* the training job's */
  const char *experiment, *model, *dataset, *protocol, *text_type; /* the evaluation's */
  int shots;
  double value;
  int has_value;
} cl_train_eval_row;
typedef int (*cl_store_train_eval_fn)(const cl_train_eval_row *r, void *ud, cl_error *e);
/* In evaluation order; run_id must exist. */
int cl_store_each_train_eval(cl_store *s, int64_t run_id, const char *metric, cl_store_train_eval_fn fn, void *ud,
                             cl_error *e);

/* ---- stored confidence intervals (cl_store_intervals.c, schema 9) ----
 * intervals(run_id -> runs, eval_id, trial (NULL: the aggregate), metric, method, level,
 * resamples, seed, lo, hi (NULL: no interval, note says why), tie ('', best, tied, worse),
 * p (NULL: untested), group_size, run_evals, note, created_at): what `clade results`, `clade report`, `clade compare` and the end of
 * `clade run` computed over a run's stored outcomes (report/cl_stats), one row per cell and
 * settings; reused while the settings match and the run holds as many evaluations as when
 * they were computed (run_evals; evaluations are append-only), recomputed otherwise. */
typedef struct cl_interval_key {
  const char *method; /* "bootstrap" */
  double level;       /* 0.95 */
  int resamples;
  int64_t seed; /* >= 0 */
} cl_interval_key;
typedef struct cl_interval_row {
  int64_t eval_id;
  int trial; /* -1: the aggregate */
  const char *metric;
  int has_ci;      /* 0: no interval (lo, hi stored NULL); note says why */
  double lo, hi;
  const char *tie; /* "" untested, "best", "tied", "worse" */
  double p;        /* NAN: untested */
  int group_size;
  const char *note; /* "" or why the cell has no interval */
} cl_interval_row;
/* Whether the handle may write (cl_store_open_existing of a read-only file may not). */
int cl_store_writable(const cl_store *s);
/* How many evaluations the run holds. */
int cl_store_run_evals(cl_store *s, int64_t run_id, int64_t *n, cl_error *e);
/* Replaces the run's rows of these settings by rows[0..n) (one transaction), computed when the
 * run held run_evals evaluations. */
int cl_store_intervals_put(cl_store *s, int64_t run_id, const cl_interval_key *k, int64_t run_evals,
                           const cl_interval_row *rows, int n, cl_error *e);
typedef int (*cl_store_interval_fn)(const cl_interval_row *r, void *ud, cl_error *e);
/* The run's current rows of these settings, in stored order; *found 0 when there are none
 * (never computed, other settings, or the run has grown since). */
int cl_store_intervals_get(cl_store *s, int64_t run_id, const cl_interval_key *k, cl_store_interval_fn fn, void *ud,
                           int *found, cl_error *e);

/* A cell's retrieval axes as one line ("image->dna test_seen species"); "" when it has none.
 * The caller frees it. */
char *cl_store_axes_text(const char *query, const char *key, const char *split, const char *rank);

/* Whether a metric is a fraction (top1, top5, acc..., micro_top1, macro_top5, ...), shown
 * as a percentage in tables. */
int cl_store_metric_is_fraction(const char *metric);

/* ---- comparing runs and reports (cl_store_compare.c): read-only ---- */
/* rev (a branch, tag, full or short hash, HEAD~2, ...) in the git repository found from dir
 * upwards (NULL: the current directory), peeled to a commit: its 40 hex digits into out.
 * Not inside a repository, or a revision that does not resolve, is an error naming it. */
int cl_store_resolve_commit(const char *dir, const char *rev, char out[41], cl_error *e);
/* The latest (highest id) complete run with evaluations whose git_commit is commit (full hex);
 * an error naming the commit and the database when there is none (*run_id 0). */
int cl_store_latest_complete_at(cl_store *s, const char *commit, int64_t *run_id, cl_error *e);

/* One evaluation of a run with one metric's aggregate (the trial-NULL row). */
typedef struct cl_cell_row {
  int64_t run_id, eval_id;
  const char *experiment, *model, *dataset, *protocol, *text_type; /* text_type "" if none */
  int shots;
  int64_t n_examples;
  double value, std; /* metric and metric_std aggregates */
  int has_value, has_std;
  int64_t n_trials;      /* per-trial rows of the metric */
  int64_t n_predictions; /* stored per-example predictions, all trials */
  const char *query, *key, *split, *rank; /* "" when not a retrieval */
} cl_cell_row;
typedef int (*cl_store_cell_fn)(const cl_cell_row *r, void *ud, cl_error *e);
/* Every evaluation of the run, in evaluation order (an error naming the run when absent). */
int cl_store_each_cell(cl_store *s, int64_t run_id, const char *metric, cl_store_cell_fn fn,
                       void *ud, cl_error *e);

/* One stored prediction reduced to what pairing needs. */
typedef struct cl_correct_row {
  int trial; /* -1: none */
  const char *filepath;
  int correct;
  int hit;           /* predictions.hit (1-based: top-k right when hit <= k); 0 when NULL */
  const char *label; /* the true label (a retrieval: the query's label at the cell's rank) */
} cl_correct_row;
typedef int (*cl_store_correct_fn)(const cl_correct_row *r, void *ud, cl_error *e);
/* The predictions of one evaluation ordered by trial (-1 first), filepath (bytewise, as
 * strcmp), example: two evaluations can be paired by one merge. */
int cl_store_each_correct(cl_store *s, int64_t eval_id, cl_store_correct_fn fn, void *ud,
                          cl_error *e);

#endif
