/* BioCLIP 2 = open_clip ViT-L/14, full size, against open_clip 2.32: a hub folder
 * (open_clip_config.json + fp16 open_clip_model.safetensors) written now by
 * tests/parity/gen_vitl14_weights.py (numpy PCG64, seed 1, the fixtures' gen_vitb16 scheme)
 * that also carries a training-only second projector `visual.continual_proj`, as BioCLIP 2's
 * checkpoint does; references in vitl14_seed1_outputs.safetensors (gen_vitl14_ref.py, run
 * once with open_clip). The folder opens as clade opens any model (cl_encoder_open), the
 * unused key is named, and the embeddings are open_clip's (visual.proj, not the other one).
 * CLADE_TEST_BACKEND picks the backend (default cpu). Skips when numpy is missing. */
#include <stdint.h>
#include <sys/time.h>
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_safetensors.h"
#include "model/cl_encoder.h"

#define TOL 1e-4

static double now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return tv.tv_sec + tv.tv_usec * 1e-6;
}

static const cl_tensor *need(const cl_tmap *m, const char *key, cl_dtype dt) {
  const cl_tensor *t = cl_tmap_get(m, key);
  if (!t || t->dtype != dt) {
    fprintf(stderr, "fixture lacks %s (or it has an unexpected dtype)\n", key);
    exit(1);
  }
  return t;
}

int main(int argc, char **argv) {
  (void)argc;
  if (cl_backend_cpu_tune_env()) execv("/proc/self/exe", argv); /* see test_clip_vitb16.c */
  char gen[8192], dir[1024], tools[2048], buf[2048];
  if (access("/usr/bin/python3", X_OK) != 0 ||
      system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    fprintf(stderr, "SKIP: /usr/bin/python3 with numpy is needed to generate the ViT-L/14 weights "
                    "(apt-get install python3-numpy)\n");
    return CL_TEST_SKIP;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/clade_vitl14_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "cannot create a directory under %s\n", tmp && *tmp ? tmp : "/tmp");
    return 1;
  }
  snprintf(gen, sizeof gen, "/usr/bin/python3 '%s/parity/gen_vitl14_weights.py' '%s' '%s' 1", CLADE_TEST_SRC,
           cl_test_fixture(tools, sizeof tools, "tools"), dir);
  double t0 = now();
  if (system(gen) != 0) {
    fprintf(stderr, "weight generation failed: %s\n", gen);
    return 1;
  }
  const double t_gen = now() - t0;

  cl_error err = {0};
  cl_tmap pp, tt, ref;
  snprintf(buf, sizeof buf, "%s/parity/vitl14_seed1_outputs.safetensors", CLADE_TEST_SRC);
  if (cl_st_load(cl_test_fixture(tools, sizeof tools, "preprocess.safetensors"), &pp, &err) ||
      cl_st_load(cl_test_fixture(tools, sizeof tools, "text_tokens.safetensors"), &tt, &err) ||
      cl_st_load(buf, &ref, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  const cl_tensor *ri = need(&ref, "image_embeddings", CL_F32), *rt = need(&ref, "text_embeddings", CL_F32);
  const cl_tensor *rc = need(&ref, "image_embeddings_continual_proj", CL_F32);
  const cl_tensor *pv = need(&pp, "pixel_values", CL_F32), *ids = need(&tt, "input_ids", CL_I32);
  const int ni = (int)ri->shape[0], nt = (int)rt->shape[0], E = 768;
  CHECK(ri->shape[1] == E && rt->shape[1] == E && pv->shape[0] >= ni && ids->shape[0] == nt);

  const char *backend = getenv("CLADE_TEST_BACKEND");
  cl_encoder_spec spec = {.path = dir, .backend = backend && *backend ? backend : "cpu", .quiet = 1};
  cl_encoder *enc = NULL;
  t0 = now();
  CHECK_OK(cl_encoder_open(&spec, &enc, &err), err);
  const double t_load = now() - t0;
  snprintf(buf, sizeof buf, "%s/open_clip_model.safetensors", dir);
  unlink(buf);
  snprintf(buf, sizeof buf, "%s/open_clip_config.json", dir);
  unlink(buf);
  rmdir(dir);
  if (!enc) return cl_test_done("test_clip_vitl14");

  /* the folder's config is ViT-L/14's; the training-only projector is named, not used */
  const cl_clip_config *c = &enc->cfg;
  CHECK(c->embed_dim == E && c->vision.width == 1024 && c->vision.layers == 24 && c->vision.patch_size == 14 &&
        c->vision.heads == 16 && c->text.width == 768 && c->text.heads == 12 && !c->quick_gelu);
  CHECK_STR(enc->unused_keys, "visual.continual_proj");
  CHECK_MSG(fabs(enc->logit_scale - *(const float *)need(&ref, "logit_scale", CL_F32)->data) < 1e-6,
            "logit_scale %g", enc->logit_scale);

  float *img = cl_xmalloc((size_t)ni * E * 4), *txt = cl_xmalloc((size_t)nt * E * 4);
  t0 = now();
  CHECK_OK(cl_clip_encode_images(enc->clip, pv->data, ni, img, &err), err);
  const double t_img = now() - t0;
  t0 = now();
  CHECK_OK(cl_clip_encode_texts(enc->clip, ids->data, nt, txt, &err), err);
  const double t_txt = now() - t0;
  const double ei = cl_test_max_relerr(img, ri->data, ni, E), et = cl_test_max_relerr(txt, rt->data, nt, E);
  const double xc = cl_test_max_relerr(img, rc->data, ni, E);
  printf("%s: image rel err %.3g, text %.3g (vs visual.continual_proj's projection: %.3g)\n", enc->backend_name,
         ei, et, xc);
  CHECK_MSG(ei < TOL, "image embeddings max rel err %g", ei);
  CHECK_MSG(et < TOL, "text embeddings max rel err %g", et);
  CHECK_MSG(xc > 0.5, "the image embeddings are close to visual.continual_proj's (%g)", xc);
  printf("times: generate %.1f s, open %.2f s, %d images %.2f s, %d texts %.2f s\n", t_gen, t_load, ni, t_img, nt,
         t_txt);
  free(img), free(txt);
  cl_encoder_close(enc);
  cl_tmap_free(&pp), cl_tmap_free(&tt), cl_tmap_free(&ref);
  return cl_test_done("test_clip_vitl14");
}
