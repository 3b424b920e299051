/* clade cache stats|prune: the embedding cache beside a results database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cl_cli.h"
#include "sched/cl_cache.h"

/* clade cache merge SRC... into the cache at path (created when missing). */
static int merge(const char *path, char **srcs, int n) {
  if (n == 0) {
    cl_cli_fail("cache merge: no cache database to merge from");
    return cl_cli_usage("cache");
  }
  cl_cache *c;
  cl_error e;
  char dir[4200];
  const char *slash = strrchr(path, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 0, path);
  if ((dir[0] && cl_mkdirs(dir, &e) != CL_OK) || cl_cache_open(path, &c, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    return 1;
  }
  int rc = 0;
  int64_t total = 0;
  for (int i = 0; i < n && !rc; i++) {
    int64_t added;
    if (cl_cache_merge(c, srcs[i], &added, &e) != CL_OK) {
      cl_cli_fail("%s", e.msg);
      rc = 1;
    } else {
      printf("%s\t%lld\n", srcs[i], (long long)added);
      total += added;
    }
  }
  if (!rc) printf("added_embeddings\t%lld\ncache\t%s\n", (long long)total, path);
  cl_cache_close(c);
  return rc;
}

int cl_cmd_cache(int argc, char **argv) {
  const char *db = "results/clade.db", *sub = NULL, *into = NULL;
  double days = 0;
  char **srcs = calloc((size_t)argc, sizeof *srcs);
  int nsrc = 0;
  if (!srcs) return 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
    else if (!strcmp(argv[i], "--into") && i + 1 < argc) into = argv[++i];
    else if (!strcmp(argv[i], "--older-than") && i + 1 < argc) days = atof(argv[++i]);
    else if (!sub && argv[i][0] != '-') sub = argv[i];
    else if (sub && !strcmp(sub, "merge") && argv[i][0] != '-') srcs[nsrc++] = argv[i];
    else {
      cl_cli_fail("cache: unexpected argument %s", argv[i]);
      free(srcs);
      return cl_cli_usage("cache");
    }
  }
  if (!sub || (strcmp(sub, "stats") && strcmp(sub, "prune") && strcmp(sub, "merge"))) {
    cl_cli_fail("cache: say stats, prune or merge");
    free(srcs);
    return cl_cli_usage("cache");
  }
  char path[4200];
  cl_cache_path_for(db, path, sizeof path);
  if (!strcmp(sub, "merge")) {
    int rc = merge(into ? into : path, srcs, nsrc);
    free(srcs);
    return rc;
  }
  free(srcs);
  struct stat sb;
  if (stat(path, &sb) != 0) {
    cl_cli_fail("%s: no embedding cache (it is made by `clade run --db %s`)", path, db);
    return 1;
  }
  cl_cache *c;
  cl_error e;
  if (cl_cache_open(path, &c, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    return 1;
  }
  int rc = 0;
  if (!strcmp(sub, "stats")) {
    cl_cache_stats st;
    cl_cache_stats_get(c, &st, &e);
    printf("cache\t%s\nencoders\t%lld\nimages\t%lld\ntexts\t%lld\nbytes\t%lld\nfile_hashes\t%lld\n", path,
           (long long)st.models, (long long)st.images, (long long)st.texts, (long long)st.bytes, (long long)st.files);
  } else {
    int64_t ne = 0, nf = 0;
    if (cl_cache_prune(c, days, &ne, &nf, &e) != CL_OK) {
      cl_cli_fail("%s", e.msg);
      rc = 1;
    } else {
      printf("removed_embeddings\t%lld\nremoved_file_hashes\t%lld\n", (long long)ne, (long long)nf);
    }
  }
  cl_cache_close(c);
  return rc;
}
