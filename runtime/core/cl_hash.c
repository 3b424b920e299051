/* cl_hash: content hashes, git's blob SHA-1 through libgit2, so a hash matches
 * `git hash-object`: checkpoints, images, experiment files and cache keys are named by them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_core.h"

static const char *git_msg(void) {
  const git_error *ge = git_error_last();
  return ge && ge->message ? ge->message : "unknown libgit2 error";
}

/* libgit2 refcounts init/shutdown, but a first init (and a last shutdown) costs ~15 ms: per
 * call that would dominate hashing thousands of images. So the store holds one reference for
 * the process (released at exit) and each use takes a cheap extra one. */
static int git_init_rc;
static void git_at_exit(void) { git_libgit2_shutdown(); }
static void git_init_once(void) {
  git_init_rc = git_libgit2_init();
  if (git_init_rc >= 0) atexit(git_at_exit);
}

int cl_libgit2_begin(cl_error *e) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, git_init_once);
  if (git_init_rc < 0 || git_libgit2_init() < 0)
    return cl_err(e, CL_EINVAL, "initialising libgit2: %s", git_msg());
  return CL_OK;
}

int cl_hash_buf(const void *buf, size_t n, char out[41], cl_error *e) {
  git_oid oid;
  if (cl_libgit2_begin(e)) return CL_EINVAL;
  int rc = git_odb_hash(&oid, n ? buf : "", n, GIT_OBJECT_BLOB);
  if (rc == 0) git_oid_tostr(out, 41, &oid);
  else cl_err(e, CL_EINVAL, "hashing %zu bytes: %s", n, git_msg());
  git_libgit2_shutdown();
  return rc == 0 ? CL_OK : CL_EINVAL;
}

int cl_map_file(const char *path, size_t min_len, const char *what, void **addr, size_t *len, cl_error *e) {
  *addr = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return cl_err(e, CL_EIO, "%s: not a regular file", path);
  }
  size_t n = (size_t)sb.st_size;
  if (n < min_len) {
    close(fd);
    return cl_err(e, CL_EFORMAT, "%s: truncated %s file (%zu bytes, need at least %zu)", path, what, n, min_len);
  }
  if (n == 0) { /* mmap of length 0 fails */
    close(fd);
    return CL_OK;
  }
  void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return cl_err(e, CL_EIO, "%s: mmap: %s", path, strerror(errno));
  *addr = p;
  *len = n;
  return CL_OK;
}

int cl_hash_file(const char *path, char out[41], cl_error *e) {
  void *p;
  size_t n;
  CL_TRY(cl_map_file(path, 0, "", &p, &n, e));
  if (n == 0) return cl_hash_buf("", 0, out, e);
  madvise(p, n, MADV_SEQUENTIAL);
  int rc = cl_hash_buf(p, n, out, e);
  munmap(p, n);
  if (rc) cl_err_wrap(e, "%s", path);
  return rc;
}

