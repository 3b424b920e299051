/* clade slurm: an experiment file as a Slurm job array of shards (`clade run --shard I/N`)
 * and a merge job after it; --status and --resubmit from the shard databases and squeue/sacct.
 * DIR holds array.sbatch, merge.sbatch, shards/I.db, logs/ and jobs.tsv (the submissions:
 * "shards N", then "array JOBID INDICES" and "merge JOBID -" lines, tab-separated). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cl_cli.h"
#include "store/cl_store.h"

extern char **environ;

#define MAX_SHARDS 100000

typedef struct {
  const char *file, *dir, *into, *cache;
  const char *partition, *gpus, *cpus, *time, *mem, *account, *backend, *precision, *decode;
  int array, submit, status, resubmit;
} slurm_args;

/* Values that go into #SBATCH lines: no spaces, quotes or newlines. */
static int safe_value(const char *v) {
  if (!*v) return 0;
  for (const char *p = v; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_.,:=+-/@[]", *p)) return 0;
  return 1;
}

static int parse(int argc, char **argv, slurm_args *a) {
  memset(a, 0, sizeof *a);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--dir")             ? &a->dir
                        : !strcmp(s, "--into")          ? &a->into
                        : !strcmp(s, "--cache")         ? &a->cache
                        : !strcmp(s, "--partition")     ? &a->partition
                        : !strcmp(s, "--gpus-per-task") ? &a->gpus
                        : !strcmp(s, "--cpus-per-task") ? &a->cpus
                        : !strcmp(s, "--time")          ? &a->time
                        : !strcmp(s, "--mem")           ? &a->mem
                        : !strcmp(s, "--account")       ? &a->account
                        : !strcmp(s, "--backend")       ? &a->backend
                        : !strcmp(s, "--precision")     ? &a->precision
                        : !strcmp(s, "--decode")        ? &a->decode
                                                        : NULL;
    if (slot || !strcmp(s, "--array")) {
      if (i + 1 >= argc) {
        cl_cli_fail("slurm: %s needs a value", s);
        return 2;
      }
      const char *v = argv[++i];
      if (slot) {
        if (slot != &a->dir && slot != &a->into && slot != &a->cache && !safe_value(v)) {
          cl_cli_fail("slurm: %s '%s': only letters, digits and _.,:=+-/@[] (it goes into an #SBATCH line)", s, v);
          return 2;
        }
        *slot = v;
      } else {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (end == v || *end || errno || n < 1 || n > MAX_SHARDS) {
          cl_cli_fail("slurm: --array is the number of shards, 1 to %d, not '%s'", MAX_SHARDS, v);
          return 2;
        }
        a->array = (int)n;
      }
    } else if (!strcmp(s, "--submit")) {
      a->submit = 1;
    } else if (!strcmp(s, "--status")) {
      a->status = 1;
    } else if (!strcmp(s, "--resubmit")) {
      a->resubmit = 1;
    } else if (s[0] == '-') {
      cl_cli_fail("slurm: unknown option %s", s);
      return cl_cli_usage("slurm");
    } else if (!a->file) {
      a->file = s;
    } else {
      cl_cli_fail("slurm: one experiment file at a time (got %s and %s)", a->file, s);
      return 2;
    }
  }
  if (a->status + a->resubmit + (a->array > 0) != 1) {
    cl_cli_fail("slurm: say --array N (write the scripts), --status or --resubmit");
    return cl_cli_usage("slurm");
  }
  /* --status and --resubmit need only the folder (array.sbatch names the file) */
  if (!a->file && !(a->dir && !a->array)) {
    cl_cli_fail("slurm: no experiment file%s", a->array ? "" : " (or --dir DIR of its scripts)");
    return cl_cli_usage("slurm");
  }
  return 0;
}

/* mkdir -p */
static int make_dirs(const char *path) {
  cl_error e;
  if (cl_mkdirs(path, &e) == CL_OK) return 0;
  cl_cli_fail("%s", e.msg);
  return -1;
}

