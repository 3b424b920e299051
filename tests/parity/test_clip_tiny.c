/* The tiny open_clip model against open_clip's own outputs (tiny_outputs: QuickGELU,
 * tiny_gelu_outputs: GELU), on preprocess.safetensors' pixels and the fixture's token ids.
 * Also: the real-length text path equals the full-context one, chunking and batch size do
 * not change results, every float dtype loads, configs parse (bare, hub, built-in) and every
 * malformed config or state dict is refused with the key named. */
#include <stdint.h>
#include <unistd.h>

#include "cl_test.h"
#include "cl_test_tensor.h"
#include "io/cl_safetensors.h"
#include "model/cl_clip.h"

#define TOL 1e-4

/* A non-owning copy of w, minus `drop` and with `swap` (if given) replacing its key. */
static void tmap_view(cl_tmap *out, const cl_tmap *w, const char *drop, const char *swap_key,
                      const cl_tensor *swap) {
  cl_tmap_init(out);
  for (int i = 0; i < w->n; i++) {
    if (drop && !strcmp(w->v[i].name, drop)) continue;
    cl_tmap_put(out, w->v[i].name, swap_key && !strcmp(w->v[i].name, swap_key) ? *swap : w->v[i].t);
  }
}

static int load_err(const cl_clip_config *c, const cl_tmap *w, cl_backend *be, cl_error *err) {
  cl_clip *m = NULL;
  int rc = cl_clip_load(c, w, be, &m, err);
  cl_clip_free(m);
  return rc;
}

#define CHECK_LOAD_FAILS(cfg, w, code, text)                                               \
  do {                                                                                     \
    cl_error _e = {0};                                                                     \
    int _rc = load_err(cfg, w, be, &_e);                                                   \
    CHECK_MSG(_rc == (code) && strstr(_e.msg, text), "rc %d, \"%s\" (want %d, \"%s\")",   \
              _rc, _e.msg, code, text);                                                    \
  } while (0)

#define CHECK_PARSE_FAILS(json, code, text)                                                \
  do {                                                                                     \
    cl_error _e = {0};                                                                     \
    cl_clip_config _c;                                                                     \
    int _rc = cl_clip_config_parse(json, &_c, &_e);                                        \
    CHECK_MSG(_rc == (code) && strstr(_e.msg, text), "%s -> rc %d, \"%s\" (want \"%s\")",  \
              json, _rc, _e.msg, text);                                                    \
  } while (0)

static int same_cfg(const cl_clip_config *a, const cl_clip_config *b) {
  const cl_clip_vision_cfg *va = &a->vision, *vb = &b->vision;
  const cl_clip_text_cfg *ta = &a->text, *tb = &b->text;
  return a->embed_dim == b->embed_dim && a->quick_gelu == b->quick_gelu &&
         va->image_size == vb->image_size && va->patch_size == vb->patch_size &&
         va->width == vb->width && va->layers == vb->layers && va->heads == vb->heads &&
         va->head_width == vb->head_width && va->mlp_ratio == vb->mlp_ratio &&
         ta->context_length == tb->context_length && ta->vocab_size == tb->vocab_size &&
         ta->width == tb->width && ta->heads == tb->heads && ta->layers == tb->layers &&
         ta->mlp_ratio == tb->mlp_ratio && !memcmp(a->mean, b->mean, sizeof a->mean) &&
         !memcmp(a->std, b->std, sizeof a->std);
}

