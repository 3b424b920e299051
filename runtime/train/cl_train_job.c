/* cl_train_job: the epoch loop, the draws, the states on disk and resuming (cl_train_job.h). */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_train_job.h"
#include "eval/cl_pyrandom.h"
#include "image/cl_image.h"
#include "io/cl_ckpt.h"
#include "io/cl_safetensors.h"
#include "text/cl_tokenizer.h"

#define DEFAULT_TEMPLATE "a photo of {}."
/* the evaluation pixels of every example are kept when they fit in this many bytes */
#define PIXEL_CACHE_MAX ((size_t)1 << 30)

int cl_train_job_steps(const cl_train_job_spec *sp, int n, int64_t *steps, cl_error *e) {
  if (sp->batch_size < 2)
    return cl_err(e, CL_EINVAL, "batch_size %d: contrastive training needs at least 2 examples per batch",
                  sp->batch_size);
  if (n < 1) return cl_err(e, CL_EINVAL, "the training set is empty");
  if (sp->batch_size > n)
    return cl_err(e, CL_EINVAL, "batch_size %d is larger than the training set (%d examples)", sp->batch_size, n);
  if (sp->epochs < 1 || sp->epochs > 65535)
    return cl_err(e, CL_EINVAL, "epochs must lie in [1, 65535] (got %d)", sp->epochs);
  if (n >= (1 << 28)) return cl_err(e, CL_EINVAL, "%d examples: more than a training job takes (2^28)", n);
  const int64_t s = (int64_t)sp->epochs * (n / sp->batch_size);
  if (s > 1000000000) return cl_err(e, CL_EINVAL, "%lld steps: more than a training job takes (10^9)", (long long)s);
  *steps = s;
  return CL_OK;
}

char *cl_train_job_spec_json(const cl_train_job_spec *sp) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "epochs", sp->epochs);
  cJSON_AddNumberToObject(j, "batch_size", sp->batch_size);
  cJSON_AddNumberToObject(j, "lr", sp->lr);
  cJSON_AddNumberToObject(j, "weight_decay", sp->weight_decay);
  cJSON_AddNumberToObject(j, "warmup", sp->warmup);
  cJSON_AddNumberToObject(j, "seed", sp->seed);
  const double betas[2] = {sp->beta1, sp->beta2};
  cJSON_AddItemToObject(j, "betas", cJSON_CreateDoubleArray(betas, 2));
  cJSON_AddNumberToObject(j, "eps", sp->eps);
  cJSON_AddNumberToObject(j, "clip_grad", sp->clip_grad);
  cJSON_AddItemToObject(j, "freeze", cJSON_CreateStringArray(sp->freeze, sp->nfreeze));
  cJSON_AddBoolToObject(j, "projections_only", sp->projections_only);
  cJSON_AddBoolToObject(j, "augment", sp->augment);
  cJSON_AddStringToObject(j, "draw", sp->draw_example ? "example" : "batch");
  cJSON *mix = cJSON_AddArrayToObject(j, "mixture");
  for (int t = 0; t < sp->ntypes; t++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", sp->types[t]);
    cJSON_AddNumberToObject(o, "weight", sp->weights[t]);
    cJSON_AddItemToArray(mix, o);
  }
  static const char *const def[1] = {DEFAULT_TEMPLATE};
  cJSON_AddItemToObject(j, "templates", sp->ntemplates ? cJSON_CreateStringArray(sp->templates, sp->ntemplates)
                                                       : cJSON_CreateStringArray(def, 1));
  cJSON_AddNumberToObject(j, "save_every", sp->save_every);
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return s ? s : cl_strdup("{}");
}

