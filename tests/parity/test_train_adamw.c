/* clade's optimizer against open_clip's AdamW steps on the tiny model
 * (../shared/fixtures/train/adamw_steps*.safetensors, see its README):
 * 1. optimizer only: open_clip's own per-step gradients (grad.step{i}.*) fed to clade's AdamW,
 *    cosine_lr and clamp land on param.* within 1e-6 of each tensor's max, the lr and
 *    logit_scale of every step too;
 * 2. end to end, in all five cases (base, frozen prefixes, clipping, projections only, a
 *    stored logit_scale above ln 100): clade's forward, backward and AdamW for 4 steps give
 *    every loss within loss_rtol, logit_scale within 1e-5 relative, every weight within
 *    atol.<name> entry by entry, the token rows the batch never uses bit-exactly the initial
 *    rows times decay_factors (untouched when frozen), the same decay / no-decay / trainable
 *    groups as the fixture's metadata, and (clipping) the norms before clipping;
 * 3. the hub folder cl_train_save writes loads back through clade's own loaders bit-exactly
 *    (config and every tensor), into the inference model, and the optimizer state imports. */
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_test.h"
#include "cl_test_tensor.h"
#include "io/cl_ckpt.h"
#include "io/cl_safetensors.h"
#include "train/cl_train.h"

#define TOK "token_embedding.weight"

static float f32(const cl_tmap *m, const char *key) { return cl_test_f32(cl_test_need(m, key)); }
static double f64(const cl_tmap *m, const char *key) { return cl_test_f64(cl_test_need(m, key)); }
/* The fixture's metadata ("json" inside __metadata__). */
static cJSON *meta_of(const cl_tmap *d) {
  cJSON *md = cJSON_Parse(d->metadata_json ? d->metadata_json : "{}");
  const cJSON *js = cJSON_GetObjectItemCaseSensitive(md, "json");
  cJSON *j = cJSON_IsString(js) ? cJSON_Parse(js->valuestring) : NULL;
  cJSON_Delete(md);
  if (!j) {
    fprintf(stderr, "fixture metadata unreadable\n");
    exit(1);
  }
  return j;
}

/* Whether name is in the metadata list key (a list of names, or a count we cannot check). */
static int listed(const cJSON *meta, const char *key, const char *name, int *is_list) {
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(meta, key);
  *is_list = cJSON_IsArray(l);
  for (const cJSON *it = *is_list ? l->child : NULL; it; it = it->next)
    if (cJSON_IsString(it) && !strcmp(it->valuestring, name)) return 1;
  return 0;
}