/* An absolute form of path (which need not exist: its parent is made). */
static int absolute(const char *path, int is_dir, char out[PATH_MAX]) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
  if (is_dir) {
    if (make_dirs(tmp) || !realpath(tmp, out)) return -1;
    return 0;
  }
  char *slash = strrchr(tmp, '/');
  const char *base = slash ? slash + 1 : tmp;
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - tmp) : 1, slash ? (slash == tmp ? "/" : tmp) : ".");
  if (make_dirs(parent)) return -1;
  char real[PATH_MAX];
  if (!realpath(parent, real)) return -1;
  return snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") ? real : "", base) >= PATH_MAX ? -1 : 0;
}

/* 'path' for a shell script. */
static void sh_quote(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') fputs("'\\''", f);
    else fputc(*s, f);
  }
  fputc('\'', f);
}

/* The file name without folders and .lua, as a job name. */
static void stem(const char *file, char *out, size_t n) {
  const char *b = strrchr(file, '/');
  b = b ? b + 1 : file;
  size_t len = strlen(b);
  if (len > 4 && !strcmp(b + len - 4, ".lua")) len -= 4;
  if (len >= n) len = n - 1;
  for (size_t i = 0; i < len; i++) out[i] = isalnum((unsigned char)b[i]) || strchr("_.-", b[i]) ? b[i] : '_';
  out[len] = 0;
}

typedef struct {
  char dir[PATH_MAX], file[PATH_MAX], name[128];
} where;

static int locate(const slurm_args *a, where *w) {
  if (!a->array) { /* --status, --resubmit: the folder of scripts written before */
    char def[PATH_MAX];
    if (a->file) {
      stem(a->file, w->name, sizeof w->name);
      snprintf(def, sizeof def, "slurm/%s", w->name);
    }
    const char *d = a->dir ? a->dir : def;
    if (!realpath(d, w->dir)) {
      cl_cli_fail("slurm: %s: %s (write the scripts first: clade slurm FILE --array N)", d, strerror(errno));
      return -1;
    }
    return 0;
  }
  if (!realpath(a->file, w->file)) {
    cl_cli_fail("%s: no such experiment file", a->file);
    return -1;
  }
  stem(w->file, w->name, sizeof w->name);
  char def[PATH_MAX];
  snprintf(def, sizeof def, "slurm/%s", w->name);
  if (absolute(a->dir ? a->dir : def, 1, w->dir)) {
    cl_cli_fail("slurm: cannot make the folder %s", a->dir ? a->dir : def);
    return -1;
  }
  return 0;
}

/* DIR/name opened with mode (its path into path); NULL with the error said. */
static FILE *open_in(const where *w, const char *name, const char *mode, char *path, size_t n) {
  snprintf(path, n, "%s/%s", w->dir, name);
  FILE *f = fopen(path, mode);
  if (!f) cl_cli_fail("%s: %s", path, strerror(errno));
  return f;
}

