/* fuzz_util: what the libFuzzer harnesses share. Parsers that take a path get the input
 * through an in-memory file (memfd), so no harness touches the disk. Built with _GNU_SOURCE
 * (tests/fuzz/CMakeLists.txt) for memfd_create. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The path of in-memory file number slot (0 or 1: a harness reading two files) holding
 * data[0..n) (one per process and slot, rewritten each call). */
static inline const char *fuzz_file_slot(int slot, const uint8_t *data, size_t n) {
  static int fd[2] = {-1, -1};
  static char path[2][64];
  if (slot < 0 || slot > 1) abort();
  if (fd[slot] < 0) {
    fd[slot] = memfd_create("clade-fuzz", 0);
    if (fd[slot] < 0) abort();
    snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
  }
  if (ftruncate(fd[slot], 0) != 0 || (n && pwrite(fd[slot], data, n, 0) != (ssize_t)n)) abort();
  return path[slot];
}

/* The path of an in-memory file holding data[0..n) (one per process, rewritten each call). */
static inline const char *fuzz_file(const uint8_t *data, size_t n) { return fuzz_file_slot(0, data, n); }

/* A NUL-terminated copy of the input, for parsers of text. */
static inline char *fuzz_cstr(const uint8_t *data, size_t n) {
  char *s = malloc(n + 1);
  if (!s) abort();
  for (size_t i = 0; i < n; i++) s[i] = (char)data[i];
  s[n] = 0;
  return s;
}

#endif