/* Runs 4 steps of one case. grads: the fixture's per-step gradients instead of clade's. */
static void run_case(const char *file, const cl_clip_config *cfg, const cl_tmap *w0, const float *pixels,
                     const int32_t *ids, cl_backend *be, int optimizer_only, const char *save_dir) {
  cl_error err = {0};
  cl_tmap d;
  char rel[256];
  snprintf(rel, sizeof rel, "train/%s.safetensors", file);
  CHECK_OK(cl_st_load(cl_test_fix(rel), &d, &err), err);
  cJSON *meta = meta_of(&d);
  const int steps = cJSON_GetObjectItemCaseSensitive(meta, "steps")->valueint;
  cl_train_opts o;
  cl_train_opts_default(&o);
  o.steps = steps;
  o.warmup = cJSON_GetObjectItemCaseSensitive(meta, "warmup")->valueint;
  o.lr = cJSON_GetObjectItemCaseSensitive(meta, "base_lr")->valuedouble;
  o.weight_decay = cJSON_GetObjectItemCaseSensitive(meta, "weight_decay")->valuedouble;
  const char *frozen[] = {"visual.transformer.resblocks.0.", "token_embedding"};
  if (strstr(file, "frozen")) o.freeze = frozen, o.nfreeze = 2;
  if (strstr(file, "projections")) o.projections_only = 1;
  if (strstr(file, "clip")) o.clip_grad = 1.0;

  /* the starting weights: tiny, or with the stored logit_scale of the clamp case */
  cl_tmap w;
  cl_tmap_init(&w);
  for (int i = 0; i < w0->n; i++)
    cl_tmap_put(&w, w0->v[i].name,
                strcmp(w0->v[i].name, "logit_scale") || !strstr(file, "clamp") ? w0->v[i].t
                                                                               : *cl_test_need(&d, "logit_scale.initial"));
  cl_train_model *m = NULL;
  cl_train_optim *opt = NULL;
  CHECK_OK(cl_train_model_create(cfg, &w, be, &m, &err), err);
  CHECK_OK(cl_train_optim_create(m, &o, &opt, &err), err);
  if (!m || !opt) exit(1);

  /* the groups */
  int mismatched = 0;
  for (int i = 0; i < cl_train_nparams(m); i++) {
    const cl_train_param *p = cl_train_param_at(m, i);
    int l1, l2, l3;
    const int dec = listed(meta, "decay", p->name, &l1), nod = listed(meta, "no_decay", p->name, &l2),
              tr = listed(meta, "trainable", p->name, &l3);
    if (l3 && tr != p->trainable) mismatched++, fprintf(stderr, "%s: trainable %d vs %d\n", p->name, p->trainable, tr);
    if (l1 && p->trainable && dec != p->decay) mismatched++, fprintf(stderr, "%s: decay %d\n", p->name, p->decay);
    if (l2 && p->trainable && nod == p->decay) mismatched++, fprintf(stderr, "%s: no_decay %d\n", p->name, !p->decay);
    (void)nod;
  }
  CHECK_MSG(mismatched == 0, "%s: %d parameters in another group than open_clip's", file, mismatched);
  int ntrain = 0, ndecay = 0;
  for (int i = 0; i < cl_train_nparams(m); i++)
    ntrain += cl_train_param_at(m, i)->trainable,
        ndecay += cl_train_param_at(m, i)->trainable && cl_train_param_at(m, i)->decay;
  const cJSON *tl = cJSON_GetObjectItemCaseSensitive(meta, "trainable"), *dl = cJSON_GetObjectItemCaseSensitive(meta, "decay");
  CHECK_EQ_INT(ntrain, cJSON_IsArray(tl) ? cJSON_GetArraySize(tl) : tl->valueint);
  CHECK_EQ_INT(ndecay, cJSON_IsArray(dl) ? cJSON_GetArraySize(dl) : dl->valueint);

  const cl_tensor *rows = cl_test_need(&d, "token_rows");
  const int nrows = (int)rows->shape[0];
  for (int i = 0; i < steps; i++) {
    float loss = 0;
    if (optimizer_only) { /* open_clip's gradients of step i into clade's gradient buffer */
      float *g = cl_train_grads(m);
      for (int k = 0; k < cl_train_nparams(m); k++) {
        const cl_train_param *p = cl_train_param_at(m, k);
        char key[200];
        if (!strcmp(p->name, TOK)) {
          snprintf(key, sizeof key, "grad.step%d." TOK "[token_rows]", i);
          const cl_tensor *t = cl_test_need(&d, key);
          const int64_t W = p->shape[1];
          memset(g + p->off, 0, p->numel * 4);
          for (int q = 0; q < nrows; q++)
            memcpy(g + p->off + cl_test_i64(rows, q) * W, (const float *)t->data + q * W, W * 4);
        } else {
          snprintf(key, sizeof key, "grad.step%d.%s", i, p->name);
          memcpy(g + p->off, cl_test_need(&d, key)->data, p->numel * 4);
        }
      }
    } else {
      CHECK_OK(cl_train_forward_backward(m, pixels, ids, 6, &loss, NULL, &err), err);
      char k[64];
      snprintf(k, sizeof k, "loss.step%d", i);
      const float ref = f32(&d, k);
      snprintf(k, sizeof k, "loss_rtol.step%d", i);
      const double rtol = f64(&d, k);
      CHECK_MSG(fabs(loss - ref) <= rtol * fabs(ref), "%s step %d: loss %.9g, open_clip %.9g (rtol %g)", file, i, loss,
                ref, rtol);
    }
    double lr = 0, norm = 0;
    CHECK_OK(cl_train_optim_step(opt, &lr, &norm, &err), err);
    char k[64];
    snprintf(k, sizeof k, "lr.step%d", i);
    CHECK_MSG(lr == f64(&d, k), "%s step %d: lr %.17g vs %.17g", file, i, lr, f64(&d, k));
    if (o.clip_grad > 0) {
      snprintf(k, sizeof k, "grad_norm.step%d", i);
      CHECK_MSG(fabs(norm - f32(&d, k)) <= 1e-4 * f32(&d, k), "%s step %d: grad norm %.9g vs %.9g", file, i, norm,
                f32(&d, k));
    }
    const cl_train_param *ls = NULL;
    for (int q = 0; q < cl_train_nparams(m); q++)
      if (!strcmp(cl_train_param_at(m, q)->name, "logit_scale")) ls = cl_train_param_at(m, q);
    snprintf(k, sizeof k, "logit_scale.step%d", i);
    const float got = cl_train_params(m)[ls->off], ref = f32(&d, k);
    CHECK_MSG(fabs(got - ref) <= (optimizer_only ? 1e-6 : 1e-5) * fabs(ref), "%s step %d: logit_scale %.9g vs %.9g",
              file, i, got, ref);
  }

  /* the weights after the last step */
  const float *decay = cl_test_need(&d, "decay_factors")->data;
  double worst_opt = 0;
  long outside = 0;
  const char *worst_name = "";
  double worst_ratio = 0;
  for (int k = 0; k < cl_train_nparams(m); k++) {
    const cl_train_param *p = cl_train_param_at(m, k);
    const float *mine = cl_train_params(m) + p->off;
    char key[200];
    if (!strcmp(p->name, TOK)) {
      const int64_t W = p->shape[1];
      const float *ref = cl_test_need(&d, "param." TOK "[token_rows]")->data, *atol = cl_test_need(&d, "atol." TOK "[token_rows]")->data;
      const float *init = cl_test_need(w0, TOK)->data;
      char *used = cl_xcalloc((size_t)p->shape[0], 1);
      double mx = 0, dmax = 0;
      for (int q = 0; q < nrows; q++) {
        const int64_t row = cl_test_i64(rows, q);
        used[row] = 1;
        for (int64_t c = 0; c < W; c++) {
          const double diff = fabs((double)mine[row * W + c] - ref[q * W + c]);
          mx = fmax(mx, fabs(ref[q * W + c])), dmax = fmax(dmax, diff);
          if (!optimizer_only && diff > atol[q * W + c]) outside++;
          if (!optimizer_only && diff / atol[q * W + c] > worst_ratio) worst_ratio = diff / atol[q * W + c], worst_name = p->name;
        }
      }
      if (optimizer_only) worst_opt = fmax(worst_opt, dmax / mx);
      long unexact = 0;
      for (int64_t row = 0; row < p->shape[0]; row++) {
        if (used[row]) continue;
        for (int64_t c = 0; c < W; c++) {
          float v = init[row * W + c];
          for (int s = 0; s < steps && p->trainable; s++) v = v * decay[s];
          unexact += mine[row * W + c] != v;
        }
      }
      CHECK_MSG(unexact == 0, "%s: %ld unused token-embedding entries differ from initial x decay_factors", file, unexact);
      free(used);
      continue;
    }
    snprintf(key, sizeof key, "param.%s", p->name);
    const cl_tensor *rt = cl_test_need(&d, key);
    const float *ref = rt->data;
    snprintf(key, sizeof key, "atol.%s", p->name);
    const float *atol = cl_test_need(&d, key)->data;
    double mx = 0, dmax = 0;
    for (size_t q = 0; q < p->numel; q++) {
      const double diff = fabs((double)mine[q] - ref[q]);
      mx = fmax(mx, fabs(ref[q])), dmax = fmax(dmax, diff);
      if (!optimizer_only && diff > atol[q]) outside++;
      if (!optimizer_only && diff / atol[q] > worst_ratio) worst_ratio = diff / atol[q], worst_name = p->name;
    }
    if (optimizer_only) worst_opt = fmax(worst_opt, dmax / (mx > 0 ? mx : 1));
  }
  if (optimizer_only) {
    CHECK_MSG(worst_opt < 1e-6, "%s, optimizer only: worst %g of a tensor's max", file, worst_opt);
    fprintf(stderr, "%s, optimizer only on open_clip's gradients: worst %.2e of a tensor's max\n", file, worst_opt);
  } else {
    CHECK_MSG(outside == 0, "%s: %ld weights outside atol (worst %.2f x atol, %s)", file, outside, worst_ratio,
              worst_name);
    fprintf(stderr, "%s, end to end: every weight within atol (worst %.3f x atol, %s)\n", file, worst_ratio,
            worst_name);
  }

  if (save_dir) { /* the hub folder, read back by clade's loaders */
    CHECK_OK(cl_train_save(m, opt, save_dir, &err), err);
    char path[4200];
    cl_clip_config back;
    snprintf(path, sizeof path, "%s/open_clip_config.json", save_dir);
    CHECK_OK(cl_clip_config_load(path, &back, &err), err);
    CHECK(back.quick_gelu == cfg->quick_gelu && back.embed_dim == cfg->embed_dim &&
          back.vision.heads == cfg->vision.heads && back.text.layers == cfg->text.layers &&
          !memcmp(back.mean, cfg->mean, sizeof back.mean) && !memcmp(back.std, cfg->std, sizeof back.std));
    cl_tmap saved;
    snprintf(path, sizeof path, "%s/open_clip_model.safetensors", save_dir);
    CHECK_OK(cl_ckpt_load(path, &saved, &err), err);
    long differ = 0;
    CHECK_EQ_INT(saved.n, cl_train_nparams(m));
    for (int k = 0; k < cl_train_nparams(m); k++) {
      const cl_train_param *p = cl_train_param_at(m, k);
      const cl_tensor *t = cl_tmap_get(&saved, p->name);
      CHECK_MSG(t && t->dtype == CL_F32 && cl_shape_eq(t, p->ndim, p->shape), "saved %s", p->name);
      if (t) differ += memcmp(t->data, cl_train_params(m) + p->off, p->numel * 4) != 0;
    }
    CHECK_MSG(differ == 0, "%ld saved tensors differ from the trained ones", differ);
    cl_clip *inf = NULL;
    CHECK_OK(cl_clip_load(&back, &saved, be, &inf, &err), err);
    cl_clip_free(inf);
    cl_tmap_free(&saved);
    cl_tmap st;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", save_dir);
    CHECK_OK(cl_st_load(path, &st, &err), err);
    CHECK(st.metadata_json && strstr(st.metadata_json, "step"));
    CHECK_OK(cl_train_optim_import(opt, &st, &err), err);
    CHECK_EQ_INT(cl_train_optim_steps(opt), steps);
    cl_tmap_free(&st);
  }
  cJSON_Delete(meta);
  cl_train_optim_free(opt);
  cl_train_model_free(m);
  cl_tmap_free(&w);
  cl_tmap_free(&d);
}

