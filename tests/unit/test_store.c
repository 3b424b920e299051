/* The results store: schema, provenance through libgit2 in a repository made here, one
 * transaction per evaluation (abort and failed inserts leave nothing), reading back in order,
 * git blob hashes, refusing foreign or newer databases; then the CLI on the database written
 * (`clade results|predictions|log`, when CLADE names the binary). */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <git2.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cl_test.h"
#include "store/cl_store.h"

static char tmp[256];

static char *pathf(char *buf, const char *rel) {
  snprintf(buf, 512, "%s/%s", tmp, rel);
  return buf;
}

static void write_text(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(s, f);
  fclose(f);
}

/* Commit every file in the work tree (git add -A; git commit) and return the commit's hex. */
static int commit_all(git_repository *repo, const char *msg, char hex[41]) {
  git_index *idx = NULL;
  git_oid tree_id, commit_id, parent_id;
  git_tree *tree = NULL;
  git_signature *sig = NULL;
  git_commit *parent = NULL;
  int rc = git_repository_index(&idx, repo);
  if (!rc) rc = git_index_add_all(idx, NULL, 0, NULL, NULL);
  if (!rc) rc = git_index_write(idx);
  if (!rc) rc = git_index_write_tree(&tree_id, idx);
  if (!rc) rc = git_tree_lookup(&tree, repo, &tree_id);
  if (!rc) rc = git_signature_new(&sig, "Test", "test@example.org", 1700000000, 0);
  if (!rc && git_reference_name_to_id(&parent_id, repo, "HEAD") == 0)
    rc = git_commit_lookup(&parent, repo, &parent_id);
  if (!rc)
    rc = git_commit_create_v(&commit_id, repo, "HEAD", sig, sig, NULL, msg, tree, parent ? 1 : 0,
                             parent);
  if (!rc) git_oid_tostr(hex, 41, &commit_id);
  else fprintf(stderr, "libgit2: %s\n", git_error_last() ? git_error_last()->message : "?");
  git_commit_free(parent);
  git_signature_free(sig);
  git_tree_free(tree);
  git_index_free(idx);
  return rc;
}

/* ---- collecting rows ---- */
typedef struct runs_seen {
  int n;
  int64_t id;
  char commit[64], branch[64], file_hash[64], status[32], version[32], host[256];
  int dirty, has_commit, has_branch, has_wall, has_ended;
  double wall;
  int64_t pid, n_evals, images_encoded;
} runs_seen;

static int on_run(const cl_run_row *r, void *ud, cl_error *e) {
  (void)e;
  runs_seen *s = ud;
  s->n++;
  s->id = r->id;
  s->has_commit = r->git_commit != NULL;
  s->has_branch = r->git_branch != NULL;
  snprintf(s->commit, sizeof s->commit, "%s", r->git_commit ? r->git_commit : "");
  snprintf(s->branch, sizeof s->branch, "%s", r->git_branch ? r->git_branch : "");
  snprintf(s->file_hash, sizeof s->file_hash, "%s", r->file_hash ? r->file_hash : "");
  snprintf(s->status, sizeof s->status, "%s", r->status);
  snprintf(s->version, sizeof s->version, "%s", r->clade_version);
  snprintf(s->host, sizeof s->host, "%s", r->host ? r->host : "");
  s->dirty = r->git_dirty;
  s->has_wall = r->has_wall;
  s->has_ended = r->ended_at != NULL;
  s->wall = r->wall_seconds;
  s->pid = r->pid;
  s->n_evals = r->n_evaluations;
  s->images_encoded = r->images_encoded;
  return 0;
}

static char results_seen[4096];
static int on_result(const cl_result_row *r, void *ud, cl_error *e) {
  (void)ud, (void)e;
  char line[256];
  snprintf(line, sizeof line, "%lld|%s|%s|%s|%d|%d|%s|%.17g|%d;", (long long)r->eval_id,
           r->protocol, r->text_type, r->dataset, r->shots, r->trial, r->metric,
           r->has_value ? r->value : -1.0, r->has_value);
  strncat(results_seen, line, sizeof results_seen - strlen(results_seen) - 1);
  return 0;
}

static char preds_seen[4096];
static int on_pred(const cl_prediction_row *r, void *ud, cl_error *e) {
  (void)ud, (void)e;
  char line[512];
  snprintf(line, sizeof line, "%d|%d|%s|%s|%s|%d;", r->trial, r->example, r->filepath, r->label,
           r->prediction, r->correct);
  strncat(preds_seen, line, sizeof preds_seen - strlen(preds_seen) - 1);
  return 0;
}

static char support_seen[1024];
static int on_support(const cl_support_row *r, void *ud, cl_error *e) {
  (void)ud, (void)e;
  char line[256];
  snprintf(line, sizeof line, "%d|%s|%s;", r->trial, r->cls, r->filepath);
  strncat(support_seen, line, sizeof support_seen - strlen(support_seen) - 1);
  return 0;
}

