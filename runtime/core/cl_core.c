/* cl_core: errors, files, resources. */
#define _GNU_SOURCE
#include "cl_core.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cl_err(cl_error *e, int code, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
  }
  return code;
}

int cl_err_wrap(cl_error *e, const char *fmt, ...) {
  if (!e) return CL_EINVAL;
  char pre[512], old[sizeof e->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, e->msg, sizeof old);
  /* the combined message is cut to fit; the prefix (where) matters most */
  int k = snprintf(e->msg, sizeof e->msg, "%.500s: ", pre);
  snprintf(e->msg + k, sizeof e->msg - (size_t)k, "%.*s", (int)(sizeof e->msg) - k - 1, old);
  return e->code;
}

const char *cl_strcode(int code) {
  switch (code) {
  case CL_OK: return "ok";
  case CL_EIO: return "i/o error";
  case CL_EFORMAT: return "bad format";
  case CL_EINVAL: return "invalid argument";
  case CL_ENOMEM: return "out of memory";
  case CL_ESHAPE: return "shape mismatch";
  case CL_EUNSUP: return "unsupported";
  case CL_ELUA: return "lua error";
  case CL_EDB: return "database error";
  case CL_EDEVICE: return "device error";
  }
  return "unknown error";
}

int cl_shape_bytes(int ndim, const int64_t *shape, size_t elt, size_t *out) {
  /* nz: the product without zero dimensions, so that no partial product over any subset
   * of the dimensions (strides, row sizes) can wrap either, even when the count is 0 */
  size_t n = elt, nz = elt;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return -1;
    n *= (size_t)shape[i]; /* <= nz, which is checked */
    if (shape[i] && cl_mul_size(nz, (size_t)shape[i], &nz) != 0) return -1;
  }
  if (nz > (size_t)INT64_MAX) return -1;
  *out = n;
  return 0;
}

void *cl_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) { fprintf(stderr, "clade: out of memory (%zu bytes)\n", n); abort(); }
  return p;
}

void *cl_xcalloc(size_t n, size_t sz) {
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p) { fprintf(stderr, "clade: out of memory (%zu x %zu bytes)\n", n, sz); abort(); }
  return p;
}

char *cl_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cl_xmalloc(n);
  memcpy(d, s, n);
  return d;
}

char *cl_asprintf(const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s ? s : cl_strdup("");
}

int cl_read_file(const char *path, char **out, size_t *len, cl_error *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return cl_err(e, CL_EIO, "%s: cannot seek", path); }
  long n = ftell(f);
  if (n < 0) { fclose(f); return cl_err(e, CL_EIO, "%s: not a regular file", path); }
  rewind(f);
  char *buf = cl_xmalloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    fclose(f);
    return cl_err(e, CL_EIO, "%s: short read", path);
  }
  fclose(f);
  buf[n] = 0;
  *out = buf;
  if (len) *len = (size_t)n;
  return CL_OK;
}

int cl_mkdirs(const char *path, cl_error *e) {
  const size_t n = strlen(path);
  if (n == 0) return cl_err(e, CL_EINVAL, "an empty directory path");
  char *buf = cl_strdup(path);
  int rc = CL_OK;
  for (size_t i = 1; i <= n && !rc; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    const char c = buf[i];
    buf[i] = 0;
    struct stat st;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      rc = cl_err(e, CL_EIO, "cannot create directory %s: %s", buf, strerror(errno));
    else if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
      rc = cl_err(e, CL_EIO, "%s exists and is not a directory", buf);
    buf[i] = c;
  }
  free(buf);
  return rc;
}

int cl_write_file(const char *path, const void *data, size_t len, cl_error *e) {
  FILE *f = fopen(path, "wb");
  if (!f) return cl_err(e, CL_EIO, "%s: %s", path, strerror(errno));
  if (fwrite(data, 1, len, f) != len || fclose(f) != 0)
    return cl_err(e, CL_EIO, "%s: write failed: %s", path, strerror(errno));
  return CL_OK;
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cl_resource_dir(void) {
  static char dir[PATH_MAX]; /* computed once; read-only afterwards */
  if (dir[0]) return dir;
  const char *env = getenv("CLADE_HOME");
  if (env && *env && is_dir(env)) {
    snprintf(dir, sizeof dir, "%s", env);
    return dir;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    char cand[PATH_MAX + 32];
    snprintf(cand, sizeof cand, "%s/../share/clade", exe);
    if (is_dir(cand) && realpath(cand, dir)) return dir;
  }
  snprintf(dir, sizeof dir, "%s", CLADE_SOURCE_DIR);
  return dir;
}

char *cl_resource_path(char *buf, size_t n, const char *rel) {
  snprintf(buf, n, "%s/%s", cl_resource_dir(), rel);
  return buf;
}

const char *cl_cpu_model_name(char *buf, size_t n) {
  snprintf(buf, n, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return buf;
  char line[512];
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10)) {
      char *c = strchr(line, ':');
      if (c) {
        c++;
        while (*c == ' ') c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(buf, n, "%s", c);
      }
      break;
    }
  fclose(f);
  return buf;
}

const char *cl_join_names(char *buf, size_t n, int count, const char *(*name)(int i)) {
  size_t off = 0;
  if (n) buf[0] = 0;
  for (int i = 0; i < count && off < n; i++) {
    int w = snprintf(buf + off, n - off, "%s%s", i ? ", " : "", name(i));
    if (w < 0) break;
    off += (size_t)w;
  }
  return buf;
}