int main(void) {
  /* the tiny model's kernels are too small to share: one thread, so that OpenMP workers
   * spinning on cores other tests also use (ctest -j) do not slow the 24 steps several-fold */
  omp_set_num_threads(1);
  cl_error err = {0};
  cl_backend *be = NULL;
  cl_tmap w, px, g;
  if (cl_st_load(cl_test_fix("tiny.safetensors"), &w, &err) || cl_st_load(cl_test_fix("preprocess.safetensors"), &px, &err) ||
      cl_st_load(cl_test_fix("train/grads_quickgelu.safetensors"), &g, &err)) {
    fprintf(stderr, "skip: %s\n", err.msg);
    return CL_TEST_SKIP;
  }
  CHECK_OK(cl_backend_cpu_create(&be, &err), err);
  cl_clip_config cfg;
  CHECK_OK(cl_clip_config_load(cl_test_fix("tiny_config.json"), &cfg, &err), err);
  const float *pixels = cl_test_need(&px, "pixel_values")->data;
  const int32_t *ids = cl_test_need(&g, "input_ids")->data;

  /* cosine_lr as open_clip: warmup, then the cosine */
  CHECK(cl_train_cosine_lr(1e-3, 2, 4, 0) == 5e-4 && cl_train_cosine_lr(1e-3, 2, 4, 1) == 1e-3 &&
        cl_train_cosine_lr(1e-3, 2, 4, 3) == 0.5 * (1 + cos(M_PI * 1 / 2)) * 1e-3);

  run_case("adamw_steps", &cfg, &w, pixels, ids, be, 1, NULL);
  char dir[] = "/tmp/clade_train_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  run_case("adamw_steps", &cfg, &w, pixels, ids, be, 0, dir);
  run_case("adamw_steps_frozen", &cfg, &w, pixels, ids, be, 0, NULL);
  run_case("adamw_steps_clip", &cfg, &w, pixels, ids, be, 0, NULL);
  run_case("adamw_steps_projections", &cfg, &w, pixels, ids, be, 0, NULL);
  run_case("adamw_steps_clamp", &cfg, &w, pixels, ids, be, 0, NULL);

  /* a freeze prefix that matches nothing is refused, naming it */
  cl_train_model *m = NULL;
  cl_train_optim *o = NULL;
  cl_train_opts opts;
  cl_train_opts_default(&opts);
  opts.steps = 1;
  const char *bad[] = {"visual.transformer.resblock.0."};
  opts.freeze = bad, opts.nfreeze = 1;
  CHECK_OK(cl_train_model_create(&cfg, &w, be, &m, &err), err);
  CHECK(cl_train_optim_create(m, &opts, &o, &err) == CL_EINVAL && strstr(err.msg, "resblock.0.") && !o);
  opts.nfreeze = 0, opts.steps = 0;
  CHECK(cl_train_optim_create(m, &opts, &o, &err) == CL_EINVAL && strstr(err.msg, "steps"));
  cl_train_model_free(m);

  const char *files[] = {"open_clip_model.safetensors", "open_clip_config.json", "optimizer.safetensors"};
  for (int i = 0; i < 3; i++) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  rmdir(dir);
  cl_backend_destroy(be);
  cl_tmap_free(&w);
  cl_tmap_free(&px);
  cl_tmap_free(&g);
  return cl_test_done("test_train_adamw");
}