static void test_configs(void) {
  cl_error err = {0};
  cl_clip_config a, b;
  CHECK_OK(cl_clip_config_load(cl_test_fix("tiny_config.json"), &a, &err), err);
  CHECK(a.embed_dim == 32 && a.quick_gelu == 1 && a.vision.heads == 2 && a.vision.width == 64 &&
        a.text.heads == 2 && a.text.layers == 2 && a.vision.mlp_ratio == 4.0);
  CHECK_OK(cl_clip_config_load(cl_test_fix("tiny-hub/open_clip_config.json"), &b, &err), err);
  CHECK(same_cfg(&a, &b));
  CHECK(fabsf(b.mean[0] - 0.48145466f) < 1e-9f && fabsf(b.std[2] - 0.27577711f) < 1e-9f);
  CHECK_OK(cl_clip_config_load(cl_test_fix("tiny_gelu_config.json"), &b, &err), err);
  CHECK(b.quick_gelu == 0);

  CHECK_OK(cl_clip_config_builtin("ViT-B-16", &a, &err), err);
  CHECK_OK(cl_clip_config_load(cl_test_fix("vitb16_config.json"), &b, &err), err);
  CHECK(same_cfg(&a, &b) && a.quick_gelu == 0 && a.vision.heads == 12 && a.embed_dim == 512);
  CHECK_OK(cl_clip_config_builtin("ViT-B-16-quickgelu", &a, &err), err);
  CHECK_OK(cl_clip_config_load(cl_test_fix("vitb16_quickgelu_config.json"), &b, &err), err);
  CHECK(same_cfg(&a, &b) && a.quick_gelu == 1);
  CHECK_OK(cl_clip_config_builtin("ViT-L-14", &a, &err), err);
  CHECK(a.vision.width == 1024 && a.vision.layers == 24 && a.vision.patch_size == 14 &&
        a.vision.heads == 16 && a.text.width == 768 && a.text.heads == 12 && a.embed_dim == 768 &&
        a.quick_gelu == 0);
  CHECK(cl_clip_config_builtin("ViT-X-99", &a, &err) == CL_EINVAL && strstr(err.msg, "ViT-X-99"));

  /* defaults fill omitted keys; the preprocessing can come from vision_cfg too */
  CHECK_OK(cl_clip_config_parse("{\"embed_dim\": 8, \"vision_cfg\": {\"image_mean\": [0.5,0.5,0.5]}}", &a, &err), err);
  CHECK(a.vision.width == 768 && a.vision.heads == 12 && a.text.width == 512 && a.mean[1] == 0.5f &&
        a.std[0] == 0.26862954f && a.quick_gelu == 0);
  CHECK_OK(cl_clip_config_parse("{\"embed_dim\": 8, \"vision_cfg\": {\"patch_dropout\": 0.5, "
                                "\"ls_init_value\": null, \"image_size\": [224, 224]}, \"text_cfg\": "
                                "{\"hf_tokenizer_name\": \"x\", \"pool_type\": \"argmax\"}}", &a, &err), err);

  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"vision_cfg\": {\"width\": \"wide\"}}", CL_EINVAL, "vision_cfg.width");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"text_cfg\": {\"layers\": 2.5}}", CL_EINVAL, "text_cfg.layers");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"text_cfg\": {\"widht\": 64}}", CL_EINVAL, "unknown key text_cfg.widht");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"colour\": 1}", CL_EINVAL, "unknown key colour");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"vision_cfg\": {\"ls_init_value\": 0.1}}", CL_EUNSUP, "vision_cfg.ls_init_value");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"vision_cfg\": {\"layers\": [3,4,6,3]}}", CL_EUNSUP, "vision_cfg.layers");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"text_cfg\": {\"pool_type\": \"last\"}}", CL_EUNSUP, "text_cfg.pool_type");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"vision_cfg\": {\"width\": 100}}", CL_EINVAL, "vision_cfg.head_width");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"text_cfg\": {\"heads\": 7}}", CL_EINVAL, "text_cfg.heads");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32, \"quick_gelu\": \"yes\"}", CL_EINVAL, "quick_gelu");
  CHECK_PARSE_FAILS("{\"vision_cfg\": {}}", CL_EINVAL, "missing key embed_dim");
  CHECK_PARSE_FAILS("{\"model_cfg\": {\"embed_dim\": 8}, \"preprocess_cfg\": {\"std\": [1, 2]}}", CL_EINVAL,
                    "preprocess_cfg.std");
  CHECK_PARSE_FAILS("{\"embed_dim\": 32,", CL_EFORMAT, "invalid JSON");
  CHECK(cl_clip_config_load("/nonexistent/cfg.json", &a, &err) == CL_EIO && strstr(err.msg, "/nonexistent/cfg.json"));
}

/* The CPU kernels posing as a device backend (host_memory = 0), so that the model takes the
 * staging, upload and download paths a GPU backend needs; counts the transfers. */