/* ---- the job in memory ---- */
typedef struct job {
  const cl_clip_config *cfg;
  const cl_train_data *d;
  const cl_train_job_spec *sp;
  const char *work;
  int64_t steps;
  int nb, B, C, S;
  size_t per; /* floats per image */
  cl_backend *be;
  cl_train_model *m;
  cl_train_optim *o;
  cl_tok *tok;
  int *order, order_epoch; /* the rows of epoch order_epoch, shuffled */
  cl_train_history hist;              /* every step's draws and numbers, allocated for all steps */
  float *cache;                       /* evaluation pixels of every example, or NULL */
  float *pixels;                      /* [B, 3, S, S] */
  int32_t *ids;                       /* [B, C] */
  double *cum;                        /* cumulative weights */
  int *choice; /* equal weights: the types in BioCLIP's list order, for random.choice; else NULL */
} job;

/* random.seed(key) for one of the documented streams */
static void seed_stream(cl_pyrand *r, int64_t key) { cl_pyrand_seed(r, key); }

static void epoch_order(job *j, int epoch) {
  if (j->order_epoch == epoch) return;
  for (int i = 0; i < j->d->n; i++) j->order[i] = i;
  cl_pyrand r;
  seed_stream(&r, ((int64_t)1 << 62) + ((int64_t)j->sp->seed << 40) + epoch);
  cl_pyrand_shuffle(&r, j->order, j->d->n);
  j->order_epoch = epoch;
}

/* BioCLIP's list of text types (src/training/train.py: sci, com, taxon, sci_com, taxon_com);
 * with equal weights a mixture draws by random.choice over its types in this order, any
 * other type after them in the mixture's order. NULL when the weights differ. */
static int *choice_order(const cl_train_job_spec *sp) {
  static const char *const bioclip[] = {"scientific", "common", "taxonomic", "scientific_common",
                                        "taxonomic_common"};
  const int nb = (int)(sizeof bioclip / sizeof *bioclip);
  for (int t = 1; t < sp->ntypes; t++)
    if (sp->weights[t] != sp->weights[0]) return NULL;
  int *c = cl_xmalloc((size_t)sp->ntypes * sizeof(int)), k = 0;
  for (int b = 0; b <= nb; b++)
    for (int t = 0; t < sp->ntypes; t++) {
      int at = nb; /* the type's place in BioCLIP's list; nb: not there */
      for (int i = 0; i < nb; i++)
        if (!strcmp(sp->types[t], bioclip[i])) at = i;
      if (at == b) c[k++] = t;
    }
  return c;
}

/* Equal weights: random.choice(types) with the types in BioCLIP's order, as BioCLIP's
 * train_one_epoch draws (random.choice([sci, com, taxon, sci_com, taxon_com])); otherwise
 * random.choices(types, weights)[0]: bisect_right(cum, random() * total, 0, n - 1). */
