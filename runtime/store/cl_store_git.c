/* cl_store_git: git provenance through libgit2 (content hashes: core/cl_hash.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_store.h"

static const char *git_msg(void) {
  const git_error *ge = git_error_last();
  return ge && ge->message ? ge->message : "unknown libgit2 error";
}

/* The directory to start the repository search from: path itself when a directory, else its
 * parent, made absolute. */
static void start_dir(const char *path, char *out, size_t n) {
  struct stat sb;
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    char *d = dirname(tmp); /* may return a static "." or modify tmp */
    memmove(tmp, d, strlen(d) + 1);
  }
  char abs[PATH_MAX];
  snprintf(out, n, "%s", realpath(tmp, abs) ? abs : tmp);
}

static int fail(cl_error *e, const char *dir, const char *what) {
  return cl_err(e, CL_EIO, "git repository at %s: %s: %s", dir, what, git_msg());
}

static int read_info(git_repository *repo, const char *dir, cl_git_info *gi, cl_error *e) {
  git_oid oid;
  int rc = git_reference_name_to_id(&oid, repo, "HEAD");
  if (rc == 0) git_oid_tostr(gi->commit, sizeof gi->commit, &oid);
  else if (rc != GIT_ENOTFOUND && rc != GIT_EUNBORNBRANCH) return fail(e, dir, "reading HEAD");

  /* The branch from HEAD's symbolic target, so an unborn branch still has its name. */
  git_reference *head = NULL;
  if (git_reference_lookup(&head, repo, "HEAD") != 0) return fail(e, dir, "looking up HEAD");
  if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
    const char *t = git_reference_symbolic_target(head);
    const char *pre = "refs/heads/";
    if (t && strncmp(t, pre, strlen(pre)) == 0) t += strlen(pre);
    snprintf(gi->branch, sizeof gi->branch, "%s", t ? t : "");
  }
  git_reference_free(head);

  if (git_repository_is_bare(repo)) {
    gi->dirty = -1;
    return CL_OK;
  }
  /* Dirty: anything `git status` would list — staged, modified, deleted, untracked files not
   * ignored. The index is not rewritten (no GIT_STATUS_OPT_UPDATE_INDEX). */
  git_status_options opts;
  git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION); /* the macro trips -Wextra */
  opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED;
  git_status_list *list = NULL;
  if (git_status_list_new(&list, repo, &opts) != 0) return fail(e, dir, "reading the status");
  gi->dirty = git_status_list_entrycount(list) > 0;
  git_status_list_free(list);
  return CL_OK;
}

int cl_store_git_info(const char *path, cl_git_info *gi, cl_error *e) {
  memset(gi, 0, sizeof *gi);
  gi->dirty = -1;
  char dir[PATH_MAX];
  start_dir(path, dir, sizeof dir);
  if (cl_libgit2_begin(e)) return CL_EINVAL;
  git_repository *repo = NULL;
  int rc = git_repository_open_ext(&repo, dir, 0, NULL);
  if (rc == GIT_ENOTFOUND) { /* not in a repository: provenance is NULL, not an error */
    git_libgit2_shutdown();
    return CL_OK;
  }
  if (rc != 0) {
    rc = fail(e, dir, "opening");
    git_libgit2_shutdown();
    return rc;
  }
  gi->in_repo = 1;
  rc = read_info(repo, dir, gi, e);
  git_repository_free(repo);
  git_libgit2_shutdown();
  if (rc) {
    memset(gi, 0, sizeof *gi);
    gi->dirty = -1;
  }
  return rc;
}
