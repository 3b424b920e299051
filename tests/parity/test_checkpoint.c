/* The three forms of the tiny model — tiny.safetensors, the hub's open_clip_pytorch_model.bin
 * (torch.save of the state dict) and tiny_epoch_3.pt (an open_clip training checkpoint with
 * `module.` keys and an optimizer) — load through cl_ckpt_load into the same tensors: the same
 * key set, dtype and shape, and bit-identical data, the 0-d logit_scale included. */
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_ckpt.h"
#include "io/cl_safetensors.h"

static void compare(const cl_tmap *ref, const cl_tmap *got, const char *what) {
  CHECK_MSG(got->n == ref->n, "%s: %d tensors, safetensors has %d", what, got->n, ref->n);
  int missing = 0, differ = 0;
  for (int i = 0; i < ref->n; i++) {
    const cl_tensor *r = &ref->v[i].t, *g = cl_tmap_get(got, ref->v[i].name);
    if (!g) {
      if (missing++ < 5) CHECK_MSG(0, "%s: missing '%s'", what, ref->v[i].name);
      continue;
    }
    char a[128], b[128];
    if (g->dtype != r->dtype || !cl_shape_eq(g, r->ndim, r->shape)) {
      CHECK_MSG(0, "%s: '%s' is %s %s, safetensors has %s %s", what, ref->v[i].name, cl_dtype_name(g->dtype),
                cl_shape_str(g, a, sizeof a), cl_dtype_name(r->dtype), cl_shape_str(r, b, sizeof b));
      continue;
    }
    if (memcmp(g->data, r->data, cl_tensor_nbytes(r)) != 0 && differ++ < 5)
      CHECK_MSG(0, "%s: '%s' data differs", what, ref->v[i].name);
  }
  for (int i = 0; i < got->n; i++)
    CHECK_MSG(cl_tmap_get(ref, got->v[i].name) != NULL, "%s: extra key '%s'", what, got->v[i].name);
  CHECK_MSG(differ == 0 && missing == 0, "%s: %d tensors missing, %d differ", what, missing, differ);
}

int main(void) {
  char st[1024], bin[1024], pt[1024];
  cl_test_fixture(st, sizeof st, "tiny.safetensors");
  cl_test_fixture(bin, sizeof bin, "tiny-hub/open_clip_pytorch_model.bin");
  cl_test_fixture(pt, sizeof pt, "tiny_epoch_3.pt");
  if (access(st, R_OK) || access(bin, R_OK) || access(pt, R_OK)) {
    fprintf(stderr, "skip: fixtures not found under %s\n", cl_test_fixtures());
    return CL_TEST_SKIP;
  }
  cl_error err = {0};
  cl_tmap ref, a, b, c;
  CHECK_OK(cl_st_load(st, &ref, &err), err);
  CHECK(ref.n > 50);

  /* the dispatcher on a safetensors file gives the safetensors reader's result */
  CHECK_OK(cl_ckpt_load(st, &a, &err), err);
  compare(&ref, &a, "tiny.safetensors via cl_ckpt_load");

  CHECK_OK(cl_ckpt_load(bin, &b, &err), err);
  compare(&ref, &b, "open_clip_pytorch_model.bin");

  CHECK_OK(cl_ckpt_load(pt, &c, &err), err);
  compare(&ref, &c, "tiny_epoch_3.pt");
  CHECK(cl_tmap_get(&c, "module.logit_scale") == NULL);

  /* spot checks that do not depend on the reference file */
  const cl_tmap *all[] = {&b, &c};
  for (int k = 0; k < 2; k++) {
    const cl_tensor *ls = cl_tmap_get(all[k], "logit_scale");
    CHECK_MSG(ls && ls->ndim == 0 && ls->dtype == CL_F32, "logit_scale must be a 0-d F32");
    if (ls) CHECK_MSG(fabsf(*(const float *)ls->data - logf(1 / 0.07f)) < 2.0f, "logit_scale = %g",
                      *(const float *)ls->data);
    const cl_tensor *conv = cl_tmap_get(all[k], "visual.conv1.weight");
    CHECK(conv && cl_shape_eq(conv, 4, (int64_t[]){64, 3, 16, 16}));
    const cl_tensor *pos = cl_tmap_get(all[k], "positional_embedding");
    CHECK(pos && cl_shape_eq(pos, 2, (int64_t[]){77, 64}));
  }
  cl_tmap_free(&ref);
  cl_tmap_free(&a);
  cl_tmap_free(&b);
  cl_tmap_free(&c);
  return cl_test_done("test_checkpoint");
}
