/* clade run | check | classes: experiment files through the Lua runner. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cli.h"
#include "report/cl_stats.h"
#include "lua/cl_lua.h"
#include "model/cl_encoder.h"
#include "sched/cl_cache.h"
#include "store/cl_store.h"

typedef struct {
  const char *file, *db, *backend, *dataset, *text_type, *precision, *decode, *shard, *cache, *lua_memory,
      *lua_budget;
  int quiet, json_log, strict;
  int shard_index, shard_count; /* --shard I/N; count 0: the whole run */
  size_t memory;  /* parsed --lua-memory; 0: the default */
  int64_t budget; /* parsed --lua-budget; 0: the default */
} run_args;

/* "I/N" with 0 <= I < N <= 1000000, nothing else. */
static int parse_shard(const char *s, int *index, int *count) {
  char *end;
  errno = 0;
  long i = strtol(s, &end, 10);
  if (end == s || *end != '/' || errno || i < 0 || s[0] == '-' || s[0] == '+') return -1;
  const char *t = end + 1;
  long n = strtol(t, &end, 10);
  if (end == t || *end || errno || t[0] == '-' || t[0] == '+' || n < 1 || n > 1000000 || i >= n) return -1;
  *index = (int)i;
  *count = (int)n;
  return 0;
}

/* SIZE: bytes, or with a K/M/G suffix (powers of 1024), e.g. 1G; overflow is an error. */
static int parse_size(const char *s, size_t *out) {
  char *end;
  if (!s || *s < '0' || *s > '9') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return -1;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10, end++;
  else if (*end == 'M' || *end == 'm') shift = 20, end++;
  else if (*end == 'G' || *end == 'g') shift = 30, end++;
  if (*end || v == 0 || v > (SIZE_MAX >> shift)) return -1;
  *out = (size_t)(v << shift);
  return 0;
}

static int parse(int argc, char **argv, run_args *a, const char *cmd) {
  memset(a, 0, sizeof *a);
  a->db = "results/clade.db";
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--db") ? &a->db : !strcmp(s, "--backend") ? &a->backend
                      : !strcmp(s, "--dataset") ? &a->dataset : !strcmp(s, "--text-type") ? &a->text_type
                      : !strcmp(s, "--precision") ? &a->precision : !strcmp(s, "--decode") ? &a->decode
                      : !strcmp(s, "--shard") ? &a->shard : !strcmp(s, "--cache") ? &a->cache
                      : !strcmp(s, "--lua-memory") ? &a->lua_memory : !strcmp(s, "--lua-budget") ? &a->lua_budget : NULL;
    if (slot) {
      if (i + 1 >= argc) {
        cl_cli_fail("%s: %s needs a value", cmd, s);
        return 2;
      }
      *slot = argv[++i];
    } else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) {
      a->quiet = 1;
    } else if (!strcmp(s, "--json-log")) {
      a->json_log = 1;
    } else if (!strcmp(s, "--strict")) {
      a->strict = 1;
    } else if (s[0] == '-') {
      cl_cli_fail("%s: unknown option %s", cmd, s);
      return cl_cli_usage(cmd);
    } else if (!a->file) {
      a->file = s;
    } else {
      cl_cli_fail("%s: one experiment file at a time (got %s and %s)", cmd, a->file, s);
      return 2;
    }
  }
  if (!a->file) {
    cl_cli_fail("%s: no experiment file", cmd);
    return cl_cli_usage(cmd);
  }
  cl_img_decode d;
  if (cl_img_decode_parse(a->decode, &d)) {
    cl_cli_fail("%s: --decode is full or draft, not '%s'", cmd, a->decode);
    return 2;
  }
  a->decode = cl_img_decode_name(d);
  if (a->shard && parse_shard(a->shard, &a->shard_index, &a->shard_count)) {
    cl_cli_fail("%s: --shard is I/N with 0 <= I < N (shard I of N, as Slurm numbers array tasks), not '%s'", cmd,
                a->shard);
    return 2;
  }
  if (a->lua_memory && parse_size(a->lua_memory, &a->memory)) {
    cl_cli_fail("%s: --lua-memory is a size in bytes or with K, M or G (e.g. 1G), not '%s'", cmd, a->lua_memory);
    return 2;
  }
  if (a->lua_budget) {
    char *end;
    errno = 0;
    long long v = strtoll(a->lua_budget, &end, 10);
    if (errno || *end || v <= 0 || a->lua_budget[0] < '0' || a->lua_budget[0] > '9') {
      cl_cli_fail("%s: --lua-budget is a positive number of Lua instructions, not '%s'", cmd, a->lua_budget);
      return 2;
    }
    a->budget = v;
  }
  return 0;
}