static int stop_early(const cl_result_row *r, void *ud, cl_error *e) {
  (void)r;
  ++*(int *)ud;
  return cl_err(e, CL_EINVAL, "stopped");
}

/* A count from one SQL query on the file, through SQLite directly. */
static long long count_sql(const char *db, const char *sql) {
  sqlite3 *h = NULL;
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  else fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(h));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

/* ---- running the CLI ---- */
static char out_buf[1 << 16], err_path[512];
static int run_cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cli(const char *fmt, ...) {
  char args[2048], cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", getenv("CLADE"), args, err_path);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = fread(out_buf, 1, sizeof out_buf - 1, p);
  out_buf[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *err_text(void) {
  static char buf[2048];
  buf[0] = 0;
  FILE *f = fopen(err_path, "r");
  if (f) {
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
  }
  return buf;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void check_cli(const char *db, int64_t run_id, int64_t latest) {
  if (!getenv("CLADE") || !*getenv("CLADE")) {
    printf("test_store: CLADE not set: skipping the CLI checks\n");
    return;
  }
  pathf(err_path, "cli.err");

  /* results csv: header, rows in order (aggregate before trials), %.17g values; without
   * intervals (--ci none) the interval columns are empty */
  CHECK_EQ_INT(run_cli("results --db '%s' --run %lld --format csv --ci none", db, (long long)run_id), 0);
  const char *head = "run,experiment,model,dataset,protocol,text_type,shots,trial,metric,value";
  CHECK_MSG(strncmp(out_buf, head, strlen(head)) == 0 && strchr(",\n", out_buf[strlen(head)]),
            "csv header: %.120s", out_buf);
  CHECK_EQ_INT(count_lines(out_buf), 1 + 3 + 4);
  char want[512];
  snprintf(want, sizeof want, "\n%lld,zs,bioclip,rare,zero_shot,taxonomic_common,0,all,top1,"
           "0.39100000000000001,4,,,,,,,,,\n%lld,zs,bioclip,rare,zero_shot,taxonomic_common,0,all,top3,0.5,4,,,,,,,,,\n",
           (long long)run_id, (long long)run_id);
  CHECK_MSG(strstr(out_buf, want) != NULL, "csv rows:\n%s", out_buf);
  snprintf(want, sizeof want, "\n%lld,fs,feats,rare,few_shot,,1,all,top1,0.625,8,,,,,,,,,\n"
           "%lld,fs,feats,rare,few_shot,,1,all,top1_std,0.125,8,,,,,,,,,\n"
           "%lld,fs,feats,rare,few_shot,,1,0,top1,0.5,8,,,,,,,,,\n"
           "%lld,fs,feats,rare,few_shot,,1,1,top1,0.75,8,,,,,,,,,\n",
           (long long)run_id, (long long)run_id, (long long)run_id, (long long)run_id);
  CHECK_MSG(strstr(out_buf, want) != NULL, "few-shot csv rows:\n%s", out_buf);

  /* the --opt=value spelling gives the same; without --run, the latest run (a NaN: empty) */
  char csv_run[sizeof out_buf];
  memcpy(csv_run, out_buf, sizeof out_buf);
  CHECK_EQ_INT(run_cli("results --db=%s --run=%lld --format=csv --ci=none", db, (long long)run_id), 0);
  CHECK_STR(out_buf, csv_run);
  CHECK_EQ_INT(run_cli("results --db '%s' --format csv --ci none", db), 0);
  snprintf(want, sizeof want, "\n%lld,fs,feats,rare,few_shot,,1,all,top1,,8,,,,,,,,,\n", (long long)latest);
  CHECK_MSG(strstr(out_buf, want) != NULL && count_lines(out_buf) == 2, "latest:\n%s", out_buf);
  CHECK_EQ_INT(run_cli("results --db '%s' --format json", db), 0);
  cJSON *j = cJSON_Parse(out_buf);
  CHECK_MSG(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 1 &&
                cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(j, 0), "value")),
            "latest json: %s", out_buf);
  cJSON_Delete(j);

  /* results json parses, with the keys and trial as a number or "all" */
  CHECK_EQ_INT(run_cli("results --db '%s' --run %lld --format json", db, (long long)run_id), 0);
  j = cJSON_Parse(out_buf);
  CHECK_MSG(cJSON_IsArray(j), "json: %.200s", out_buf);
  CHECK_EQ_INT(cJSON_GetArraySize(j), 7);
  int seen_all = 0, seen_trial = 0;
  cJSON *o;
  cJSON_ArrayForEach(o, j) {
    const char *keys[] = {"run", "experiment", "model", "dataset", "protocol", "text_type",
                          "shots", "trial", "metric", "value"};
    for (int k = 0; k < 10; k++)
      CHECK_MSG(cJSON_GetObjectItemCaseSensitive(o, keys[k]), "json row lacks %s", keys[k]);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "trial");
    if (cJSON_IsString(t)) seen_all += strcmp(t->valuestring, "all") == 0;
    if (cJSON_IsNumber(t)) seen_trial++;
    cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metric");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
    cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "protocol");
    if (cJSON_IsString(m) && strcmp(m->valuestring, "top1") == 0 && cJSON_IsString(p) &&
        strcmp(p->valuestring, "zero_shot") == 0)
      CHECK(cJSON_IsNumber(v) && v->valuedouble == 0.391);
  }
  CHECK_EQ_INT(seen_all, 5);
  CHECK_EQ_INT(seen_trial, 2);
  cJSON_Delete(j);

  /* table: aligned, rounded to percentages */
  CHECK_EQ_INT(run_cli("results --db '%s' --run %lld", db, (long long)run_id), 0);
  CHECK_MSG(strstr(out_buf, "39.10") && strstr(out_buf, "62.50") && strstr(out_buf, "top1_std"),
            "table:\n%s", out_buf);

  /* predictions: exact header, RFC 4180 quoting, trial all for zero-shot */
  CHECK_EQ_INT(run_cli("predictions --db '%s' --run %lld --format csv", db, (long long)run_id), 0);
  head = "model,dataset,protocol,text_type,shots,trial,filepath,label,prediction,query,key,split,rank,"
         "retrieved\n";
  CHECK_MSG(strncmp(out_buf, head, strlen(head)) == 0, "predictions header: %.100s", out_buf);
  CHECK_MSG(strstr(out_buf, "bioclip,rare,zero_shot,taxonomic_common,0,all,\"img/a,1.jpg\","
                            "\"Ursus \"\"arctos\"\", brown\",\"Ursus \"\"arctos\"\", brown\",,,,,\n"),
            "quoted prediction row:\n%s", out_buf);
  CHECK_MSG(strstr(out_buf, "feats,rare,few_shot,,1,1,img/c.jpg,Canis lupus,Canis lupus,,,,,\n"),
            "few-shot prediction row:\n%s", out_buf);
  CHECK_EQ_INT(count_lines(out_buf), 1 + 4 + 4);
  CHECK_EQ_INT(run_cli("predictions --db '%s' --run %lld --format json", db, (long long)run_id),
               0);
  j = cJSON_Parse(out_buf);
  CHECK_MSG(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 8, "predictions json: %.200s", out_buf);
  cJSON_Delete(j);

  /* log: one line per run, starting with its id; json with the provenance fields */
  CHECK_EQ_INT(run_cli("log --db '%s'", db), 0);
  int lines = count_lines(out_buf);
  CHECK_EQ_INT(lines, 4);
  char *line = out_buf;
  for (int i = 0; i < lines; i++) {
    CHECK_MSG(line[0] >= '1' && line[0] <= '9', "log line: %.80s", line);
    line = strchr(line, '\n') + 1;
  }
  char idstr[32];
  snprintf(idstr, sizeof idstr, "%lld  ", (long long)run_id);
  CHECK_MSG(strstr(out_buf, idstr) && strstr(out_buf, "complete") && strstr(out_buf, "clean"),
            "log:\n%s", out_buf);
  CHECK_EQ_INT(run_cli("log --db '%s' -n 1", db), 0);
  CHECK_EQ_INT(count_lines(out_buf), 1);
  CHECK_EQ_INT(atoll(out_buf), latest);
  CHECK_MSG(strstr(out_buf, "interrupted") != NULL, "%s", out_buf);
  CHECK_EQ_INT(run_cli("log --db '%s' --format json", db), 0);
  j = cJSON_Parse(out_buf);
  CHECK_MSG(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 4, "log json: %.300s", out_buf);
  cJSON_ArrayForEach(o, j) {
    const char *keys[] = {"id", "file", "commit", "dirty", "status", "wall_seconds",
                          "images_encoded", "texts_encoded", "images_cached", "texts_cached"};
    for (int k = 0; k < 10; k++)
      CHECK_MSG(cJSON_GetObjectItemCaseSensitive(o, keys[k]), "log json lacks %s", keys[k]);
    cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (cJSON_IsNumber(id) && (int64_t)id->valuedouble == run_id) {
      CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "dirty")));
      CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "wall_seconds")));
      CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(o, "images_encoded")->valuedouble, 12);
      cJSON *stats = cJSON_GetObjectItemCaseSensitive(o, "stats");
      CHECK(cJSON_IsObject(stats));
    }
  }
  cJSON_Delete(j);

  /* errors: unknown run, missing database (not created), bad usage */
  CHECK_EQ_INT(run_cli("results --db '%s' --run 999 --format csv", db), 1);
  CHECK_MSG(strstr(err_text(), "999") != NULL, "stderr: %s", err_text());
  CHECK_EQ_INT(out_buf[0], 0);
  char missing[512];
  pathf(missing, "nowhere/clade.db");
  CHECK_EQ_INT(run_cli("results --db '%s' --format csv", missing), 1);
  CHECK_MSG(strstr(err_text(), missing) != NULL, "stderr: %s", err_text());
  CHECK_EQ_INT(count_lines(err_text()), 1);
  CHECK(access(missing, F_OK) != 0);
  CHECK_EQ_INT(run_cli("log --db '%s'", missing), 1);
  CHECK_EQ_INT(run_cli("predictions --db '%s'", missing), 1);
  CHECK(access(missing, F_OK) != 0);
  CHECK_EQ_INT(run_cli("results --db '%s' --format xml", db), 2);
  CHECK_EQ_INT(run_cli("results --db '%s' --run x", db), 2);
  CHECK_EQ_INT(run_cli("results --db '%s' --bogus", db), 2);
}

