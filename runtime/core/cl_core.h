/* cl_core: errors with context, small file helpers, resource lookup, content hashes.
 * Owns: the cl_error type and the status codes every fallible function returns. */
#ifndef CL_CORE_H
#define CL_CORE_H
#include <stddef.h>
#include <stdint.h>

enum {
  CL_OK = 0,
  CL_EIO,       /* file missing, unreadable, short read */
  CL_EFORMAT,   /* malformed file contents */
  CL_EINVAL,    /* bad argument or config value */
  CL_ENOMEM,
  CL_ESHAPE,    /* tensor shape or key mismatch */
  CL_EUNSUP,    /* valid but unsupported input */
  CL_ELUA,
  CL_EDB,
  CL_EDEVICE
};

/* An error says what failed, where and why, in one line. */
typedef struct cl_error {
  int code;
  char msg[1024];
} cl_error;

/* Set e (if non-NULL) and return code, so callers write `return cl_err(e, CL_EIO, ...)`. */
int cl_err(cl_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with more context ("while loading X: ..."). */
int cl_err_wrap(cl_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cl_strcode(int code);
/* Return a fallible call's status when it is not CL_OK. */
#define CL_TRY(x)            \
  do {                       \
    int _cl_rc = (x);        \
    if (_cl_rc) return _cl_rc; \
  } while (0)

/* Read a whole file into a malloc'd buffer (NUL-terminated; *len excludes the NUL). */
int cl_read_file(const char *path, char **out, size_t *len, cl_error *e);
int cl_write_file(const char *path, const void *data, size_t len, cl_error *e);
/* mkdir -p: path and every missing parent (mode 0777 less the umask); an existing directory is
 * fine, anything else in the way is an error naming it. */
int cl_mkdirs(const char *path, cl_error *e);
/* Map a regular file read-only: *addr (NULL for an empty file) and *len; unmap with
 * munmap(*addr, *len). A file shorter than min_len is refused as a truncated `what` file. */
int cl_map_file(const char *path, size_t min_len, const char *what, void **addr, size_t *len, cl_error *e);

/* Directory holding clade's resources (lua/, vocab, templates): $CLADE_HOME, then
 * <exe>/../share/clade, then the source tree the binary was built from. */
const char *cl_resource_dir(void);
/* Join the resource dir and a relative path into buf; returns buf. */
char *cl_resource_path(char *buf, size_t n, const char *rel);

/* Checked size arithmetic for every size that comes from input (a file, an experiment):
 * *out = a * b and 0 when it fits, -1 on overflow (*out then undefined). */
static inline int cl_mul_size(size_t a, size_t b, size_t *out) {
  return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
/* Bytes of a dense array of shape[0..ndim) elements of elt bytes each: 0 and *out when
 * every dimension is >= 0 and the byte count, zero dimensions left out, fits in int64 (so no
 * element count, stride or offset computed from the shape can wrap); -1 otherwise. */
int cl_shape_bytes(int ndim, const int64_t *shape, size_t elt, size_t *out);

void *cl_xmalloc(size_t n);
void *cl_xcalloc(size_t n, size_t sz);
char *cl_strdup(const char *s);
/* printf into a new malloc'd string (never NULL: "" when formatting fails). */
char *cl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ---- content hashes: git blob SHA-1 ("blob <n>\0" + bytes), 40 hex digits + NUL ---- */
int cl_hash_buf(const void *buf, size_t n, char out[41], cl_error *e);
/* mmaps the file; an empty file hashes like an empty buffer. */
int cl_hash_file(const char *path, char out[41], cl_error *e);
/* Takes a reference on libgit2 (initialised once per process); release it with
 * git_libgit2_shutdown(). */
int cl_libgit2_begin(cl_error *e);

/* "a, b, c": the names name(0) .. name(count-1) joined into buf (registries' lists in errors). */
const char *cl_join_names(char *buf, size_t n, int count, const char *(*name)(int i));
/* The CPU's "model name" from /proc/cpuinfo into buf ("unknown CPU" when unreadable). */
const char *cl_cpu_model_name(char *buf, size_t n);

#endif