static int draw_type(job *j, cl_pyrand *r) {
  const int n = j->sp->ntypes;
  if (j->choice) return j->choice[cl_pyrand_below(r, (uint32_t)n)];
  const double x = cl_pyrand_random(r) * j->cum[n - 1];
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (x < j->cum[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/* The text types and templates of step s's examples. */
static void draw_captions(job *j, int64_t s) {
  cl_pyrand r;
  seed_stream(&r, ((int64_t)j->sp->seed << 40) + s);
  int32_t *ty = j->hist.types + s * j->B, *tp = j->hist.templates + s * j->B;
  const int nt = j->sp->ntemplates;
  for (int b = 0; b < j->B; b++) {
    if (b > 0 && !j->sp->draw_example) {
      ty[b] = ty[0], tp[b] = tp[0];
      continue;
    }
    ty[b] = draw_type(j, &r);
    tp[b] = nt > 1 ? (int32_t)cl_pyrand_below(&r, (uint32_t)nt) : 0;
  }
}

/* The template with every {} replaced by name (Python's str.format with one field). */
static char *caption(const char *tmpl, const char *name) {
  size_t n = strlen(tmpl), k = strlen(name), cnt = 0;
  for (const char *p = strstr(tmpl, "{}"); p; p = strstr(p + 2, "{}")) cnt++;
  char *out = cl_xmalloc(n + cnt * k + 1), *q = out;
  for (const char *p = tmpl; *p;) {
    if (p[0] == '{' && p[1] == '}') {
      memcpy(q, name, k), q += k, p += 2;
    } else {
      *q++ = *p++;
    }
  }
  *q = 0;
  return out;
}

/* One example's pixels for step s's batch position b (row i of epoch). */
static int example_pixels(job *j, int epoch, int i, int64_t s, int b, float *out, cl_error *e) {
  const char *path = j->d->images[i];
  int32_t *box = j->hist.boxes ? j->hist.boxes + (s * j->B + b) * 4 : NULL;
  if (j->sp->augment) {
    /* open_clip's training transform: RandomResizedCrop (scale 0.9-1.0, ratio 3/4-4/3,
     * bicubic), its box drawn from the row's documented stream and recorded */
    cl_pyrand r;
    seed_stream(&r, ((int64_t)1 << 61) + ((int64_t)j->sp->seed << 44) + ((int64_t)epoch << 28) + i);
    const cl_img_rrc rrc = CL_IMG_RRC_OPENCLIP;
    cl_img_box bx = {0};
    CL_TRY(cl_img_train_preprocess_file(path, j->S, &rrc, &r, j->cfg->mean, j->cfg->std, out, &bx, e));
    box[0] = bx.left, box[1] = bx.top, box[2] = bx.width, box[3] = bx.height;
    return CL_OK;
  }
  if (j->cache) {
    memcpy(out, j->cache + (size_t)i * j->per, j->per * sizeof(float));
    return CL_OK;
  }
  return cl_img_preprocess_file(path, j->S, j->cfg->mean, j->cfg->std, out, e);
}

static int run_step(job *j, int64_t s, cl_train_step_info *info, cl_error *e) {
  const int epoch = (int)(s / j->nb), b0 = (int)(s % j->nb) * j->B;
  epoch_order(j, epoch);
  draw_captions(j, s);
  const int *rows = j->order + b0;
  const int32_t *ty = j->hist.types + s * j->B, *tp = j->hist.templates + s * j->B;
  for (int b = 0; b < j->B; b++) {
    const int i = rows[b];
    const char *tmpl = j->sp->ntemplates ? j->sp->templates[tp[b]] : DEFAULT_TEMPLATE;
    char *text = caption(tmpl, j->d->names[(size_t)i * j->sp->ntypes + ty[b]]);
    int rc = cl_tok_encode(j->tok, text, j->ids + (size_t)b * j->C, j->C, e) < 0 ? (e->code ? e->code : CL_EINVAL)
                                                                                : CL_OK;
    if (rc) cl_err_wrap(e, "caption \"%s\" of %s", text, j->d->images[i]);
    free(text);
    if (rc) return rc;
    CL_TRY(example_pixels(j, epoch, i, s, b, j->pixels + (size_t)b * j->per, e));
  }
  float loss = 0;
  double lr = 0, norm = -1;
  CL_TRY(cl_train_forward_backward(j->m, j->pixels, j->ids, j->B, &loss, NULL, e));
  CL_TRY(cl_train_optim_step(j->o, &lr, &norm, e));
  *info = (cl_train_step_info){.step = s, .steps = j->steps, .epoch = epoch, .batch = j->B, .rows = rows,
                               .loss = loss, .lr = lr, .grad_norm = norm};
  return CL_OK;
}

/* ---- the job's states (cl_train_state_*) ---- */

static int save_state(job *j, int64_t done, char *name, size_t nname, cl_error *e) {
  cl_tmap t;
  cl_tmap_init(&t);
  j->hist.steps = done;
  cl_train_history_put(&j->hist, &t);
  char *spec = cl_train_job_spec_json(j->sp);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "step", (double)done);
  cJSON_AddNumberToObject(o, "steps", (double)j->steps);
  cJSON_AddNumberToObject(o, "epoch", (double)(done / j->nb));
  cJSON_AddNumberToObject(o, "steps_per_epoch", j->nb);
  cJSON_AddStringToObject(o, "generator", "python random (MT19937), reseeded per step, epoch and row");
  cJSON_AddItemToObject(o, "spec", cJSON_Parse(spec));
  char *text = cJSON_Print(o);
  int rc = cl_train_state_save(j->work, done, j->m, j->o, "draws.safetensors", &t, text, name, nname, e);
  free(text), free(spec);
  cJSON_Delete(o);
  cl_tmap_free(&t);
  return rc;
}

/* The history of the state in dir (done steps) into the job's arrays. */
static int load_history(job *j, const char *dir, int64_t done, cl_error *e) {
  cl_train_history h;
  CL_TRY(cl_train_history_load(dir, &h, e));
  int rc = CL_OK;
  if (h.steps != done || h.batch != j->B || (!h.boxes) != (!j->hist.boxes))
    rc = cl_err(e, CL_EFORMAT, "%s/draws.safetensors: %lld steps of batch %d%s, not the state's %lld of batch %d", dir,
                (long long)h.steps, h.batch, h.boxes ? " with crops" : "", (long long)done, j->B);
  else
    cl_train_history_copy(&j->hist, &h);
  cl_train_history_free(&h);
  return rc;
}

/* ---- the job ---- */

static void job_free(job *j) {
  cl_train_optim_free(j->o);
  cl_train_model_free(j->m);
  cl_backend_destroy(j->be);
  cl_tok_free(j->tok);
  cl_train_history_free(&j->hist);
  free(j->order);
  free(j->cache), free(j->pixels), free(j->ids), free(j->cum), free(j->choice);
}

/* The job's optimizer options. */
static void job_opts(const job *j, cl_train_opts *o) {
  cl_train_opts_default(o);
  o->lr = j->sp->lr, o->weight_decay = j->sp->weight_decay, o->beta1 = j->sp->beta1, o->beta2 = j->sp->beta2;
  o->eps = j->sp->eps, o->warmup = j->sp->warmup, o->clip_grad = j->sp->clip_grad, o->batch_size = j->B;
  o->steps = (int)j->steps, o->freeze = j->sp->freeze, o->nfreeze = j->sp->nfreeze;
  o->projections_only = j->sp->projections_only;
}

static int check_spec(const cl_train_job_spec *sp, const cl_train_data *d, cl_error *e) {
  if (sp->seed < 0 || sp->seed > 65535) return cl_err(e, CL_EINVAL, "seed %d: must lie in [0, 65535]", sp->seed);
  if (sp->ntypes < 1) return cl_err(e, CL_EINVAL, "no text type to draw captions from");
  double total = 0;
  for (int t = 0; t < sp->ntypes; t++) {
    if (!(sp->weights[t] >= 0) || !isfinite(sp->weights[t]))
      return cl_err(e, CL_EINVAL, "text type %s: weight %g is not a number >= 0", sp->types[t], sp->weights[t]);
    total += sp->weights[t];
  }
  if (!(total > 0)) return cl_err(e, CL_EINVAL, "the mixture's weights sum to %g, not a positive number", total);
  for (int k = 0; k < sp->ntemplates; k++)
    if (!strstr(sp->templates[k], "{}")) return cl_err(e, CL_EINVAL, "template \"%s\" has no {}", sp->templates[k]);
  for (size_t i = 0; i < (size_t)d->n * sp->ntypes; i++)
    if (!d->names[i] || !*d->names[i])
      return cl_err(e, CL_EINVAL, "%s: no %s name", d->images[i / sp->ntypes], sp->types[i % sp->ntypes]);
  if (sp->save_every < 0) return cl_err(e, CL_EINVAL, "save_every must be >= 0");
  return CL_OK;
}

int cl_train_job_run(const cl_clip_config *cfg, const char *parent, const cl_train_data *d,
                     const cl_train_job_spec *sp, const char *work_dir, const char *out_dir,
                     const cl_train_job_hooks *h, cl_train_job_result *res, cl_error *e) {
  memset(res, 0, sizeof *res);
  job J = {.cfg = cfg, .d = d, .sp = sp, .work = work_dir, .B = sp->batch_size, .order_epoch = -1};
  job *j = &J;
  CL_TRY(check_spec(sp, d, e));
  CL_TRY(cl_train_job_steps(sp, d->n, &j->steps, e));
  if (access(out_dir, F_OK) == 0) return cl_err(e, CL_EIO, "%s: already exists", out_dir);
  if (mkdir(work_dir, 0777) && errno != EEXIST)
    return cl_err(e, CL_EIO, "%s: cannot create (%s)", work_dir, strerror(errno));
  j->nb = d->n / j->B, j->C = cfg->text.context_length, j->S = cfg->vision.image_size;
  j->per = 3 * (size_t)j->S * j->S;
  j->order = cl_xmalloc((size_t)d->n * sizeof(int));
  cl_train_history_alloc(&j->hist, j->steps, j->B, sp->augment);
  j->pixels = cl_xmalloc((size_t)j->B * j->per * sizeof(float));
  j->ids = cl_xmalloc((size_t)j->B * j->C * sizeof(int32_t));
  j->cum = cl_xmalloc((size_t)sp->ntypes * sizeof(double));
  for (int t = 0; t < sp->ntypes; t++) j->cum[t] = (t ? j->cum[t - 1] : 0) + sp->weights[t];
  j->choice = choice_order(sp);
  char state[64];
  int rc = cl_backend_cpu_create(&j->be, e);
  if (!rc) rc = cl_tok_load(NULL, &j->tok, e);
  if (!rc) rc = cl_train_state_latest(work_dir, state, sizeof state, e);
  int64_t start = 0;
  cl_train_opts opts;
  job_opts(j, &opts);
  if (!rc && state[0]) { /* resume: the weights, moments, step and draws of the latest state */
    char *dir = cl_asprintf("%s/%s", work_dir, state);
    rc = cl_train_state_open(dir, cfg, j->be, &opts, &j->m, &j->o, e);
    start = j->o ? cl_train_optim_steps(j->o) : 0;
    if (!rc) rc = load_history(j, dir, start, e);
    free(dir);
  } else if (!rc) {
    rc = cl_train_open(cfg, parent, j->be, &opts, &j->m, &j->o, e);
  }
  cl_train_state_clean(work_dir, state[0] ? state : NULL);
  res->resumed_from = start;
  /* the evaluation pixels of every example, read (and checked) before the first step */
  if (!rc && !sp->augment && (size_t)d->n * j->per * sizeof(float) <= PIXEL_CACHE_MAX) {
    j->cache = cl_xmalloc((size_t)d->n * j->per * sizeof(float));
    for (int i = 0; i < d->n && !rc; i++)
      rc = cl_img_preprocess_file(d->images[i], j->S, cfg->mean, cfg->std, j->cache + (size_t)i * j->per, e);
  }
  for (int64_t s = start; s < j->steps && !rc; s++) {
    cl_train_step_info info;
    if ((rc = run_step(j, s, &info, e))) {
      cl_err_wrap(e, "step %lld", (long long)s);
      break;
    }
    cl_train_history_set(&j->hist, &info);
    cl_train_history_step(&j->hist, s, j->steps, j->nb, &info);
    if (h && h->on_step && (rc = h->on_step(h->ud, &info, e))) break;
    const int64_t done = s + 1;
    const int stop = h && h->interrupted && *h->interrupted;
    if (done % j->nb == 0 || (sp->save_every && done % sp->save_every == 0) || done == j->steps || stop) {
      if ((rc = save_state(j, done, state, sizeof state, e))) break;
      if (h && h->on_state && (rc = h->on_state(h->ud, done, e))) break;
    }
    res->steps_done = done;
    if (stop && done < j->steps) {
      res->stopped = 1;
      break;
    }
  }
  if (!rc && !res->stopped) {
    res->steps_done = j->steps;
    char *dir = cl_asprintf("%s/%s", work_dir, state), *path = cl_asprintf("%s/state", work_dir);
    if (rename(dir, out_dir)) rc = cl_err(e, CL_EIO, "%s: cannot move the trained model there (%s)", out_dir,
                                          strerror(errno));
    else unlink(path), rmdir(work_dir);
    free(dir), free(path);
  }
  job_free(j);
  return rc;
}