/* An unfinished run is resumed only by a run of the same content, backend and precision:
 * another precision begins its own run (its results are not the unfinished run's). */
static void test_resume_settings(void) {
  cl_error err = {0};
  char db[512];
  pathf(db, "resume.db");
  cl_store *s = NULL;
  CHECK_OK(cl_store_open(db, &s, &err), err);
  cl_run_info fp32 = {.file = "exp.lua", .file_hash = "0123456789abcdef0123456789abcdef01234567", .backend = "cpu",
                      .precision = "fp32"};
  cl_run_info bf16 = fp32, cuda = fp32;
  bf16.precision = "bf16";
  cuda.backend = "cuda";
  int64_t r1 = 0, r2 = 0, r3 = 0, r = 0;
  int resumed = -1, live = -1;
  CHECK_OK(cl_store_begin_or_resume(s, &fp32, &r1, &resumed, &live, &err), err);
  CHECK_EQ_INT(resumed, 0);
  CHECK_OK(cl_store_run_end(s, r1, "failed", &err), err);
  CHECK_OK(cl_store_begin_or_resume(s, &bf16, &r2, &resumed, &live, &err), err);
  CHECK_MSG(r2 != r1 && resumed == 0, "bf16 took over the fp32 run %lld (got %lld, resumed %d)", (long long)r1,
            (long long)r2, resumed);
  CHECK_OK(cl_store_run_end(s, r2, "interrupted", &err), err);
  CHECK_OK(cl_store_begin_or_resume(s, &cuda, &r3, &resumed, &live, &err), err);
  CHECK(r3 != r1 && r3 != r2 && resumed == 0);
  CHECK_OK(cl_store_run_end(s, r3, "complete", &err), err);
  CHECK_OK(cl_store_begin_or_resume(s, &fp32, &r, &resumed, &live, &err), err);
  CHECK_MSG(r == r1 && resumed == 1, "fp32 resumed %lld, want %lld", (long long)r, (long long)r1);
  CHECK_OK(cl_store_begin_or_resume(s, &bf16, &r, &resumed, &live, &err), err);
  CHECK_MSG(r == r2 && resumed == 1, "bf16 resumed %lld, want %lld", (long long)r, (long long)r2);
  cl_store_close(s);
}

