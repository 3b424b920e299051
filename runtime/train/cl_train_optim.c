/* cl_train_optim: open_clip's optimizer loop around the gradients: cosine_lr, clip_grad_norm_,
 * PyTorch 1.13's AdamW (single-tensor path) with open_clip's two parameter groups, frozen
 * parameters, and the logit_scale clamp after each step. The moments of every parameter
 * live in one backend allocation ([exp_avg | exp_avg_sq], the parameters' offsets). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_train.h"

struct cl_train_optim {
  cl_train_model *m;
  cl_train_opts o;
  char **freeze; /* copies of the prefixes, for the record */
  float *moments; /* exp_avg [nfloats] then exp_avg_sq [nfloats] */
  int step;
};

void cl_train_opts_default(cl_train_opts *o) {
  memset(o, 0, sizeof *o);
  o->lr = 5e-4, o->weight_decay = 0.2, o->beta1 = 0.9, o->beta2 = 0.98, o->eps = 1e-6;
}

double cl_train_cosine_lr(double base, int warmup, int steps, int step) {
  if (step < warmup) return base * (step + 1) / warmup;
  const double e = step - warmup, es = steps - warmup;
  return 0.5 * (1 + cos(M_PI * e / es)) * base;
}

static int check_opts(const cl_train_opts *o, cl_error *e) {
  if (o->steps < 1) return cl_err(e, CL_EINVAL, "steps must be at least 1 (got %d)", o->steps);
  if (o->warmup < 0) return cl_err(e, CL_EINVAL, "warmup must be >= 0 (got %d)", o->warmup);
  if (!(o->lr >= 0) || !isfinite(o->lr)) return cl_err(e, CL_EINVAL, "lr must be a number >= 0 (got %g)", o->lr);
  if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
    return cl_err(e, CL_EINVAL, "weight decay must be a number >= 0 (got %g)", o->weight_decay);
  if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
    return cl_err(e, CL_EINVAL, "betas must lie in [0, 1) (got %g, %g)", o->beta1, o->beta2);
  if (!(o->eps > 0) || !isfinite(o->eps)) return cl_err(e, CL_EINVAL, "eps must be > 0 (got %g)", o->eps);
  if (!(o->clip_grad >= 0) || !isfinite(o->clip_grad))
    return cl_err(e, CL_EINVAL, "clip-grad must be a number >= 0 (got %g)", o->clip_grad);
  return CL_OK;
}

static int is_projection(const char *name) {
  return !strcmp(name, "visual.proj") || !strcmp(name, "text_projection") || !strcmp(name, "logit_scale");
}

int cl_train_optim_create(cl_train_model *m, const cl_train_opts *opts, cl_train_optim **out, cl_error *e) {
  *out = NULL;
  if (check_opts(opts, e)) return e->code;
  const int np = cl_train_nparams(m);
  for (int i = 0; i < np; i++) {
    cl_train_param *p = cl_train_param_at(m, i);
    p->trainable = !opts->projections_only || is_projection(p->name);
  }
  for (int f = 0; f < opts->nfreeze; f++) {
    const char *pre = opts->freeze[f];
    int hits = 0;
    for (int i = 0; i < np && pre && *pre; i++) {
      cl_train_param *p = cl_train_param_at(m, i);
      if (!strncmp(p->name, pre, strlen(pre))) p->trainable = 0, hits++;
    }
    if (!hits) return cl_err(e, CL_EINVAL, "freeze \"%s\": no parameter name starts with it", pre ? pre : "");
  }
  cl_train_optim *o = cl_xcalloc(1, sizeof *o);
  o->m = m;
  o->o = *opts;
  o->freeze = cl_xcalloc((size_t)opts->nfreeze + 1, sizeof *o->freeze);
  for (int f = 0; f < opts->nfreeze; f++) o->freeze[f] = cl_strdup(opts->freeze[f] ? opts->freeze[f] : "");
  o->o.freeze = (const char *const *)o->freeze;
  cl_backend *be = cl_train_be(m);
  const size_t nf = cl_train_nfloats(m);
  int rc;
  if ((rc = be->alloc(be, 2 * nf * sizeof(float), (void **)&o->moments, e)) ||
      (rc = be->zero(be, o->moments, 2 * nf * sizeof(float), e))) {
    cl_train_optim_free(o);
    return rc;
  }
  *out = o;
  return CL_OK;
}

void cl_train_optim_free(cl_train_optim *o) {
  if (!o) return;
  if (o->moments) cl_train_be(o->m)->free(cl_train_be(o->m), o->moments);
  for (int f = 0; o->freeze && f < o->o.nfreeze; f++) free(o->freeze[f]);
  free(o->freeze);
  free(o);
}

int cl_train_optim_steps(const cl_train_optim *o) { return o->step; }

/* torch.nn.utils.clip_grad_norm_ (1.13): the 2-norm of the per-parameter 2-norms (fp32), every
 * gradient times min(1, max_norm / (total + 1e-6)). */
static int clip(cl_train_optim *o, double *norm, cl_error *e) {
  cl_train_model *m = o->m;
  cl_backend *be = cl_train_be(m);
  float *g = cl_train_grads(m);
  double total = 0;
  for (int i = 0; i < cl_train_nparams(m); i++) {
    const cl_train_param *p = cl_train_param_at(m, i);
    if (!p->trainable) continue;
    double s = 0;
    if (be->sumsq(be, g + p->off, p->numel, &s, e)) return e->code;
    const float pn = (float)sqrt(s);
    total += (double)pn * pn;
  }
  const float totf = (float)sqrt(total), coef = (float)o->o.clip_grad / (totf + 1e-6f);
  *norm = totf;
  if (!(coef < 1.0f)) return CL_OK;
  for (int i = 0; i < cl_train_nparams(m); i++) {
    const cl_train_param *p = cl_train_param_at(m, i);
    if (p->trainable && be->scale(be, g + p->off, p->numel, coef, e)) return e->code;
  }
  return CL_OK;
}