/* Load the experiment file into a fresh sandbox. */
static int load(const run_args *a, cl_lua_run *run, cl_lua **out) {
  char abs[PATH_MAX];
  if (!realpath(a->file, abs)) {
    cl_cli_fail("%s: no such experiment file", a->file);
    return 1;
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", abs);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  cl_error e;
  if (cl_lua_new(out, dir, run, &e) != CL_OK || cl_lua_dofile(*out, a->file, &e) != CL_OK ||
      cl_lua_call(*out, "clade.runner", "validate", 0, NULL, NULL, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_lua_free(*out);
    *out = NULL;
    return 1;
  }
  return 0;
}

/* First Ctrl-C (or SIGTERM, as a scheduler or `kill` sends): stop at the next evaluation
 * boundary and mark the run interrupted; the second aborts. run_interrupted holds the signal.
 * A signal handler can only reach a static flag. */
static volatile int run_interrupted;
static void on_sigint(int sig) {
  if (run_interrupted) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  run_interrupted = sig;
  static const char msg[] = "\nclade: stopping after the evaluation in flight (Ctrl-C again to abort)\n";
  static const char term[] = "\nclade: SIGTERM: stopping after the evaluation in flight (SIGTERM again to abort)\n";
  if (sig == SIGTERM ? write(2, term, sizeof term - 1) < 0 : write(2, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
}

/* The run's stats_json: the image pipeline's timings and rates, and items encoded and taken
 * from the cache per modality. */
static void stats_json(const cl_sched_stats *st, char *buf, size_t n) {
  int im = cl_sched_stat("image");
  double enc = st->encode_seconds[im], wall = st->wall_seconds[im], dec = st->read_seconds[im];
  double images = (double)st->encoded[im];
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "image_pipeline_seconds", round(wall * 1e3) / 1e3);
  cJSON_AddNumberToObject(o, "encoder_busy_seconds", round(enc * 1e3) / 1e3);
  cJSON_AddNumberToObject(o, "encoder_busy_fraction", wall > 0 ? round(enc / wall * 1e3) / 1e3 : 0);
  cJSON_AddNumberToObject(o, "decode_seconds", round(dec * 1e3) / 1e3);
  cJSON_AddNumberToObject(o, "decode_images_per_second", dec > 0 ? round(images / dec * 10) / 10 : 0);
  cJSON_AddNumberToObject(o, "encode_images_per_second", enc > 0 ? round(images / enc * 10) / 10 : 0);
  cJSON_AddNumberToObject(o, "end_to_end_images_per_second", wall > 0 ? round(images / wall * 10) / 10 : 0);
  cJSON *en = cJSON_AddObjectToObject(o, "encoded"), *ca = cJSON_AddObjectToObject(o, "cached");
  for (int i = 0; i < cl_modality_count(); i++) {
    cJSON_AddNumberToObject(en, cl_modality_at(i)->name, (double)st->encoded[i]);
    cJSON_AddNumberToObject(ca, cl_modality_at(i)->name, (double)st->cached[i]);
  }
  if (!cJSON_PrintPreallocated(o, buf, (int)n, 0)) snprintf(buf, n, "{}");
  cJSON_Delete(o);
}

/* "nothing encoded: 96 images and 12 texts came from the embedding cache" */
static void nothing_encoded(const cl_sched_stats *st) {
  char msg[512];
  int off = 0, any = 0;
  for (int i = 0; i < cl_modality_count(); i++) {
    if (st->encoded[i]) return;
    if (!st->cached[i]) continue;
    off += snprintf(msg + off, sizeof msg - off, "%s%lld %s", any++ ? " and " : "", (long long)st->cached[i],
                    cl_modality_at(i)->plural);
    if (off >= (int)sizeof msg) break;
  }
  if (any) fprintf(stderr, "clade: nothing encoded: %s came from the embedding cache\n", msg);
}

int cl_cmd_run(int argc, char **argv) {
  run_args a;
  int rc = parse(argc, argv, &a, "run");
  if (rc) return rc;
  /* resolved once, before anything is recorded: "auto" becomes the backend every model of
   * the run opens on, and the device names what computed (kernels change the last bits) */
  char backend[16], device[160], note[256];
  cl_error re;
  if (cl_encoder_resolve(a.backend, a.precision, backend, device, sizeof device, note, sizeof note, &re) != CL_OK) {
    cl_cli_fail("%s", re.msg);
    return 1;
  }
  if (!a.quiet && note[0]) fprintf(stderr, "clade: %s\n", note);
  cl_lua_run run = {.backend = backend, .precision = a.precision ? a.precision : "fp32", .decode = a.decode,
                    .quiet = a.quiet, .progress = a.json_log ? CL_PROGRESS_JSON : CL_PROGRESS_AUTO,
                    .interrupted = &run_interrupted, .shard_index = a.shard_index, .shard_count = a.shard_count,
                    .lua_memory = a.memory, .lua_budget = a.budget, .strict = a.strict};
  cl_lua *lua = NULL;
  if (load(&a, &run, &lua)) return 1; /* a broken file records no run */
  cl_error e;
  /* every manifest and what the protocols need of it, before a run is recorded or encoded */
  if (cl_lua_call(lua, "clade.runner", "validate_data", 0, NULL, NULL, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_lua_free(lua);
    return 1;
  }
  cl_store *st = NULL;
  char hash[41], cpath[4200];
  if (cl_hash_file(a.file, hash, &e) != CL_OK || cl_store_open(a.db, &st, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_store_close(st);
    cl_lua_free(lua);
    return 1;
  }
  /* the cache is optional: a run goes on without one it cannot open */
  if (cl_cache_open(a.cache ? a.cache : cl_cache_path_for(a.db, cpath, sizeof cpath), &run.cache, &e) != CL_OK)
    fprintf(stderr, "clade: warning: %s; going on without the embedding cache\n", e.msg);
  /* resume the unfinished run of this content, join one still running, or begin anew */
  int live = 0, resumed = 0;
  cl_run_info ri = {.file = a.file, .file_hash = hash, .backend = run.backend, .precision = run.precision,
                    .device = device, .decode = run.decode, .shard_index = a.shard_index,
                    .shard_count = a.shard_count};
  if (cl_store_begin_or_resume(st, &ri, &run.run_id, &resumed, &live, &e) != CL_OK) goto dberr;
  /* under Slurm, the job (and array task) now working on the run */
  const char *sjob = getenv("SLURM_JOB_ID"), *aj = getenv("SLURM_ARRAY_JOB_ID"), *at = getenv("SLURM_ARRAY_TASK_ID");
  if (sjob && *sjob) {
    char slurm[128];
    if (aj && *aj && at && *at) snprintf(slurm, sizeof slurm, "%.60s_%.60s", aj, at);
    else snprintf(slurm, sizeof slurm, "%.120s", sjob);
    if (cl_store_run_set_slurm(st, run.run_id, slurm, &e) != CL_OK) goto dberr;
  }
  if (cl_store_warning(st)) fprintf(stderr, "clade: warning: %s\n", cl_store_warning(st));
  if (!a.quiet) {
    if (resumed)
      fprintf(stderr, "clade: %s run %lld of %s\n", live ? "joining the live" : "resuming the unfinished",
              (long long)run.run_id, a.file);
    else
      fprintf(stderr, "clade: run %lld of %s into %s\n", (long long)run.run_id, a.file, a.db);
    if (a.shard_count) fprintf(stderr, "clade: shard %d/%d of the run's jobs\n", a.shard_index, a.shard_count);
  }
  run.store = st;
  signal(SIGINT, on_sigint);
  signal(SIGTERM, on_sigint);
  int jobs = 0;
  int ok = cl_lua_call(lua, "clade.runner", "run", 0, NULL, &jobs, &e) == CL_OK;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  int interrupted = run_interrupted;
  if (!ok && (!interrupted || strcmp(e.msg, "interrupted"))) cl_cli_fail("%s", e.msg); /* e.g. a runaway's */
  cl_error e2;
  if (interrupted) cl_store_jobs_release(st, run.run_id, &e2);
  int64_t done = 0;
  cl_store_jobs_done(st, run.run_id, &done, &e2);
  const char *status = interrupted ? "interrupted" : !ok ? "failed" : done >= jobs ? "complete" : "running";
  /* counters add up over every process and resume that worked on the run */
  char sj[2048];
  stats_json(&run.stats, sj, sizeof sj);
  const int im = cl_sched_stat("image"), tx = cl_sched_stat("text");
  cl_run_stats stats = {.images_encoded = run.stats.encoded[im], .texts_encoded = run.stats.encoded[tx],
                        .images_cached = run.stats.cached[im], .texts_cached = run.stats.cached[tx],
                        .stats_json = sj};
  if (cl_store_run_add_stats(st, run.run_id, &stats, &e2) != CL_OK) cl_cli_fail("%s", e2.msg);
  if (strcmp(status, "running") != 0 && cl_store_run_end(st, run.run_id, status, &e2) != CL_OK) {
    cl_cli_fail("%s", e2.msg);
    ok = 0;
  }
  /* a finished run keeps its intervals (clade results' defaults): results and report read them */
  if (ok && !strcmp(status, "complete")) {
    cl_stats_opts ci;
    cl_cli_ci_defaults(&ci);
    if (cl_stats_store(st, run.run_id, &ci, &e2) != CL_OK)
      fprintf(stderr, "clade: warning: the run's confidence intervals were not kept: %s\n", e2.msg);
  }
  if (!a.quiet) {
    if (ok) nothing_encoded(&run.stats);
    if (ok && !strcmp(status, "complete"))
      fprintf(stderr, "clade: run %lld complete (`clade results --run %lld`)\n", (long long)run.run_id,
              (long long)run.run_id);
    else if (ok)
      fprintf(stderr, "clade: run %lld: this process is done; %lld of %d jobs finished, others are in progress\n",
              (long long)run.run_id, (long long)done, jobs);
    else if (interrupted)
      fprintf(stderr, "clade: run %lld interrupted; `clade run %s` resumes it\n", (long long)run.run_id, a.file);
  }
  cl_cache_close(run.cache);
  cl_lua_free(lua);
  cl_store_close(st);
  return interrupted ? 128 + interrupted : ok ? 0 : 1; /* 130 after Ctrl-C, 143 after SIGTERM */
dberr:
  cl_cli_fail("%s", e.msg);
  cl_cache_close(run.cache);
  cl_store_close(st);
  cl_lua_free(lua);
  return 1;
}

int cl_cmd_check(int argc, char **argv) {
  run_args a;
  int rc = parse(argc, argv, &a, "check");
  if (rc) return rc;
  cl_lua_run run = {.quiet = a.quiet, .lua_memory = a.memory, .lua_budget = a.budget, .strict = a.strict};
  cl_lua *lua;
  if (load(&a, &run, &lua)) return 1;
  cl_error e;
  int bad = 0;
  rc = cl_lua_call(lua, "clade.runner", "check", 0, NULL, &bad, &e);
  if (rc != CL_OK) cl_cli_fail("%s", e.msg);
  cl_lua_free(lua);
  return rc != CL_OK || bad ? 1 : 0;
}

int cl_cmd_classes(int argc, char **argv) {
  run_args a;
  int rc = parse(argc, argv, &a, "classes");
  if (rc) return rc;
  if (!a.dataset || !a.text_type) {
    cl_cli_fail("classes: --dataset NAME and --text-type TYPE are required");
    return cl_cli_usage("classes");
  }
  cl_lua_run run = {.quiet = 1, .lua_memory = a.memory, .lua_budget = a.budget};
  cl_lua *lua;
  if (load(&a, &run, &lua)) return 1;
  cl_error e;
  const char *args[2] = {a.dataset, a.text_type};
  rc = cl_lua_call(lua, "clade.runner", "classes", 2, args, NULL, &e);
  if (rc != CL_OK) cl_cli_fail("%s", e.msg);
  cl_lua_free(lua);
  return rc != CL_OK;
}