static int write_scripts(const slurm_args *a, const where *w, const char *into, const char *exe) {
  char path[PATH_MAX + 32];
  FILE *f = open_in(w, "array.sbatch", "w", path, sizeof path);
  if (!f) return -1;
  fprintf(f, "#!/bin/bash\n#SBATCH --job-name=clade-%s\n#SBATCH --array=0-%d\n", w->name, a->array - 1);
  fprintf(f, "#SBATCH --output=%s/logs/shard-%%a-%%A.out\n", w->dir);
  const char *opt[] = {"partition", "gpus-per-task", "cpus-per-task", "time", "mem", "account"};
  const char *val[] = {a->partition, a->gpus, a->cpus, a->time, a->mem, a->account};
  for (int i = 0; i < 6; i++)
    if (val[i]) fprintf(f, "#SBATCH --%s=%s\n", opt[i], val[i]);
  fprintf(f, "# Written by `clade slurm`: array task I runs shard I/%d of the experiment into\n"
             "# shards/I.db beside this script. Edit the #SBATCH lines for your site (partition,\n"
             "# account, time, memory, GPUs); `clade slurm FILE --status` / `--resubmit` follow it up.\n"
             "set -euo pipefail\n"
             "shard=${SLURM_ARRAY_TASK_ID:?this is a Slurm array job: submit it with sbatch}\n",
          a->array);
  if (a->cache) {
    fputs("cache=", f);
    sh_quote(f, a->cache);
    fputc('\n', f);
  } else {
    fputs("# the embedding cache on the node's local disk\n"
          "cache=${CLADE_CACHE_DIR:-${TMPDIR:-/tmp}}/clade-cache/cache.db\n",
          f);
  }
  fputs("mkdir -p \"$(dirname \"$cache\")\"\nexec ", f);
  sh_quote(f, exe);
  fputs(" run ", f);
  sh_quote(f, w->file);
  fprintf(f, " --shard \"$shard/%d\" --db ", a->array);
  sh_quote(f, w->dir);
  fputs("/shards/\"$shard\".db --cache \"$cache\" --json-log", f);
  if (a->backend) fprintf(f, " --backend %s", a->backend);
  if (a->precision) fprintf(f, " --precision %s", a->precision);
  if (a->decode) fprintf(f, " --decode %s", a->decode);
  fputc('\n', f);
  if (fclose(f)) return -1;
  chmod(path, 0755);

  if (!(f = open_in(w, "merge.sbatch", "w", path, sizeof path))) return -1;
  fprintf(f, "#!/bin/bash\n#SBATCH --job-name=clade-%s-merge\n#SBATCH --output=%s/logs/merge-%%j.out\n", w->name,
          w->dir);
  for (int i = 0; i < 6; i++)
    if (val[i] && (i == 0 || i == 5)) fprintf(f, "#SBATCH --%s=%s\n", opt[i], val[i]);
  fprintf(f, "# Written by `clade slurm`: submitted with --dependency=afterany on the array, it folds\n"
             "# every shard database into one run (exit 3 and the shards to rerun when some are missing).\n"
             "set -uo pipefail\nexec ");
  sh_quote(f, exe);
  fputs(" merge ", f);
  sh_quote(f, w->dir);
  if (a->array == 1) fputs("/shards/0.db", f);
  else fprintf(f, "/shards/{0..%d}.db", a->array - 1);
  fputs(" --into ", f);
  sh_quote(f, into);
  fputc('\n', f);
  if (fclose(f)) return -1;
  chmod(path, 0755);
  return 0;
}

/* Runs argv, its stdout into out (NUL-terminated, truncated to n). Returns the exit status,
 * or -1 when it could not start. stderr goes through. */