int cl_train_optim_step(cl_train_optim *o, double *lr_out, double *grad_norm, cl_error *e) {
  cl_train_model *m = o->m;
  cl_backend *be = cl_train_be(m);
  const cl_train_opts *c = &o->o;
  const double lr = cl_train_cosine_lr(c->lr, c->warmup, c->steps, o->step);
  if (lr_out) *lr_out = lr;
  double norm = -1;
  if (c->clip_grad > 0 && clip(o, &norm, e)) return e->code;
  if (grad_norm) *grad_norm = norm;
  const int t = o->step + 1;
  const double bc1 = 1 - pow(c->beta1, t), bc2 = 1 - pow(c->beta2, t);
  cl_adamw_args a = {1.0f,
                     (float)c->beta1,
                     (float)(1 - c->beta1),
                     (float)c->beta2,
                     (float)(1 - c->beta2),
                     (float)(lr / bc1),
                     (float)sqrt(bc2),
                     (float)c->eps};
  const float decay = (float)(1 - lr * c->weight_decay);
  float *p0 = cl_train_params(m), *g0 = cl_train_grads(m);
  const size_t nf = cl_train_nfloats(m);
  for (int i = 0; i < cl_train_nparams(m); i++) {
    const cl_train_param *p = cl_train_param_at(m, i);
    if (!p->trainable) continue;
    a.decay = p->decay ? decay : 1.0f;
    if (be->adamw(be, p0 + p->off, g0 + p->off, o->moments + p->off, o->moments + nf + p->off, p->numel, &a, e))
      return e->code;
  }
  o->step++;
  /* open_clip: logit_scale.clamp_(0, math.log(100)) after every step, trainable or not */
  for (int i = 0; i < cl_train_nparams(m); i++) {
    const cl_train_param *p = cl_train_param_at(m, i);
    if (strcmp(p->name, "logit_scale")) continue;
    float v;
    if (be->download(be, &v, p0 + p->off, sizeof v, e) || be->sync(be, e)) return e->code;
    const float hi = (float)log(100.0), cv = v < 0.0f ? 0.0f : v > hi ? hi : v;
    if (cv != v && be->upload(be, p0 + p->off, &cv, sizeof cv, e)) return e->code;
  }
  return be->sync(be, e);
}

/* The moments of every trainable parameter to out (host copies) or from in (checked). */
static int moments_io(cl_train_optim *o, cl_tmap *out, const cl_tmap *in, cl_error *e) {
  cl_train_model *m = o->m;
  cl_backend *be = cl_train_be(m);
  const size_t nf = cl_train_nfloats(m);
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < cl_train_nparams(m); i++) {
      const cl_train_param *p = cl_train_param_at(m, i);
      if (!p->trainable) continue;
      char name[160];
      snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
      float *dev = o->moments + (size_t)k * nf + p->off;
      if (out) {
        cl_tensor *t = cl_tmap_put_copy(out, name, CL_F32, p->ndim, p->shape, NULL);
        CL_TRY(be->download(be, t->data, dev, p->numel * sizeof(float), e));
        continue;
      }
      const cl_tensor *t = cl_tmap_get(in, name);
      if (!t || t->dtype != CL_F32 || !cl_shape_eq(t, p->ndim, p->shape))
        return cl_err(e, CL_EFORMAT, "optimizer state: %s missing or not F32 of the parameter's shape", name);
      CL_TRY(be->upload(be, dev, t->data, p->numel * sizeof(float), e));
    }
  return be->sync(be, e);
}

int cl_train_optim_export(cl_train_optim *o, cl_tmap *out, cl_error *e) {
  CL_TRY(moments_io(o, out, NULL, e));
  const int64_t step = o->step;
  cl_tmap_put_copy(out, "step", CL_I64, 0, NULL, &step);
  return CL_OK;
}

int cl_train_optim_import(cl_train_optim *o, const cl_tmap *in, cl_error *e) {
  const cl_tensor *st = cl_tmap_get(in, "step");
  int64_t step = -1;
  if (st && st->dtype == CL_I64 && st->ndim == 0) memcpy(&step, st->data, sizeof step); /* maybe unaligned */
  if (step < 0 || step > o->o.steps)
    return cl_err(e, CL_EFORMAT, "optimizer state: `step` missing, not an I64 scalar or outside [0, %d]", o->o.steps);
  CL_TRY(moments_io(o, NULL, in, e));
  o->step = (int)step;
  return CL_OK;
}

char *cl_train_optim_json(const cl_train_optim *o) {
  const cl_train_opts *c = &o->o;
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "step", o->step);
  cJSON_AddNumberToObject(j, "steps", c->steps);
  cJSON_AddNumberToObject(j, "lr", c->lr);
  cJSON_AddNumberToObject(j, "weight_decay", c->weight_decay);
  const double betas[2] = {c->beta1, c->beta2};
  cJSON_AddItemToObject(j, "betas", cJSON_CreateDoubleArray(betas, 2));
  cJSON_AddNumberToObject(j, "eps", c->eps);
  cJSON_AddNumberToObject(j, "warmup", c->warmup);
  cJSON_AddNumberToObject(j, "batch_size", c->batch_size);
  cJSON_AddNumberToObject(j, "clip_grad", c->clip_grad);
  cJSON_AddBoolToObject(j, "projections_only", c->projections_only);
  cJSON_AddItemToObject(j, "freeze", cJSON_CreateStringArray((const char *const *)o->freeze, c->nfreeze));
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return s ? s : cl_strdup("{}");
}
