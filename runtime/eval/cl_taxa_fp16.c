/* cl_taxa_fp16: the float16 variant of a label set's embeddings (clade predict --label-dtype
 * fp16), made once from the float32 txt_emb_species.npy and remade when that file changes.
 * Where it lives: embeddings/txt_emb_species.fp16.npy beside the float32 file, or, when the
 * model folder is not writable (a shared read-only copy), $XDG_CACHE_HOME/clade/labels/<key>.npy
 * ($HOME/.cache without XDG_CACHE_HOME; key: the SHA-1 of the float32 file's real path). Each
 * has a sidecar <variant>.source recording the float32 file's size, mtime, inode and device
 * and the variant's own size and mtime: a variant is used only when both still match. Both
 * files are written to a temporary name and renamed into place, the data synced first. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_taxa.h"

/* NumPy's float32 -> float16 (npy_floatbits_to_halfbits, what astype(np.float16) computes):
 * round to nearest even, overflow to inf; a NaN keeps the top 10 bits of its significand
 * (0x7c01 when those are all zero), where cl_float_to_half gives one quiet NaN. */
static uint16_t half_as_numpy(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu)) {
    const uint32_t h = 0x7c00u + ((x & 0x7fffffu) >> 13);
    return (uint16_t)(((x >> 16) & 0x8000u) | (h == 0x7c00u ? 0x7c01u : h));
  }
  return cl_float_to_half(f);
}

/* what the sidecar says when the variant at dst (stat vs) is fresh for the source (stat ss) */
static void record(const struct stat *ss, const struct stat *vs, char *buf, size_t n) {
  snprintf(buf, n,
           "clade float16 label set 1\nsource size %lld mtime %lld.%09ld inode %llu device %llu\n"
           "variant size %lld mtime %lld.%09ld\n",
           (long long)ss->st_size, (long long)ss->st_mtim.tv_sec, (long)ss->st_mtim.tv_nsec,
           (unsigned long long)ss->st_ino, (unsigned long long)ss->st_dev, (long long)vs->st_size,
           (long long)vs->st_mtim.tv_sec, (long)vs->st_mtim.tv_nsec);
}

static int fresh(const char *dst, const struct stat *ss) {
  struct stat vs;
  if (!*dst || stat(dst, &vs) != 0) return 0;
  char want[512], side[4300], *got;
  size_t len;
  record(ss, &vs, want, sizeof want);
  snprintf(side, sizeof side, "%s.source", dst);
  if (cl_read_file(side, &got, &len, NULL) != CL_OK) return 0;
  const int ok = len == strlen(want) && !memcmp(got, want, len);
  free(got);
  return ok;
}

static int write_all(int fd, const void *p, size_t n) {
  for (const char *c = p; n;) {
    const ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    c += k, n -= (size_t)k;
  }
  return 0;
}

/* Write the variant of src (a float32 [D, N] array) at dst through dst.tmp<pid>. *denied: the
 * folder refused the file (not writable, read-only file system). */