static int capture(char *const argv[], char *out, size_t n) {
  int fd[2];
  if (pipe(fd)) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  size_t len = 0;
  if (rc == 0) {
    ssize_t k;
    char buf[4096];
    while ((k = read(fd[0], buf, sizeof buf)) > 0) {
      size_t c = (size_t)k < n - 1 - len ? (size_t)k : n - 1 - len;
      memcpy(out + len, buf, c);
      len += c;
    }
  }
  out[len] = 0;
  close(fd[0]);
  if (rc != 0) return -1;
  int st;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* sbatch --parsable [extra...] script: the job id into id. */
static int sbatch(const char *script, const char *extra1, const char *extra2, char *id, size_t n) {
  char *argv[6] = {"sbatch", "--parsable", NULL, NULL, NULL, NULL};
  int k = 2;
  if (extra1) argv[k++] = (char *)extra1;
  if (extra2) argv[k++] = (char *)extra2;
  argv[k] = (char *)script;
  char out[256];
  int rc = capture(argv, out, sizeof out);
  if (rc < 0) {
    cl_cli_fail("slurm: cannot run sbatch (%s): submit from a Slurm login node, or without --submit "
                "submit the scripts yourself", strerror(errno));
    return -1;
  }
  if (rc != 0) {
    cl_cli_fail("slurm: sbatch %s failed (exit %d)", script, rc);
    return -1;
  }
  size_t len = strspn(out, "0123456789");
  if (len == 0 || len >= n) {
    cl_cli_fail("slurm: sbatch %s printed no job id ('%s')", script, out);
    return -1;
  }
  memcpy(id, out, len);
  id[len] = 0;
  return 0;
}

static int append_jobs(const where *w, const char *kind, const char *id, const char *indices) {
  char path[PATH_MAX + 16];
  FILE *f = open_in(w, "jobs.tsv", "a", path, sizeof path);
  if (!f) return -1;
  fprintf(f, "%s\t%s\t%s\n", kind, id, indices);
  return fclose(f) ? -1 : 0;
}

/* Submit the array (all shards, or only `indices`) and a merge job after it. */
static int submit(const where *w, int count, const char *indices) {
  char script[PATH_MAX + 32], arr[64 + 4096], id[64], mid[64], dep[128];
  snprintf(script, sizeof script, "%s/array.sbatch", w->dir);
  for (const char *sub = "logs"; sub; sub = strcmp(sub, "logs") ? NULL : "shards") {
    char d[PATH_MAX + 16];
    snprintf(d, sizeof d, "%s/%s", w->dir, sub);
    if (make_dirs(d)) return -1;
  }
  char all[32];
  snprintf(all, sizeof all, "0-%d", count - 1);
  if (!indices) indices = all;
  snprintf(arr, sizeof arr, "--array=%s", indices);
  if (sbatch(script, arr, NULL, id, sizeof id) || append_jobs(w, "array", id, indices)) return -1;
  snprintf(script, sizeof script, "%s/merge.sbatch", w->dir);
  snprintf(dep, sizeof dep, "--dependency=afterany:%s", id);
  if (sbatch(script, dep, NULL, mid, sizeof mid) || append_jobs(w, "merge", mid, "-")) return -1;
  printf("array\t%s\t%s\nmerge\t%s\n", id, indices, mid);
  fprintf(stderr, "clade: submitted array job %s (shards %s of %d) and merge job %s after it\n", id, indices, count,
          mid);
  return 0;
}

/* ---- status ---- */

typedef struct {
  char job[64];   /* the array job of its latest submission; "" never submitted */
  char state[32]; /* Slurm's state: from squeue, else sacct; "" unknown */
  int queued;     /* pending or running in squeue */
  cl_shard_state db;
  int has_db;
  const char *verdict;
} shard_info;

/* Marks indices listed in spec ("0-2", "1,3,5-7") with the job id. */
static int mark_indices(const char *spec, const char *job, shard_info *sh, int n) {
  const char *p = spec;
  while (*p) {
    char *end;
    long a = strtol(p, &end, 10), b = a;
    if (end == p) return -1;
    if (*end == '-') {
      const char *q = end + 1;
      b = strtol(q, &end, 10);
      if (end == q) return -1;
    }
    for (long i = a; i <= b && i < n; i++)
      if (i >= 0) snprintf(sh[i].job, sizeof sh[i].job, "%s", job);
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return 0;
}

static int read_jobs(const where *w, int *count, shard_info **sh, char *merge_job, size_t mn) {
  char path[PATH_MAX + 16];
  FILE *f = open_in(w, "jobs.tsv", "r", path, sizeof path);
  if (!f) {
    cl_cli_fail("slurm: write the scripts first: clade slurm FILE --array N [--dir DIR]");
    return -1;
  }
  char line[4096 + 128];
  int lineno = 0, rc = 0;
  *count = 0;
  *sh = NULL;
  merge_job[0] = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    char *kind = strtok(line, "\t"), *a = strtok(NULL, "\t"), *b = strtok(NULL, "\t");
    if (!kind || !a) continue;
    if (!strcmp(kind, "shards")) {
      long n = strtol(a, NULL, 10);
      if (n < 1 || n > MAX_SHARDS || *sh) rc = -1;
      else {
        *count = (int)n;
        *sh = calloc((size_t)n, sizeof **sh);
      }
    } else if (!strcmp(kind, "array") && *sh && b) {
      if (mark_indices(b, a, *sh, *count)) rc = -1;
    } else if (!strcmp(kind, "merge")) {
      snprintf(merge_job, mn, "%s", a);
    } else {
      rc = -1;
    }
  }
  fclose(f);
  if (rc || !*sh) {
    cl_cli_fail("%s:%d: not a jobs list written by clade slurm", path, lineno);
    free(*sh);
    *sh = NULL;
    return -1;
  }
  return 0;
}

/* Fills state/queued from "JOB_I|STATE" lines of squeue or sacct. */
static void slurm_states(shard_info *sh, int n, const char *out, int from_squeue) {
  char *copy = strdup(out), *save = NULL;
  for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    char *bar = strchr(l, '|'), *us = strchr(l, '_');
    if (!bar || !us || us > bar) continue;
    *bar = 0;
    *us = 0;
    char *end;
    long i = strtol(us + 1, &end, 10);
    if (end == us + 1 || *end || i < 0 || i >= n || strcmp(sh[i].job, l) != 0) continue;
    char *st = bar + 1;
    st[strcspn(st, " |")] = 0;
    if (from_squeue) {
      snprintf(sh[i].state, sizeof sh[i].state, "%s", st);
      sh[i].queued = 1;
    } else if (!sh[i].queued) {
      snprintf(sh[i].state, sizeof sh[i].state, "%s", st);
    }
  }
  free(copy);
}

