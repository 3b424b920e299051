/* clade's forward + backward of ClipLoss against open_clip's own gradients on the tiny model
 * (../shared/fixtures/train/grads_{quickgelu,gelu}.safetensors, see its README): every one
 * of the 62 parameters' gradients within 1e-4 of the reference, as max|diff| / max|ref| per
 * tensor (the token embedding at the rows the batch uses, and exactly 0 elsewhere), the loss
 * within 1e-5, the raw embeddings and the loss's gradients w.r.t. them; the loss alone
 * (cl_train_clip_loss) against the fixture's features. */
#include <stdint.h>

#include "cl_test.h"
#include "cl_test_tensor.h"
#include "io/cl_safetensors.h"
#include "train/cl_train.h"

/* max|a - b| / max|b| over n floats */
static double maxrel(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > num || d != d) num = d;
    if (fabs(b[i]) > den) den = fabs(b[i]);
  }
  return num / (den > 0 ? den : 1e-30);
}

static void run(const char *config, const char *grads_file, cl_backend *be, const cl_tmap *w, const float *pixels) {
  cl_error err = {0};
  cl_clip_config cfg;
  cl_tmap ref;
  CHECK_OK(cl_clip_config_load(cl_test_fix(config), &cfg, &err), err);
  CHECK_OK(cl_st_load(cl_test_fix(grads_file), &ref, &err), err);
  const cl_tensor *ids = cl_test_need(&ref, "input_ids");
  const int n = (int)ids->shape[0], E = cfg.embed_dim;
  cl_train_model *m = NULL;
  CHECK_OK(cl_train_model_create(&cfg, w, be, &m, &err), err);
  if (!m) exit(1);
  float loss = 0;
  float *img = cl_xmalloc((size_t)n * E * 4), *txt = cl_xmalloc((size_t)n * E * 4);
  cl_train_outputs outs = {img, txt};
  CHECK_OK(cl_train_forward_backward(m, pixels, ids->data, n, &loss, &outs, &err), err);
  const float ref_loss = cl_test_f32(cl_test_need(&ref, "loss"));
  CHECK_MSG(fabs(loss - ref_loss) <= 1e-5, "%s: loss %.9g, open_clip %.9g", grads_file, loss, ref_loss);
  double r = maxrel(img, cl_test_need(&ref, "image_embeds")->data, (size_t)n * E);
  CHECK_MSG(r < 1e-5, "%s: image_embeds %g", grads_file, r);
  r = maxrel(txt, cl_test_need(&ref, "text_embeds")->data, (size_t)n * E);
  CHECK_MSG(r < 1e-5, "%s: text_embeds %g", grads_file, r);

  /* the loss on open_clip's own embeddings: its value and gradients */
  float *di = cl_xmalloc((size_t)n * E * 4), *dt = cl_xmalloc((size_t)n * E * 4);
  double dls = 0;
  const float ls = cl_test_f32(cl_test_need(w, "logit_scale"));
  const double l2 = cl_train_clip_loss(cl_test_need(&ref, "image_embeds")->data, cl_test_need(&ref, "text_embeds")->data, n, E, ls,
                                       di, dt, &dls);
  CHECK_MSG(fabs(l2 - ref_loss) <= 1e-5, "clip_loss on open_clip's embeddings %.9g vs %.9g", l2, ref_loss);
  r = maxrel(di, cl_test_need(&ref, "dloss.image_embeds")->data, (size_t)n * E);
  CHECK_MSG(r < 1e-5, "%s: dloss.image_embeds %g", grads_file, r);
  r = maxrel(dt, cl_test_need(&ref, "dloss.text_embeds")->data, (size_t)n * E);
  CHECK_MSG(r < 1e-5, "%s: dloss.text_embeds %g", grads_file, r);
  CHECK_MSG(fabs(dls - cl_test_f32(cl_test_need(&ref, "grad.logit_scale"))) < 1e-5, "dlogit_scale %g", dls);

  /* every parameter's gradient */
  cl_tmap g;
  cl_tmap_init(&g);
  CHECK_OK(cl_train_export(m, 1, "grad.", &g, &err), err);
  const cl_tensor *rows = cl_test_need(&ref, "token_rows");
  const int nrows = (int)rows->shape[0];
  double worst = 0;
  const char *worst_name = "";
  int checked = 0;
  for (int i = 0; i < g.n; i++) {
    const char *name = g.v[i].name;
    const cl_tensor *mine = &g.v[i].t;
    if (!strcmp(name, "grad.token_embedding.weight")) {
      const cl_tensor *rt = cl_test_need(&ref, "grad.token_embedding.weight[token_rows]");
      const int64_t W = mine->shape[1];
      float *sel = cl_xmalloc((size_t)nrows * W * 4);
      char *used = cl_xcalloc((size_t)mine->shape[0], 1);
      for (int q = 0; q < nrows; q++) {
        const int64_t row = cl_test_i64(rows, q);
        used[row] = 1;
        memcpy(sel + (size_t)q * W, (const float *)mine->data + row * W, (size_t)W * 4);
      }
      r = maxrel(sel, rt->data, (size_t)nrows * W);
      int nonzero = 0;
      for (int64_t row = 0; row < mine->shape[0]; row++)
        for (int64_t k = 0; k < W && !used[row]; k++) nonzero += ((const float *)mine->data)[row * W + k] != 0.0f;
      CHECK_MSG(nonzero == 0, "%s: %d entries outside token_rows are not 0", name, nonzero);
      free(sel), free(used);
    } else {
      const cl_tensor *rt = cl_test_need(&ref, name);
      CHECK_MSG(cl_shape_eq(rt, mine->ndim, mine->shape), "%s: shape", name);
      r = maxrel(mine->data, rt->data, (size_t)cl_tensor_numel(mine));
    }
    checked++;
    CHECK_MSG(r < 1e-4, "%s %s: max|diff|/max|ref| = %g", grads_file, name, r);
    if (r > worst) worst = r, worst_name = name;
  }
  CHECK_EQ_INT(checked, 62);
  fprintf(stderr, "%s: loss %.9g (open_clip %.9g), %d gradients, worst %.2e (%s)\n", grads_file, loss, ref_loss,
          checked, worst, worst_name);
  cl_tmap_free(&g);
  free(img), free(txt), free(di), free(dt);
  cl_train_model_free(m);
  cl_tmap_free(&ref);
}