static int make(const cl_npy *src, const struct stat *ss, const char *dst, int *denied, cl_error *e) {
  *denied = 0;
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp%d", dst, (int)getpid());
  const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    *denied = errno == EACCES || errno == EROFS || errno == EPERM;
    return cl_err(e, CL_EIO, "%s: %s", tmp, strerror(errno));
  }
  cl_tensor h16 = src->t;
  h16.dtype = CL_F16;
  unsigned char head[640];
  const size_t hl = cl_npy_header(&h16, head, sizeof head);
  const size_t numel = (size_t)cl_tensor_numel(&src->t);
  enum { CHUNK = 1 << 20 };
  uint16_t *buf = cl_xmalloc(CHUNK * sizeof *buf);
  const float *x = src->t.data;
  int bad = !hl || write_all(fd, head, hl) != 0;
  for (size_t i = 0; i < numel && !bad; i += CHUNK) {
    const size_t m = numel - i < CHUNK ? numel - i : CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < m; j++) buf[j] = half_as_numpy(x[i + j]);
    bad = write_all(fd, buf, m * sizeof *buf) != 0;
    /* the float32 pages read so far leave this process's resident set (the page cache keeps them) */
    const uintptr_t page = 4096, lo = (uintptr_t)src->map_addr, hi = ((uintptr_t)(x + i + m)) & ~(page - 1);
    if (hi > lo) madvise(src->map_addr, hi - lo, MADV_DONTNEED);
  }
  const int err = bad ? errno : 0;
  free(buf);
  if (!bad && fsync(fd) != 0) bad = 1;
  if (close(fd) != 0) bad = 1;
  if (bad || rename(tmp, dst) != 0) {
    const int rc = cl_err(e, CL_EIO, "%s: writing the float16 label set failed: %s", tmp, strerror(err ? err : errno));
    unlink(tmp);
    return rc;
  }
  struct stat vs;
  char rec[512], side[4300], side_tmp[4320];
  if (stat(dst, &vs) != 0) return cl_err(e, CL_EIO, "%s: %s", dst, strerror(errno));
  record(ss, &vs, rec, sizeof rec);
  snprintf(side, sizeof side, "%s.source", dst);
  snprintf(side_tmp, sizeof side_tmp, "%s.tmp%d", side, (int)getpid());
  if (cl_write_file(side_tmp, rec, strlen(rec), e) != CL_OK || rename(side_tmp, side) != 0) {
    unlink(side_tmp);
    return cl_err(e, CL_EIO, "%s: writing the float16 label set's record failed", side);
  }
  return CL_OK;
}

/* $XDG_CACHE_HOME/clade/labels (or $HOME/.cache/...) into dir; 0 when neither is set */
static int cache_dir(char *dir, size_t n) {
  const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (x && x[0] == '/') return snprintf(dir, n, "%s/clade/labels", x) < (int)n;
  if (home && home[0] == '/') return snprintf(dir, n, "%s/.cache/clade/labels", home) < (int)n;
  return 0;
}

int cl_taxa_fp16_path(const char *model_dir, char *out, size_t n, cl_error *e) {
  char src[4200], local[4300], cache[4400] = "", dir[4200], real[PATH_MAX], key[41];
  snprintf(src, sizeof src, "%s/embeddings/txt_emb_species.npy", model_dir);
  snprintf(out, n, "%s", src);
  cl_npy a;
  CL_TRY(cl_npy_open(src, &a, e));
  struct stat ss;
  int rc = CL_OK;
  /* already float16 (or not float32 [D, N]: cl_taxa_open says what is wrong): the file itself */
  if (a.t.dtype != CL_F32 || a.t.ndim != 2 || stat(src, &ss) != 0) goto done;
  snprintf(local, sizeof local, "%s/embeddings/txt_emb_species.fp16.npy", model_dir);
  const int have_cache = cache_dir(dir, sizeof dir) && realpath(src, real) &&
                         cl_hash_buf(real, strlen(real), key, NULL) == CL_OK;
  if (have_cache) snprintf(cache, sizeof cache, "%s/%s.npy", dir, key);
  if (fresh(local, &ss) || fresh(cache, &ss)) {
    snprintf(out, n, "%s", fresh(local, &ss) ? local : cache);
    goto done;
  }
  fprintf(stderr, "clade: making the float16 label set %s from %s (once)\n", local, src);
  int denied;
  cl_error e1 = {0}, e2 = {0};
  if ((rc = make(&a, &ss, local, &denied, &e1)) == CL_OK) {
    snprintf(out, n, "%s", local);
  } else if (!denied) {
    *e = e1;
  } else if (!have_cache) {
    rc = cl_err(e, CL_EIO, "%s/embeddings is not writable and there is no cache folder ($XDG_CACHE_HOME or $HOME) "
                "for the float16 label set (%s)", model_dir, e1.msg);
  } else {
    fprintf(stderr, "clade: %s/embeddings is not writable: the float16 label set goes to %s\n", model_dir, cache);
    if ((rc = cl_mkdirs(dir, &e2)) == CL_OK && (rc = make(&a, &ss, cache, &denied, &e2)) == CL_OK)
      snprintf(out, n, "%s", cache);
    else
      cl_err(e, rc, "the float16 label set: neither the model folder (%s) nor the cache (%s) could take it", e1.msg,
             e2.msg);
  }
done:
  cl_npy_close(&a);
  return rc;
}