static int survey(const where *w, int count, shard_info *sh) {
  /* the job ids of every submission */
  char ids[8192] = "";
  for (int i = 0; i < count; i++)
    if (sh[i].job[0] && !strstr(ids, sh[i].job) && strlen(ids) + strlen(sh[i].job) + 2 < sizeof ids)
      snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%s", ids[0] ? "," : "", sh[i].job);
  static char out[1 << 20];
  if (ids[0]) {
    char *sq[] = {"squeue", "-h", "-r", "-o", "%i|%T", "-j", ids, NULL};
    int rc = capture(sq, out, sizeof out);
    if (rc == 0) slurm_states(sh, count, out, 1);
    else fprintf(stderr, "clade: squeue %s (queued shards are not known)\n", rc < 0 ? "not found" : "failed");
    char *sa[] = {"sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ids, NULL};
    /* sacct needs accounting; without it, shards that ended are told apart by their databases */
    if (capture(sa, out, sizeof out) == 0) slurm_states(sh, count, out, 0);
  }
  for (int i = 0; i < count; i++) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/shards/%d.db", w->dir, i);
    struct stat sb;
    if (stat(path, &sb) == 0) {
      cl_store *s;
      cl_error e;
      if (cl_store_open_existing(path, &s, &e) != CL_OK) {
        fprintf(stderr, "clade: %s\n", e.msg);
      } else {
        if (cl_store_shard_state(s, &sh[i].db, &e) != CL_OK) fprintf(stderr, "clade: %s\n", e.msg);
        else sh[i].has_db = sh[i].db.run_id != 0;
        cl_store_close(s);
      }
    }
    sh[i].verdict = sh[i].has_db && !strcmp(sh[i].db.status, "complete") ? "done"
                    : sh[i].queued ? (!strcmp(sh[i].state, "PENDING") ? "pending" : "running")
                    : sh[i].job[0] ? "failed"
                                   : "missing";
  }
  return 0;
}

