/* cl_backends: the backend registry (like SQLite's VFS list). Each backend registers one
 * descriptor: its name, a probe (can it run here, and why not), the precisions it offers
 * here, the device it computes on and its constructor. `auto` is the first registered
 * backend whose probe succeeds; callers name backends only through this list.
 * Owns: the list (cl_backends.c; a new backend is one descriptor and one line there). */
#ifndef CL_BACKENDS_H
#define CL_BACKENDS_H
#include <stddef.h>

#include "cl_ops.h"

typedef struct cl_backend_desc {
  const char *name;  /* "cpu", "cuda": --backend NAME, results' backend column */
  const char *title; /* "the CPU": in "no GPU found: running on the CPU" */
  /* 1 when it can run here; else 0 with why ("no GPU found") in buf */
  int (*probe)(char *why, size_t n);
  /* 1 when it computes in p here (after a successful probe) */
  int (*offers)(cl_precision p);
  /* Why it lacks p here, when it says more than that it lacks it ("this CPU lacks
   * AVX512_BF16"); NULL: nothing to add. May be NULL. */
  const char *(*lacks)(cl_precision p);
  /* The device as results record it (the CPU model and kernels, or the GPU's name). */
  void (*describe)(char *buf, size_t n);
  int (*create)(cl_backend **out, cl_error *e);
  /* 1: registered only to say it was not built (--backend cuda then says so); auto passes
   * over it without a note */
  int not_built;
} cl_backend_desc;

/* The entries (the CPU backend is the reference other backends are tested against). */
extern const cl_backend_desc cl_backend_cpu_desc;
#ifdef CLADE_HAVE_CUDA_BACKEND
extern const cl_backend_desc cl_backend_cuda_desc;
#endif

int cl_backends_count(void);
const cl_backend_desc *cl_backends_at(int i);
const cl_backend_desc *cl_backends_find(const char *name); /* NULL when none has that name */
/* "cuda, cpu" into buf. */
const char *cl_backends_list(char *buf, size_t n);

/* The backend for `want` (a name, or NULL / "auto": the first whose probe succeeds) and
 * `precision` (NULL: fp32), checked before anything loads: a name not registered, a backend
 * that cannot run here or lacks the precision fails saying why. note (may be NULL) gets what
 * auto passed over ("no GPU found: running on the CPU"), or "" when it passed over nothing
 * or the backend was named. */
int cl_backends_choose(const char *want, const char *precision, const cl_backend_desc **out, cl_precision *prec,
                       char *note, size_t nn, cl_error *e);

#endif
