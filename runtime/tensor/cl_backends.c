/* cl_backends: the registered backends, the GPU's first. */
#include "cl_backends.h"

#include <stdio.h>
#include <string.h>

#ifdef CLADE_HAVE_CUDA_BACKEND
#define CUDA_DESC &cl_backend_cuda_desc
#else
/* Registered all the same, so --backend cuda says what is missing rather than "unknown". */
static int absent_probe(char *why, size_t n) {
  snprintf(why, n, "this clade was built without the CUDA backend");
  return 0;
}
static int absent_offers(cl_precision p) { return p == CL_PREC_FP32 || p == CL_PREC_TF32 || p == CL_PREC_BF16 || p == CL_PREC_FP16; }
static void absent_describe(char *buf, size_t n) { snprintf(buf, n, "none"); }
static int absent_create(cl_backend **out, cl_error *e) {
  *out = NULL;
  return cl_err(e, CL_EUNSUP, "backend cuda: this clade was built without the CUDA backend");
}
static const cl_backend_desc cuda_absent = {.name = "cuda", .title = "the GPU", .probe = absent_probe,
                                            .offers = absent_offers, .describe = absent_describe,
                                            .create = absent_create, .not_built = 1};
#define CUDA_DESC &cuda_absent
#endif

/* The registry: `auto` tries them in this order. */
static const cl_backend_desc *const registry[] = {CUDA_DESC, &cl_backend_cpu_desc};
#define NBE ((int)(sizeof registry / sizeof registry[0]))

int cl_backends_count(void) { return NBE; }

const cl_backend_desc *cl_backends_at(int i) { return i >= 0 && i < NBE ? registry[i] : NULL; }

const cl_backend_desc *cl_backends_find(const char *name) {
  for (int i = 0; name && i < NBE; i++)
    if (!strcmp(registry[i]->name, name)) return registry[i];
  return NULL;
}

static const char *name_at(int i) { return registry[i]->name; }

const char *cl_backends_list(char *buf, size_t n) { return cl_join_names(buf, n, NBE, name_at); }

/* "fp32 or bf16": what d offers here */
static void offered(const cl_backend_desc *d, char *buf, size_t n) {
  size_t off = 0;
  buf[0] = 0;
  for (int p = 0; p < CL_PREC_COUNT && off < n; p++)
    if (d->offers((cl_precision)p)) {
      int w = snprintf(buf + off, n - off, "%s%s", off ? " or " : "", cl_precision_name((cl_precision)p));
      if (w < 0) break;
      off += (size_t)w;
    }
}

/* The precision d lacks, saying why and which other backends offer it (and why they are not
 * running here). */
static int lacks(const cl_backend_desc *d, cl_precision p, int was_auto, cl_error *e) {
  char has[64], why[160] = "", others[400] = "";
  offered(d, has, sizeof has);
  const char *r = d->lacks ? d->lacks(p) : NULL;
  if (r) snprintf(why, sizeof why, ": %s", r);
  size_t off = 0;
  for (int i = 0; i < NBE && off < sizeof others; i++) {
    const cl_backend_desc *o = registry[i];
    char no[160];
    if (o == d || !o->offers(p)) continue;
    int ok = o->probe(no, sizeof no);
    int w = snprintf(others + off, sizeof others - off, "; the %s backend offers %s%s%s%s", o->name,
                     cl_precision_name(p), ok ? "" : " (", ok ? "" : no, ok ? "" : ")");
    if (w < 0) break;
    off += (size_t)w;
  }
  return cl_err(e, CL_EUNSUP, "precision %s: the %s backend computes in %s%s%s%s", cl_precision_name(p), d->name,
                has, was_auto ? " (auto)" : "", why, others);
}

int cl_backends_choose(const char *want, const char *precision, const cl_backend_desc **out, cl_precision *prec,
                       char *note, size_t nn, cl_error *e) {
  char buf[160];
  if (note && nn) note[0] = 0;
  cl_precision p = CL_PREC_FP32;
  if (precision && cl_precision_parse(precision, &p))
    return cl_err(e, CL_EINVAL, "precision \"%s\": choose fp32, tf32, bf16 or fp16", precision);
  const cl_backend_desc *d = NULL;
  int was_auto = !want || !strcmp(want, "auto");
  if (was_auto) {
    char passed[160] = "";
    for (int i = 0; i < NBE && !d; i++) {
      if (registry[i]->probe(buf, sizeof buf)) d = registry[i];
      else if (!passed[0] && !registry[i]->not_built) snprintf(passed, sizeof passed, "%s", buf);
    }
    if (!d) return cl_err(e, CL_EDEVICE, "backend auto: no backend can run here (%s)", passed);
    if (note && passed[0] && nn) snprintf(note, nn, "%s: running on %s", passed, d->title);
  } else {
    d = cl_backends_find(want);
    if (!d) return cl_err(e, CL_EINVAL, "backend '%s': choose %s or auto", want, cl_backends_list(buf, sizeof buf));
    char why[160];
    if (!d->probe(why, sizeof why)) return cl_err(e, CL_EDEVICE, "backend %s: %s", d->name, why);
  }
  if (!d->offers(p)) return lacks(d, p, was_auto, e);
  *out = d;
  if (prec) *prec = p;
  return CL_OK;
}