static int cmd_status(const where *w, int resubmit) {
  int count;
  shard_info *sh;
  char merge_job[64];
  if (read_jobs(w, &count, &sh, merge_job, sizeof merge_job)) return 1;
  survey(w, count, sh);
  int64_t done = 0, planned = 0;
  int n_done = 0, n_run = 0, n_pend = 0, n_bad = 0, unplanned = 0;
  char rerun[4096] = "";
  if (!resubmit) printf("shard\tstate\tjobs\tslurm_job\tslurm_state\n");
  for (int i = 0; i < count; i++) {
    const shard_info *s = &sh[i];
    char jobs[64] = "-";
    if (s->has_db && s->db.plan_jobs >= 0) {
      snprintf(jobs, sizeof jobs, "%lld/%lld", (long long)s->db.jobs_done, (long long)s->db.plan_jobs);
      done += s->db.jobs_done;
      planned += s->db.plan_jobs;
    } else {
      unplanned++;
    }
    char task[80] = "-";
    if (s->job[0]) snprintf(task, sizeof task, "%s_%d", s->job, i);
    if (!resubmit) printf("%d\t%s\t%s\t%s\t%s\n", i, s->verdict, jobs, task, s->state[0] ? s->state : "-");
    if (!strcmp(s->verdict, "done")) n_done++;
    else if (!strcmp(s->verdict, "running")) n_run++;
    else if (!strcmp(s->verdict, "pending")) n_pend++;
    else {
      n_bad++;
      if (strlen(rerun) + 16 < sizeof rerun)
        snprintf(rerun + strlen(rerun), sizeof rerun - strlen(rerun), "%s%d", rerun[0] ? "," : "", i);
    }
  }
  int rc = 0;
  if (!resubmit) {
    printf("total\t%d/%d done\t%lld/%lld%s\t%d running\t%d pending\t%d failed or missing\n", n_done, count,
           (long long)done, (long long)planned, unplanned ? "+" : "", n_run, n_pend, n_bad);
    if (n_bad) fprintf(stderr, "clade: shards %s need rerunning: clade slurm FILE --resubmit\n", rerun);
    rc = n_done == count ? 0 : 3;
  } else if (!n_bad) {
    fprintf(stderr, "clade: nothing to resubmit: %d done, %d running, %d pending of %d shards\n", n_done, n_run,
            n_pend, count);
  } else {
    rc = submit(w, count, rerun) ? 1 : 0;
  }
  free(sh);
  return rc;
}

int cl_cmd_slurm(int argc, char **argv) {
  slurm_args a;
  int rc = parse(argc, argv, &a);
  if (rc) return rc;
  where w;
  if (locate(&a, &w)) return 1;
  if (a.status || a.resubmit) return cmd_status(&w, a.resubmit);
  char into[PATH_MAX], exe[PATH_MAX];
  if (absolute(a.into ? a.into : "results/clade.db", 0, into)) {
    cl_cli_fail("slurm: cannot make the folder of %s", a.into ? a.into : "results/clade.db");
    return 1;
  }
  if (!realpath("/proc/self/exe", exe)) {
    cl_cli_fail("slurm: cannot find the clade binary: %s", strerror(errno));
    return 1;
  }
  if (write_scripts(&a, &w, into, exe)) return 1;
  char path[PATH_MAX + 32];
  FILE *f = open_in(&w, "jobs.tsv", "w", path, sizeof path);
  if (!f) return 1;
  if (fprintf(f, "shards\t%d\t-\n", a.array) < 0 || fclose(f)) {
    cl_cli_fail("%s: %s", path, strerror(errno));
    return 1;
  }
  for (const char *s = "array.sbatch"; s; s = strcmp(s, "array.sbatch") ? NULL : "merge.sbatch") {
    snprintf(path, sizeof path, "%s/%s", w.dir, s);
    char *text;
    size_t len;
    cl_error e;
    if (cl_read_file(path, &text, &len, &e) != CL_OK) {
      cl_cli_fail("%s", e.msg);
      return 1;
    }
    printf("# ---- %s\n%.*s", path, (int)len, text);
    free(text);
  }
  if (!a.submit) {
    fprintf(stderr, "clade: wrote %s/array.sbatch and merge.sbatch; submit with --submit (or sbatch array.sbatch, "
                    "then sbatch --dependency=afterany:JOBID merge.sbatch)\n", w.dir);
    return 0;
  }
  return submit(&w, a.array, NULL) ? 1 : 0;
}