int main(void) {
  cl_error err = {0};
  cl_backend *be = NULL;
  cl_tmap w, px;
  if (cl_st_load(cl_test_fix("tiny.safetensors"), &w, &err) || cl_st_load(cl_test_fix("preprocess.safetensors"), &px, &err)) {
    fprintf(stderr, "skip: %s\n", err.msg);
    return CL_TEST_SKIP;
  }
  CHECK_OK(cl_backend_cpu_create(&be, &err), err);
  const cl_tensor *pix = cl_test_need(&px, "pixel_values");
  CHECK(pix->dtype == CL_F32 && pix->shape[0] == 6);
  run("tiny_config.json", "train/grads_quickgelu.safetensors", be, &w, pix->data);
  run("tiny_gelu_config.json", "train/grads_gelu.safetensors", be, &w, pix->data);

  /* a model without training kernels is refused, naming the backend */
  cl_backend nb = *be;
  nb.attention_backward = NULL;
  nb.name = "fake";
  cl_clip_config cfg;
  cl_train_model *m = NULL;
  CHECK_OK(cl_clip_config_load(cl_test_fix("tiny_config.json"), &cfg, &err), err);
  CHECK(cl_train_model_create(&cfg, &w, &nb, &m, &err) == CL_EUNSUP && strstr(err.msg, "fake") && !m);
  /* a missing key is named */
  cl_tmap partial;
  cl_tmap_init(&partial);
  for (int i = 0; i < w.n; i++)
    if (strcmp(w.v[i].name, "visual.proj")) cl_tmap_put(&partial, w.v[i].name, w.v[i].t);
  CHECK(cl_train_model_create(&cfg, &partial, be, &m, &err) == CL_ESHAPE && strstr(err.msg, "visual.proj"));
  cl_tmap_free(&partial);
  cl_backend_destroy(be);
  cl_tmap_free(&w);
  cl_tmap_free(&px);
  return cl_test_done("test_train_grads");
}