static cl_backend dev_be, *dev_inner;
static long dev_up, dev_down;
static int dev_upload(cl_backend *be, void *dst, const void *src, size_t n, cl_error *e) {
  (void)be, dev_up++;
  return dev_inner->upload(dev_inner, dst, src, n, e);
}
static int dev_download(cl_backend *be, void *dst, const void *src, size_t n, cl_error *e) {
  (void)be, dev_down++;
  return dev_inner->download(dev_inner, dst, src, n, e);
}
static cl_backend *device_like(cl_backend *cpu) {
  dev_inner = cpu;
  dev_be = *cpu;
  dev_be.name = "fake-device";
  dev_be.host_memory = 0;
  dev_be.upload = dev_upload;
  dev_be.download = dev_download;
  return &dev_be;
}

typedef struct variant {
  const char *name, *cfg, *out, *other;
} variant;

int main(int argc, char **argv) {
  (void)argc;
  /* settings OpenBLAS and OpenMP read at load time (see cl_ops.h) */
  if (cl_backend_cpu_tune_env()) execv("/proc/self/exe", argv);
  cl_error err = {0};
  test_configs();

  cl_test_tiny tiny;
  cl_test_tiny_load(&tiny);
  const int ni = tiny.ni, nt = tiny.nt, E = 32;
  const float *pixels = tiny.pixels;
  const int32_t *ids = tiny.ids;
  float *img = cl_xmalloc((size_t)ni * E * 4), *txt = cl_xmalloc((size_t)nt * E * 4);
  float *img2 = cl_xmalloc((size_t)ni * E * 4), *txt2 = cl_xmalloc((size_t)nt * E * 4);
  cl_backend *be = NULL;
  CHECK_OK(cl_backend_cpu_create(&be, &err), err);
  if (!be) return cl_test_done("test_clip_tiny");

  const variant vars[2] = {{"QuickGELU", "tiny_config.json", "tiny_outputs", "tiny_gelu_outputs"},
                           {"GELU", "tiny_gelu_config.json", "tiny_gelu_outputs", "tiny_outputs"}};
  cl_clip_config cfgq;
  for (int v = 0; v < 2; v++) {
    cl_clip_config cfg;
    cl_clip *m = NULL;
    CHECK_OK(cl_clip_config_load(cl_test_fix(vars[v].cfg), &cfg, &err), err);
    if (v == 0) cfgq = cfg;
    CHECK_OK(cl_clip_load(&cfg, &tiny.w, be, &m, &err), err);
    if (!m) continue;
    CHECK(cl_clip_embed_dim(m) == E && cl_clip_get_config(m)->quick_gelu == cfg.quick_gelu);
    CHECK_OK(cl_clip_encode_images(m, pixels, ni, img, &err), err);
    CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt, &err), err);
    float *ri = cl_test_f32_of(cl_test_need(&tiny.outs[v], "image_embeds")), *rt = cl_test_f32_of(cl_test_need(&tiny.outs[v], "text_embeds"));
    float *oi = cl_test_f32_of(cl_test_need(&tiny.outs[1 - v], "image_embeds")), *ot = cl_test_f32_of(cl_test_need(&tiny.outs[1 - v], "text_embeds"));
    double ei = cl_test_max_relerr(img, ri, ni, E), et = cl_test_max_relerr(txt, rt, nt, E);
    double xi = cl_test_max_relerr(img, oi, ni, E), xt = cl_test_max_relerr(txt, ot, nt, E);
    printf("%-9s image rel err %.3g, text %.3g (vs %s: %.3g, %.3g)\n", vars[v].name, ei, et,
           vars[v].other, xi, xt);
    CHECK_MSG(ei < TOL, "%s image embeddings: max rel err %g", vars[v].name, ei);
    CHECK_MSG(et < TOL, "%s text embeddings: max rel err %g", vars[v].name, et);
    /* the other activation's reference must be far outside the tolerance, or this test
     * could not tell GELU from QuickGELU */
    CHECK_MSG(xi > 10 * TOL && xt > 10 * TOL, "%s vs %s: %g, %g", vars[v].name, vars[v].other, xi, xt);
    float ls = *(const float *)cl_test_need(&tiny.outs[v], "logit_scale")->data;
    CHECK_MSG(cl_clip_logit_scale(m) == ls, "logit_scale %.9g, expected %.9g", cl_clip_logit_scale(m), ls);

    /* real lengths vs the full 77 tokens */
    cl_clip_set_full_context(m, 1);
    CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt2, &err), err);
    double ef = cl_test_max_relerr(txt, txt2, nt, E);
    printf("%-9s real-length vs full-context text rel err %.3g\n", vars[v].name, ef);
    CHECK_MSG(ef < 1e-6, "real-length vs full-context texts: %g", ef);
    CHECK_MSG(cl_test_max_relerr(txt2, rt, nt, E) < TOL, "full-context texts vs reference");
    cl_clip_set_full_context(m, 0);

    /* chunks of one image / a few texts, and one-by-one, give the batch's results */
    cl_clip_set_max_tokens(m, 200);
    CHECK_OK(cl_clip_encode_images(m, pixels, ni, img2, &err), err);
    CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt2, &err), err);
    double ci = cl_test_max_relerr(img2, img, ni, E), ct = cl_test_max_relerr(txt2, txt, nt, E);
    CHECK_MSG(ci < 1e-6 && ct < 1e-6, "chunked vs batched: %g, %g", ci, ct);
    cl_clip_set_max_tokens(m, CL_CLIP_MAX_TOKENS);
    for (int i = 0; i < nt; i++)
      CHECK_OK(cl_clip_encode_texts(m, ids + i * 77, 1, txt2 + i * E, &err), err);
    CHECK(cl_test_max_relerr(txt2, txt, nt, E) < 1e-6);
    CHECK_OK(cl_clip_encode_images(m, pixels + 5 * 3 * 224 * 224, 1, img2, &err), err);
    CHECK(cl_test_max_relerr(img2, img + 5 * E, 1, E) < 1e-6);
    CHECK_OK(cl_clip_encode_images(m, pixels, 0, img2, &err), err);

    /* bad inputs */
    int32_t bad[77] = {49406, 320, 49408, 49407};
    CHECK(cl_clip_encode_texts(m, bad, 1, txt2, &err) == CL_EINVAL && strstr(err.msg, "49408"));
    CHECK(cl_clip_encode_images(m, pixels, -1, img2, &err) == CL_EINVAL);
    free(ri), free(rt), free(oi), free(ot);
    cl_clip_free(m);
  }

  /* a backend whose memory is not the host's: same results, weights uploaded once */
  {
    cl_clip *m = NULL;
    CHECK_OK(cl_clip_load(&cfgq, &tiny.w, device_like(be), &m, &err), err);
    CHECK_EQ_INT(dev_up, 1);
    if (m) {
      float *ri = cl_test_f32_of(cl_test_need(&tiny.outs[0], "image_embeds")), *rt = cl_test_f32_of(cl_test_need(&tiny.outs[0], "text_embeds"));
      CHECK_OK(cl_clip_encode_images(m, pixels, ni, img2, &err), err);
      CHECK_OK(cl_clip_encode_texts(m, ids, nt, txt2, &err), err);
      CHECK(cl_test_max_relerr(img2, ri, ni, E) < TOL && cl_test_max_relerr(txt2, rt, nt, E) < TOL);
      CHECK(dev_up == 2 && dev_down == 2); /* the pixels went up; one download per call */
      CHECK(cl_clip_logit_scale(m) == *(const float *)cl_test_need(&tiny.outs[0], "logit_scale")->data);
      free(ri), free(rt);
    }
    cl_clip_free(m);
  }

  /* every float dtype loads: F64 is exact, F16/BF16 round the weights */
  const cl_dtype dts[3] = {CL_F64, CL_F16, CL_BF16};
  const double dtol[3] = {0, 1e-2, 5e-2};
  float *ref = cl_xmalloc((size_t)ni * E * 4);
  {
    cl_clip *m = NULL;
    CHECK_OK(cl_clip_load(&cfgq, &tiny.w, be, &m, &err), err);
    if (m) CHECK_OK(cl_clip_encode_images(m, pixels, 2, ref, &err), err);
    cl_clip_free(m);
  }
  for (int d = 0; d < 3; d++) {
    cl_tmap w2;
    cl_tmap_init(&w2);
    for (int i = 0; i < tiny.w.n; i++) {
      const cl_tensor *t = &tiny.w.v[i].t;
      int64_t n = cl_tensor_numel(t);
      cl_tensor *c = cl_tmap_put_copy(&w2, tiny.w.v[i].name, dts[d], t->ndim, t->shape, NULL);
      const float *src = t->data;
      for (int64_t j = 0; j < n; j++) {
        if (dts[d] == CL_F64) ((double *)c->data)[j] = src[j];
        else if (dts[d] == CL_F16) ((uint16_t *)c->data)[j] = cl_float_to_half(src[j]);
        else { /* BF16 by truncation is enough here */
          uint32_t u;
          memcpy(&u, &src[j], 4);
          ((uint16_t *)c->data)[j] = (uint16_t)(u >> 16);
        }
      }
    }
    cl_clip *m = NULL;
    CHECK_OK(cl_clip_load(&cfgq, &w2, be, &m, &err), err);
    if (m) {
      CHECK_OK(cl_clip_encode_images(m, pixels, 2, img2, &err), err);
      double r = cl_test_max_relerr(img2, ref, 2, E);
      printf("weights as %s: image rel err %.3g vs F32\n", cl_dtype_name(dts[d]), r);
      CHECK_MSG(d == 0 ? r == 0 : r < dtol[d], "%s weights: rel err %g", cl_dtype_name(dts[d]), r);
    }
    cl_clip_free(m);
    cl_tmap_free(&w2);
  }

  /* state dicts that do not fit the config */
  cl_clip_config c = cfgq;
  c.vision.width = 32, c.vision.head_width = 32;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_ESHAPE, "visual.conv1.weight: expected [32,3,16,16], got [64,3,16,16]");
  c = cfgq;
  c.text.width = 128;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_ESHAPE, "token_embedding.weight: expected [49408,128], got [49408,64]");
  c = cfgq;
  c.vision.mlp_ratio = 2.0;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_ESHAPE, "visual.transformer.resblocks.0.mlp.c_fc.weight: expected [128,64], got [256,64]");
  c = cfgq;
  c.embed_dim = 16;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_ESHAPE, "visual.proj: expected [64,16], got [64,32]");
  c = cfgq;
  c.text.layers = 3;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_ESHAPE, "missing key transformer.resblocks.2.ln_1.weight");
  c.text.layers = 1;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_ESHAPE, "unexpected key transformer.resblocks.1.");
  c = cfgq;
  c.nonscalar_logit_scale = 1;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_ESHAPE, "logit_scale: expected [1], got []");
  c = cfgq;
  c.text.heads = 3;
  CHECK_LOAD_FAILS(&c, &tiny.w, CL_EINVAL, "text_cfg.heads");
  cl_tmap v;
  tmap_view(&v, &tiny.w, "token_embedding.weight", NULL, NULL);
  CHECK_LOAD_FAILS(&cfgq, &v, CL_ESHAPE, "missing key token_embedding.weight");
  cl_tmap_free(&v);
  cl_tensor ints = *cl_test_need(&tiny.w, "ln_final.weight");
  ints.dtype = CL_I32;
  tmap_view(&v, &tiny.w, NULL, "ln_final.weight", &ints);
  CHECK_LOAD_FAILS(&cfgq, &v, CL_EFORMAT, "ln_final.weight: dtype I32");
  cl_tmap_free(&v);
  cl_tensor tall = *cl_test_need(&tiny.w, "visual.transformer.resblocks.1.attn.in_proj_weight");
  tall.shape[0] = 96, tall.shape[1] = 64; /* same bytes, wrong shape */
  tmap_view(&v, &tiny.w, NULL, "visual.transformer.resblocks.1.attn.in_proj_weight", &tall);
  CHECK_LOAD_FAILS(&cfgq, &v, CL_ESHAPE,
                   "visual.transformer.resblocks.1.attn.in_proj_weight: expected [192,64], got [96,64]");
  cl_tmap_free(&v);

  cl_backend_destroy(be);
  free(img), free(txt), free(img2), free(txt2), free(ref);
  cl_test_tiny_free(&tiny);
  return cl_test_done("test_clip_tiny");
}