int main(void) {
  cl_error err = {0};
  snprintf(tmp, sizeof tmp, "/tmp/cl_test_storeXXXXXX");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  char p1[512], p2[512], p3[512], db[512];
  test_resume_settings();

  /* git blob hashes, as `git hash-object` */
  char h[41];
  CHECK_OK(cl_hash_buf("hello\n", 6, h, &err), err);
  CHECK_STR(h, "ce013625030ba8dba906f756967f9e9ca394464a");
  CHECK_OK(cl_hash_buf(NULL, 0, h, &err), err);
  CHECK_STR(h, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  write_text(pathf(p1, "hello.txt"), "hello\n");
  CHECK_OK(cl_hash_file(p1, h, &err), err);
  CHECK_STR(h, "ce013625030ba8dba906f756967f9e9ca394464a");
  write_text(pathf(p1, "empty.txt"), "");
  CHECK_OK(cl_hash_file(p1, h, &err), err);
  CHECK_STR(h, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  CHECK_EQ_INT(cl_hash_file(pathf(p1, "absent.txt"), h, &err), CL_EIO);
  CHECK_MSG(strstr(err.msg, "absent.txt") != NULL, "%s", err.msg);

  /* a repository with one commit holding the experiment and a .gitignore */
  git_libgit2_init();
  git_repository *repo = NULL;
  char repo_dir[512], exp[512], commit1[41] = "", commit2[41] = "";
  pathf(repo_dir, "repo");
  pathf(exp, "repo/exp.lua");
  CHECK_EQ_INT(git_repository_init(&repo, repo_dir, 0), 0);
  write_text(exp, "experiment \"zs\" {}\n");
  pathf(p1, "repo/.gitignore");
  write_text(p1, "*.log\n");
  CHECK_EQ_INT(commit_all(repo, "first", commit1), 0);
  CHECK_EQ_INT(strlen(commit1), 40);

  cl_git_info gi;
  CHECK_OK(cl_store_git_info(exp, &gi, &err), err);
  CHECK_EQ_INT(gi.in_repo, 1);
  CHECK_STR(gi.commit, commit1);
  CHECK_EQ_INT(gi.dirty, 0);
  git_reference *head = NULL;
  CHECK_EQ_INT(git_reference_lookup(&head, repo, "HEAD"), 0);
  const char *target = head ? git_reference_symbolic_target(head) : NULL;
  CHECK_STR(gi.branch, target ? target + strlen("refs/heads/") : "?");
  git_reference_free(head);
  CHECK_OK(cl_store_git_info(repo_dir, &gi, &err), err); /* a directory works too */
  CHECK_STR(gi.commit, commit1);
  pathf(p1, "repo/debug.log"); /* ignored: still clean */
  write_text(p1, "x\n");
  CHECK_OK(cl_store_git_info(exp, &gi, &err), err);
  CHECK_EQ_INT(gi.dirty, 0);
  pathf(p2, "repo/notes.txt"); /* untracked: dirty */
  write_text(p2, "x\n");
  CHECK_OK(cl_store_git_info(exp, &gi, &err), err);
  CHECK_EQ_INT(gi.dirty, 1);
  unlink(p2);
  write_text(exp, "experiment \"zs\" { }\n"); /* modified: dirty */
  CHECK_OK(cl_store_git_info(exp, &gi, &err), err);
  CHECK_EQ_INT(gi.dirty, 1);
  CHECK_EQ_INT(commit_all(repo, "second", commit2), 0); /* committed: clean at the new commit */
  CHECK_OK(cl_store_git_info(exp, &gi, &err), err);
  CHECK_EQ_INT(gi.dirty, 0);
  CHECK_STR(gi.commit, commit2);
  git_oid oid1;
  git_oid_fromstr(&oid1, commit1);
  CHECK_EQ_INT(git_repository_set_head_detached(repo, &oid1), 0); /* detached: no branch */
  CHECK_OK(cl_store_git_info(exp, &gi, &err), err);
  CHECK_STR(gi.commit, commit1);
  CHECK_STR(gi.branch, "");
  CHECK_EQ_INT(gi.dirty, 1); /* the work tree holds commit2's exp.lua */
  git_oid oid2;
  git_oid_fromstr(&oid2, commit2);
  CHECK_EQ_INT(git_repository_set_head_detached(repo, &oid2), 0);
  git_repository_free(repo);

  git_repository *empty = NULL; /* no commits yet: commit "", branch known */
  pathf(p1, "emptyrepo");
  CHECK_EQ_INT(git_repository_init(&empty, p1, 0), 0);
  git_repository_free(empty);
  CHECK_OK(cl_store_git_info(p1, &gi, &err), err);
  CHECK_EQ_INT(gi.in_repo, 1);
  CHECK_STR(gi.commit, "");
  CHECK(gi.branch[0] != 0);

  int outside_ok = 1; /* the temp folder must not itself lie in a repository */
  pathf(p3, "plain/exp.lua");
  mkdir(pathf(p1, "plain"), 0777);
  write_text(p3, "experiment \"x\" {}\n");
  CHECK_OK(cl_store_git_info(p3, &gi, &err), err);
  if (gi.in_repo) {
    outside_ok = 0;
    printf("test_store: %s lies inside a git repository: skipping the outside-a-repo checks\n",
           tmp);
  }

  /* a new database in folders that do not exist yet */
  pathf(db, "results/sub/clade.db");
  cl_store *s = NULL;
  CHECK_OK(cl_store_open(db, &s, &err), err);
  if (!s) return cl_test_done("test_store");
  int ver = 0;
  CHECK_OK(cl_store_schema_version(s, &ver, &err), err);
  CHECK_EQ_INT(ver, CL_STORE_SCHEMA_VERSION);
  CHECK_STR(cl_store_path(s), db);

  /* runs: one outside a repository, the main one inside */
  int64_t run0 = 0, run = 0, run2 = 0;
  cl_run_info ri0 = {.file = p3, .backend = "cpu"};
  CHECK_OK(cl_store_run_begin(s, &ri0, &run0, &err), err);
  CHECK_OK(cl_store_run_end(s, run0, "failed", &err), err);
  cl_run_info ri = {.file = exp, .backend = "cpu", .device = "cpu", .precision = "fp32"};
  CHECK_OK(cl_store_run_begin(s, &ri, &run, &err), err);
  CHECK(run > run0);

  /* zero-shot: aggregate top-k and predictions (a label that needs CSV quoting) */
  cl_eval_info zs = {.experiment = "zs", .model = "bioclip", .model_hash = "abc",
                     .dataset = "rare", .protocol = "zero_shot",
                     .text_type = "taxonomic_common", .shots = 0,
                     .params_json = "{\"templates\":\"bioclip81\"}", .n_examples = 4};
  int64_t ev_zs = 0, ev_fs = 0, ev_bad = 0;
  CHECK_OK(cl_store_eval_begin(s, run, &zs, &ev_zs, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_zs, -1, "top1", 0.391, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_zs, -1, "top3", 0.5, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_zs, -1, "top5", 1.0, &err), err);
  const char *bear = "Ursus \"arctos\", brown";
  CHECK_OK(cl_store_add_prediction(s, ev_zs, -1, 0, "img/a,1.jpg", bear, bear, &err), err);
  CHECK_OK(cl_store_add_prediction(s, ev_zs, -1, 1, "img/b.jpg", "Canis lupus", bear, &err), err);
  CHECK_OK(cl_store_add_prediction(s, ev_zs, -1, 2, "img/c.jpg", "Canis lupus", "Canis lupus",
                                   &err), err);
  CHECK_OK(cl_store_add_prediction(s, ev_zs, -1, 3, "img/d.jpg", "Felis catus", bear, &err), err);
  /* rows for another evaluation, or a second evaluation, while this one is open: refused */
  CHECK_EQ_INT(cl_store_add_result(s, ev_zs + 100, -1, "top1", 0, &err), CL_EINVAL);
  CHECK_MSG(strstr(err.msg, "eval") != NULL, "%s", err.msg);
  CHECK_EQ_INT(cl_store_eval_begin(s, run, &zs, &ev_bad, &err), CL_EINVAL);
  CHECK_OK(cl_store_eval_commit(s, ev_zs, &err), err);
  CHECK_EQ_INT(cl_store_add_result(s, ev_zs, -1, "top1", 0, &err), CL_EINVAL); /* closed */

  /* few-shot: 2 trials, per-trial and aggregate, supports, predictions per trial */
  cl_eval_info fs = {.experiment = "fs", .model = "feats", .dataset = "rare",
                     .protocol = "few_shot", .text_type = NULL, .shots = 1, .n_examples = 8};
  CHECK_OK(cl_store_eval_begin(s, run, &fs, &ev_fs, &err), err);
  CHECK(ev_fs > ev_zs);
  CHECK_OK(cl_store_add_result(s, ev_fs, 1, "top1", 0.75, &err), err); /* out of order on purpose */
  CHECK_OK(cl_store_add_result(s, ev_fs, 0, "top1", 0.5, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_fs, -1, "top1_std", 0.125, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_fs, -1, "top1", 0.625, &err), err);
  for (int t = 0; t < 2; t++) {
    CHECK_OK(cl_store_add_support(s, ev_fs, t, "Canis lupus", t ? "img/e.jpg" : "img/c.jpg", &err),
             err);
    CHECK_OK(cl_store_add_support(s, ev_fs, t, "Felis catus", "img/d.jpg", &err), err);
    CHECK_OK(cl_store_add_prediction(s, ev_fs, t, 0, "img/a,1.jpg", bear, bear, &err), err);
    CHECK_OK(cl_store_add_prediction(s, ev_fs, t, 1, t ? "img/c.jpg" : "img/e.jpg", "Canis lupus",
                                     t ? "Canis lupus" : bear, &err), err);
  }
  CHECK_OK(cl_store_eval_commit(s, ev_fs, &err), err);

  /* a run holds each cell once: a second zero-shot cell with the same key is refused */
  int64_t ev_twice = 0;
  CHECK_EQ_INT(cl_store_eval_begin(s, run, &zs, &ev_twice, &err), CL_EDB);
  CHECK_MSG(strstr(err.msg, "UNIQUE") != NULL, "%s", err.msg);
  cl_store_eval_abort(s);
  /* an aborted evaluation leaves no rows */
  cl_eval_info zs_abort = zs, zs_dup = zs, zs_open = zs;
  zs_abort.text_type = "scratch_abort";
  zs_dup.text_type = "scratch_dup";
  zs_open.text_type = "scratch_open";
  CHECK_OK(cl_store_eval_begin(s, run, &zs_abort, &ev_bad, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_bad, -1, "top1", 0.9, &err), err);
  CHECK_OK(cl_store_add_prediction(s, ev_bad, -1, 0, "x.jpg", "a", "b", &err), err);
  cl_store_eval_abort(s);
  /* a failed insert (a duplicate metric) poisons the evaluation: commit rolls it back */
  int64_t ev_dup = 0;
  CHECK_OK(cl_store_eval_begin(s, run, &zs_dup, &ev_dup, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_dup, -1, "top1", 0.9, &err), err);
  CHECK_EQ_INT(cl_store_add_result(s, ev_dup, -1, "top1", 0.8, &err), CL_EDB);
  CHECK_MSG(strstr(err.msg, "inserting result top1 (trial all) for eval") && strstr(err.msg, db) &&
                strstr(err.msg, "UNIQUE"), "%s", err.msg);
  CHECK(cl_store_eval_commit(s, ev_dup, &err) != CL_OK);
  CHECK_MSG(strstr(err.msg, "rolled back") != NULL, "%s", err.msg);
  /* an evaluation for a run that does not exist: the foreign key refuses it */
  int64_t ev_orphan = 0;
  CHECK_EQ_INT(cl_store_eval_begin(s, run + 1000, &zs, &ev_orphan, &err), CL_EDB);
  CHECK_MSG(strstr(err.msg, "FOREIGN KEY") != NULL, "%s", err.msg);

  /* while this handle holds a write transaction, another reads (WAL) */
  int64_t ev_open = 0;
  CHECK_OK(cl_store_eval_begin(s, run, &zs_open, &ev_open, &err), err);
  cl_store *r2 = NULL;
  CHECK_OK(cl_store_open_existing(db, &r2, &err), err);
  runs_seen rs = {0};
  if (r2) CHECK_OK(cl_store_each_run(r2, 0, on_run, &rs, &err), err);
  CHECK_EQ_INT(rs.n, 2);
  cl_store_close(r2);
  cl_store_eval_abort(s);

  /* run_end validation, stats */
  CHECK_EQ_INT(cl_store_run_end(s, run, "done", &err), CL_EINVAL);
  CHECK_EQ_INT(cl_store_run_end(s, run + 1000, "complete", &err), CL_EINVAL);
  CHECK_MSG(strstr(err.msg, "no such run") != NULL, "%s", err.msg);
  cl_run_stats st = {.images_encoded = 12, .texts_encoded = 3, .stats_json = "{\"busy\":0.9}"};
  CHECK_OK(cl_store_run_set_stats(s, run, &st, &err), err);
  CHECK_OK(cl_store_run_end(s, run, "complete", &err), err);
  /* a third run, left running, from a second handle */
  cl_store *s2 = NULL;
  CHECK_OK(cl_store_open(db, &s2, &err), err);
  if (s2) CHECK_OK(cl_store_run_begin(s2, &ri, &run2, &err), err);
  CHECK(run2 > run);
  cl_store_close(s2);
  cl_store_close(s);

  {
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &q, NULL);
    CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
  }
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM evaluations WHERE id IN (%lld, %lld, %lld)",
           (long long)ev_bad, (long long)ev_dup, (long long)ev_open);
  CHECK_EQ_INT(count_sql(db, sql), 0);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM results WHERE eval_id NOT IN (%lld, %lld)",
           (long long)ev_zs, (long long)ev_fs);
  CHECK_EQ_INT(count_sql(db, sql), 0);
  CHECK_EQ_INT(count_sql(db, "SELECT count(*) FROM predictions"), 8);
  CHECK_EQ_INT(count_sql(db, "SELECT sum(correct) FROM predictions"), 5);
  CHECK_EQ_INT(count_sql(db, "PRAGMA user_version"), CL_STORE_SCHEMA_VERSION);
  CHECK_EQ_INT(count_sql(db, "PRAGMA application_id"), CL_STORE_APP_ID);

  /* reopen and read back */
  CHECK_OK(cl_store_open_existing(db, &s, &err), err);
  if (!s) return cl_test_done("test_store");
  int64_t latest = 0;
  CHECK_OK(cl_store_latest_run(s, &latest, &err), err);
  CHECK_EQ_INT(latest, run2);
  memset(&rs, 0, sizeof rs);
  CHECK_OK(cl_store_each_run(s, run, on_run, &rs, &err), err);
  CHECK_EQ_INT(rs.n, 1);
  CHECK_STR(rs.commit, commit2);
  CHECK_EQ_INT(rs.has_branch, 0); /* HEAD was detached */
  CHECK_EQ_INT(rs.dirty, 0);
  CHECK_STR(rs.status, "complete");
  CHECK_STR(rs.version, CLADE_VERSION);
  CHECK(rs.host[0] != 0);
  CHECK_EQ_INT(rs.pid, getpid());
  CHECK(rs.has_wall && rs.wall >= 0 && rs.wall < 60 && rs.has_ended);
  CHECK_EQ_INT(rs.n_evals, 2);
  CHECK_EQ_INT(rs.images_encoded, 12);
  char exp_hash[41];
  CHECK_OK(cl_hash_file(exp, exp_hash, &err), err);
  CHECK_STR(rs.file_hash, exp_hash);
  memset(&rs, 0, sizeof rs);
  CHECK_OK(cl_store_each_run(s, run0, on_run, &rs, &err), err);
  if (outside_ok) {
    CHECK_EQ_INT(rs.has_commit, 0);
    CHECK_EQ_INT(rs.has_branch, 0);
    CHECK_EQ_INT(rs.dirty, -1);
  }
  CHECK_STR(rs.status, "failed");
  memset(&rs, 0, sizeof rs);
  CHECK_OK(cl_store_each_run(s, run2, on_run, &rs, &err), err);
  CHECK_STR(rs.status, "running");
  CHECK_EQ_INT(rs.has_wall, 0);
  CHECK_EQ_INT(rs.has_ended, 0);
  CHECK_EQ_INT(cl_store_each_run(s, 777, on_run, &rs, &err), CL_EINVAL);
  CHECK_MSG(strstr(err.msg, "777") != NULL, "%s", err.msg);

  results_seen[0] = 0;
  CHECK_OK(cl_store_each_result(s, run, on_result, NULL, &err), err);
  char want[1024];
  snprintf(want, sizeof want,
           "%lld|zero_shot|taxonomic_common|rare|0|-1|top1|0.39100000000000001|1;"
           "%lld|zero_shot|taxonomic_common|rare|0|-1|top3|0.5|1;"
           "%lld|zero_shot|taxonomic_common|rare|0|-1|top5|1|1;"
           "%lld|few_shot||rare|1|-1|top1|0.625|1;"
           "%lld|few_shot||rare|1|-1|top1_std|0.125|1;"
           "%lld|few_shot||rare|1|0|top1|0.5|1;"
           "%lld|few_shot||rare|1|1|top1|0.75|1;",
           (long long)ev_zs, (long long)ev_zs, (long long)ev_zs, (long long)ev_fs,
           (long long)ev_fs, (long long)ev_fs, (long long)ev_fs);
  CHECK_STR(results_seen, want);
  int calls = 0;
  CHECK_EQ_INT(cl_store_each_result(s, run, stop_early, &calls, &err), CL_EINVAL);
  CHECK_EQ_INT(calls, 1);
  CHECK_STR(err.msg, "stopped");

  preds_seen[0] = 0;
  CHECK_OK(cl_store_each_prediction(s, run, on_pred, NULL, &err), err);
  snprintf(want, sizeof want,
           "-1|0|img/a,1.jpg|%s|%s|1;-1|1|img/b.jpg|Canis lupus|%s|0;"
           "-1|2|img/c.jpg|Canis lupus|Canis lupus|1;-1|3|img/d.jpg|Felis catus|%s|0;"
           "0|0|img/a,1.jpg|%s|%s|1;0|1|img/e.jpg|Canis lupus|%s|0;"
           "1|0|img/a,1.jpg|%s|%s|1;1|1|img/c.jpg|Canis lupus|Canis lupus|1;",
           bear, bear, bear, bear, bear, bear, bear, bear, bear);
  CHECK_STR(preds_seen, want);

  support_seen[0] = 0;
  CHECK_OK(cl_store_each_support(s, ev_fs, on_support, NULL, &err), err);
  CHECK_STR(support_seen, "0|Canis lupus|img/c.jpg;0|Felis catus|img/d.jpg;"
                          "1|Canis lupus|img/e.jpg;1|Felis catus|img/d.jpg;");
  cl_store_close(s);

  /* NaN is stored as NULL and read back as no value */
  CHECK_OK(cl_store_open(db, &s, &err), err);
  int64_t run3 = 0, ev_nan = 0;
  CHECK_OK(cl_store_run_begin(s, &ri0, &run3, &err), err);
  CHECK_OK(cl_store_eval_begin(s, run3, &fs, &ev_nan, &err), err);
  CHECK_OK(cl_store_add_result(s, ev_nan, -1, "top1", NAN, &err), err);
  CHECK_OK(cl_store_eval_commit(s, ev_nan, &err), err);
  results_seen[0] = 0;
  CHECK_OK(cl_store_each_result(s, run3, on_result, NULL, &err), err);
  CHECK_MSG(strstr(results_seen, "|top1|-1|0;") != NULL, "%s", results_seen);
  CHECK_OK(cl_store_run_end(s, run3, "interrupted", &err), err);
  cl_store_close(s);

  /* databases this build must not touch */
  CHECK_EQ_INT(cl_store_open_existing(pathf(p1, "absent/x.db"), &s, &err), CL_EIO);
  CHECK_MSG(strstr(err.msg, p1) != NULL, "%s", err.msg);
  CHECK(access(p1, F_OK) != 0 && access(pathf(p2, "absent"), F_OK) != 0);
  sqlite3 *raw = NULL;
  pathf(p1, "foreign.db");
  sqlite3_open(p1, &raw);
  sqlite3_exec(raw, "CREATE TABLE t(x)", NULL, NULL, NULL);
  sqlite3_close(raw);
  CHECK_EQ_INT(cl_store_open(p1, &s, &err), CL_EDB);
  CHECK_MSG(strstr(err.msg, "not clade's") != NULL, "%s", err.msg);
  CHECK_EQ_INT(cl_store_open_existing(p1, &s, &err), CL_EDB);
  write_text(pathf(p1, "junk.db"), "this is not a database, not at all, no sir, it's text\n");
  CHECK_EQ_INT(cl_store_open_existing(p1, &s, &err), CL_EDB);
  CHECK_MSG(strstr(err.msg, "junk.db") != NULL, "%s", err.msg);

  check_cli(db, run, run3);

  /* a database from a newer clade is refused, not downgraded */
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d", CL_STORE_SCHEMA_VERSION + 1);
  sqlite3_open(db, &raw);
  sqlite3_exec(raw, sql, NULL, NULL, NULL);
  sqlite3_close(raw);
  CHECK_EQ_INT(cl_store_open(db, &s, &err), CL_EDB);
  CHECK_MSG(strstr(err.msg, "newer") != NULL, "%s", err.msg);

  git_libgit2_shutdown();
  if (cl_test_failures || getenv("CLADE_KEEP_TMP")) /* keep the evidence */
    fprintf(stderr, "test_store: files kept in %s\n", tmp);
  else {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  }
  return cl_test_done("test_store");
}
