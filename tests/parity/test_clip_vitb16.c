/* Full-size ViT-B/16 against open_clip: weights generated now by the fixtures' numpy script
 * (seed 1, F16), images from preprocess.safetensors, texts from text_tokens.safetensors;
 * references in vitb16_seed1_outputs.safetensors for GELU (vitb16_config.json) and
 * QuickGELU (vitb16_quickgelu_config.json). Skips when numpy is missing. */
#include <stdint.h>
#include <sys/time.h>
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_safetensors.h"
#include "model/cl_clip.h"

#define TOL 1e-4

static double now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return tv.tv_sec + tv.tv_usec * 1e-6;
}

static const cl_tensor *need(const cl_tmap *m, const char *key) {
  const cl_tensor *t = cl_tmap_get(m, key);
  if (!t || t->dtype != (strstr(key, "ids") ? CL_I32 : CL_F32)) {
    fprintf(stderr, "fixture lacks %s (or it has an unexpected dtype)\n", key);
    exit(1);
  }
  return t;
}

int main(int argc, char **argv) {
  (void)argc;
  /* settings OpenBLAS and OpenMP read at load time (see cl_ops.h): 3-4x faster GEMMs on
   * CPUs newer than the system OpenBLAS, no spinning workers under `ctest -j` */
  if (cl_backend_cpu_tune_env()) execv("/proc/self/exe", argv);
  char gen[8192], path[2048], buf[2048], dir[1024];
  if (access("/usr/bin/python3", X_OK) != 0 ||
      system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    fprintf(stderr, "SKIP: /usr/bin/python3 with numpy is needed to generate the ViT-B/16 weights "
                    "(apt-get install python3-numpy)\n");
    return CL_TEST_SKIP;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/clade_vitb16_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "cannot create a directory under %s\n", tmp && *tmp ? tmp : "/tmp");
    return 1;
  }
  snprintf(path, sizeof path, "%s/vitb16_seed1.safetensors", dir);
  snprintf(gen, sizeof gen, "/usr/bin/python3 '%s' '%s' 1",
           cl_test_fixture(buf, sizeof buf, "tools/gen_vitb16.py"), path);
  double t0 = now();
  if (system(gen) != 0) {
    fprintf(stderr, "weight generation failed: %s\n", gen);
    return 1;
  }
  double t_gen = now() - t0;

  cl_error err = {0};
  cl_tmap w, pp, tt, ref;
  if (cl_st_load(path, &w, &err) ||
      cl_st_load(cl_test_fixture(buf, sizeof buf, "preprocess.safetensors"), &pp, &err) ||
      cl_st_load(cl_test_fixture(buf, sizeof buf, "text_tokens.safetensors"), &tt, &err) ||
      cl_st_load(cl_test_fixture(buf, sizeof buf, "vitb16_seed1_outputs.safetensors"), &ref, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  unlink(path); /* the mapping stays valid */
  rmdir(dir);
  const cl_tensor *pv = need(&pp, "pixel_values"), *ids = need(&tt, "input_ids");
  const int ni = (int)pv->shape[0], nt = (int)ids->shape[0], E = 512;
  CHECK(ids->shape[1] == 77);
  float *img = cl_xmalloc((size_t)ni * E * 4), *txt = cl_xmalloc((size_t)nt * E * 4);
  cl_backend *be = NULL;
  CHECK_OK(cl_backend_cpu_create(&be, &err), err);

  const char *cfgs[2] = {"vitb16_config.json", "vitb16_quickgelu_config.json"};
  const char *ikeys[2] = {"image_embeddings", "image_embeddings_quick"};
  const char *tkeys[2] = {"text_embeddings", "text_embeddings_quick"};
  double t_load = 0, t_img = 0, t_txt = 0;
  for (int v = 0; v < 2 && be; v++) {
    cl_clip_config cfg;
    cl_clip *m = NULL;
    CHECK_OK(cl_clip_config_load(cl_test_fixture(buf, sizeof buf, cfgs[v]), &cfg, &err), err);
    CHECK(cfg.quick_gelu == v);
    t0 = now();
    CHECK_OK(cl_clip_load(&cfg, &w, be, &m, &err), err);
    t_load += now() - t0;
    if (!m) continue;
    t0 = now();
    CHECK_OK(cl_clip_encode_images(m, pv->data, ni, img, &err), err);
    t_img += now() - t0;
    t0 = now();
    CHECK_OK(cl_clip_encode_texts(m, ids->data, nt, txt, &err), err);
    t_txt += now() - t0;
    const float *ri = need(&ref, ikeys[v])->data, *rt = need(&ref, tkeys[v])->data;
    const float *oi = need(&ref, ikeys[1 - v])->data, *ot = need(&ref, tkeys[1 - v])->data;
    double ei = cl_test_max_relerr(img, ri, ni, E), et = cl_test_max_relerr(txt, rt, nt, E);
    double xi = cl_test_max_relerr(img, oi, ni, E), xt = cl_test_max_relerr(txt, ot, nt, E);
    printf("%-9s image rel err %.3g, text %.3g (vs the other activation: %.3g, %.3g)\n",
           v ? "QuickGELU" : "GELU", ei, et, xi, xt);
    CHECK_MSG(ei < TOL, "%s: image embeddings max rel err %g", cfgs[v], ei);
    CHECK_MSG(et < TOL, "%s: text embeddings max rel err %g", cfgs[v], et);
    CHECK_MSG(xi > 10 * TOL && xt > 10 * TOL, "%s: the other activation's outputs are too close (%g, %g)",
              cfgs[v], xi, xt);
    cl_clip_free(m);
  }
  printf("times: generate %.1f s, load+convert %.2f s, %d images x2 %.2f s, %d texts x2 %.2f s\n",
         t_gen, t_load, ni, t_img, nt, t_txt);
  cl_backend_destroy(be);

  /* bf16 GEMMs on CPUs with AVX512_BF16 (opt-in, never the default): the same references,
   * the bound the CUDA backend's bf16 meets (1e-2 per embedding); above fp32's, so bf16 ran */
  be = NULL;
  if (!cl_backend_cpu_offers(CL_PREC_BF16)) {
    printf("bf16 skipped: this CPU lacks AVX512_BF16\n");
  } else {
    cl_clip_config cfg;
    cl_clip *m = NULL;
    CHECK_OK(cl_backend_cpu_create(&be, &err), err);
    if (be) CHECK_OK(be->set_precision(be, CL_PREC_BF16, &err), err);
    CHECK_OK(cl_clip_config_load(cl_test_fixture(buf, sizeof buf, cfgs[0]), &cfg, &err), err);
    if (be) CHECK_OK(cl_clip_load(&cfg, &w, be, &m, &err), err);
    if (m) {
      CHECK_OK(cl_clip_encode_images(m, pv->data, ni, img, &err), err);
      CHECK_OK(cl_clip_encode_texts(m, ids->data, nt, txt, &err), err);
      const double ei = cl_test_max_relerr(img, need(&ref, ikeys[0])->data, ni, E);
      const double et = cl_test_max_relerr(txt, need(&ref, tkeys[0])->data, nt, E);
      printf("bf16      image rel err %.3g, text %.3g (against open_clip fp32)\n", ei, et);
      CHECK_MSG(ei < 1e-2 && et < 1e-2, "bf16: embeddings max rel err %g (image), %g (text)", ei, et);
      CHECK_MSG(ei > TOL && et > TOL, "bf16: errors %g, %g as small as fp32's: bf16 did not run", ei, et);
      cl_clip_free(m);
    }
    cl_backend_destroy(be);
  }
  free(img), free(txt);
  cl_tmap_free(&w), cl_tmap_free(&pp), cl_tmap_free(&tt), cl_tmap_free(&ref);
  return cl_test_done("test_clip_vitb16");
}
