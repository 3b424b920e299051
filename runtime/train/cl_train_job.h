/* cl_train_job: a training run as a resumable job (issue 14). Owns the epoch loop over a
 * training set (seeded shuffles cut into full batches), the captions drawn from a mixture of
 * text types (and a template set), the image transform (open_clip's training augmentation or
 * its evaluation transform), the state written atomically every epoch (and every N steps),
 * and resuming from it: a killed training rerun ends with the same bytes as one never
 * stopped.
 *
 * Draws (Python's `random`, cl_pyrand, so each can be redone in Python; seed in [0, 65535]):
 *  - the order of epoch e: random.seed(2**62 + seed * 2**40 + e); random.shuffle(rows)
 *  - the captions of step s: random.seed(seed * 2**40 + s) (with seed 0 BioCLIP's
 *    random.seed(step)); then per batch (draw "batch") or per example in batch order (draw
 *    "example"): the text type as random.choices(types, weights)[0] (one random()), or,
 *    when every weight is equal, as random.choice(types) with the types in BioCLIP's list
 *    order (scientific, common, taxonomic, scientific_common, taxonomic_common, then any
 *    other in the mixture's order): with seed 0 and BioCLIP's five types this is BioCLIP's
 *    own draw (train_one_epoch: random.seed(step); random.choice([sci, com, taxon, sci_com,
 *    taxon_com])). Then, with more than one template, the template as
 *    random.randrange(len(templates)).
 *    The caption is the template with {} replaced by the example's name of that type
 *    (default template "a photo of {}.", BioCLIP's training text).
 *  - the augmentation of row i in epoch e: random.seed(2**61 + seed * 2**44 + e * 2**28 + i),
 *    then cl_img_random_resized_crop_box's draws (torchvision's get_params).
 * (epochs <= 65535 and fewer than 2**28 examples keep the streams apart.)
 * The steps: epochs * floor(n / batch_size); lr follows cosine_lr over all of them.
 *
 * On disk, in the job's work folder: `state` (the name of the latest complete state folder,
 * replaced atomically) and that folder `state-<step>/`: the hub folder cl_train_save writes
 * (weights, config, optimizer moments and step) plus draws.safetensors (cl_train_history:
 * every step's rows, text types, templates, crops, loss, lr and grad norm) and trainer.json
 * (step, epoch, the generator and the spec). When the last step is done, the final state
 * folder is renamed to the output folder: the trained model appears complete or not at all,
 * and keeps the record of how it was made. */
#ifndef CL_TRAIN_JOB_H
#define CL_TRAIN_JOB_H
#include <stdint.h>

#include "train/cl_train.h"

typedef struct cl_train_job_spec {
  int epochs, batch_size, warmup;
  int seed; /* [0, 65535] */
  double lr, weight_decay, clip_grad, beta1, beta2, eps;
  const char *const *freeze;
  int nfreeze, projections_only;
  int augment;      /* open_clip's RandomResizedCrop (scale 0.9-1, bicubic); 0: the evaluation transform */
  int draw_example; /* 0: one text type (and template) per batch, as BioCLIP; 1: per example */
  int ntypes;
  const char *const *types; /* the mixture's text types, in a stable order */
  const double *weights;    /* >= 0, positive sum */
  int ntemplates;           /* 0: "a photo of {}." */
  const char *const *templates;
  int save_every; /* steps between states besides each epoch's end; 0: epochs only */
} cl_train_job_spec;

/* The training set: n examples, each an image and its class's name per text type
 * (names[i * ntypes + t], non-empty). */
typedef struct cl_train_data {
  int n;
  const char *const *images;
  const char *const *names;
} cl_train_data;

/* What one step did: the rows of the batch (0-based examples), the text type and template
 * index of each example, the loss before the update, the lr and grad norm (-1: no
 * clipping). */
typedef struct cl_train_step_info {
  int64_t step, steps;
  int epoch, batch;
  const int *rows, *types, *templates;
  float loss;
  double lr, grad_norm;
} cl_train_step_info;

/* What a job did, step by step (draws.safetensors of a state, kept in the trained model's
 * folder): rows, types, templates I32 [steps, batch]; boxes I32 [steps, batch, 4] (left,
 * top, width, height of each crop; augmenting only); loss F32 [steps]; lr and grad_norm F64
 * [steps] (grad_norm -1: no clipping). */
typedef struct cl_train_history {
  int64_t steps; /* recorded (the arrays may hold more) */
  int batch;
  int32_t *rows, *types, *templates, *boxes;
  float *loss;
  double *lr, *grad_norm;
} cl_train_history;
/* Room for cap steps (boxes when crops), zeroed. */
void cl_train_history_alloc(cl_train_history *h, int64_t cap, int batch, int crops);
void cl_train_history_free(cl_train_history *h);
/* The first h->steps steps as tensors into t (initialised by the caller). */
void cl_train_history_put(const cl_train_history *h, cl_tmap *t);
/* dir/draws.safetensors, checked (shapes agree, types and templates within the job's
 * ranges are the caller's to check). */
int cl_train_history_load(const char *dir, cl_train_history *h, cl_error *e);
/* src's steps into dst (which has room for them). */
void cl_train_history_copy(cl_train_history *dst, const cl_train_history *src);

typedef struct cl_train_job_hooks {
  void *ud;
  /* after each step (progress, records); non-zero stops the job with that error */
  int (*on_step)(void *ud, const cl_train_step_info *s, cl_error *e);
  /* after a state of `steps_done` steps is on disk (records flushed here stay in step with
   * what a rerun resumes from) */
  int (*on_state)(void *ud, int64_t steps_done, cl_error *e);
  volatile int *interrupted; /* checked after each step: the job saves its state and stops */
} cl_train_job_hooks;

/* Records step info->step's numbers and draws (rows, types, templates already in h) in h. */
void cl_train_history_set(cl_train_history *h, const cl_train_step_info *info);
/* The info of recorded step s (steps: the job's total, nb: steps per epoch). */
void cl_train_history_step(const cl_train_history *h, int64_t s, int64_t steps, int nb, cl_train_step_info *info);

/* Steps of a job: epochs * floor(n / batch_size); an error naming the sizes when there are
 * none or too many. */
int cl_train_job_steps(const cl_train_job_spec *sp, int n, int64_t *steps, cl_error *e);

typedef struct cl_train_job_result {
  int64_t resumed_from; /* the step it started at (0: from the parent) */
  int64_t steps_done;
  int stopped; /* *interrupted stopped it, after saving its state */
} cl_train_job_result;

/* Trains from the parent checkpoint (cfg, parent: a checkpoint file cl_ckpt_load reads), or
 * from the latest state in work_dir when there is one, until every step is done, then
 * renames the final state to out_dir (which must not exist) and removes work_dir. Every
 * caption and (without augmentation) every image is read and checked before the first step. */
int cl_train_job_run(const cl_clip_config *cfg, const char *parent, const cl_train_data *d,
                     const cl_train_job_spec *sp, const char *work_dir, const char *out_dir,
                     const cl_train_job_hooks *h, cl_train_job_result *res, cl_error *e);

/* --- states on disk (cl_train_state.c; also `clade train --resume`) --- */

/* Writes work/state-<step>/ (cl_train_save's hub folder, extra as extra_file when given,
 * info_json as trainer.json when given), then makes it the latest (work/state, one rename)
 * and removes every other state-* folder; name receives "state-<step>". */
int cl_train_state_save(const char *work, int64_t step, cl_train_model *m, cl_train_optim *o, const char *extra_file,
                        const cl_tmap *extra, const char *info_json, char *name, size_t nname, cl_error *e);
/* The latest state's folder name in work, or "" when there is none. */
int cl_train_state_latest(const char *work, char *name, size_t nname, cl_error *e);
/* Removes every state-* folder of work but keep (NULL: all): a killed save's leftovers. */
void cl_train_state_clean(const char *work, const char *keep);
/* The work folders of unfinished trainings under root (trained/ beside a results database:
 * <key>.partial, locked while a job trains through <key>.lock), in name order. */
typedef struct cl_train_partial {
  char *key, *path;  /* the content key; root/<key>.partial */
  int64_t bytes;     /* every file in it */
  int in_use;        /* a live job holds its lock (probed without waiting, never created) */
} cl_train_partial;
/* *out (free with cl_train_partials_free) and *n; a root that does not exist has none. */
int cl_train_partials(const char *root, cl_train_partial **out, int *n, cl_error *e);
void cl_train_partials_free(cl_train_partial *p, int n);
/* The model from a checkpoint file and its optimizer (moments zero) with opts. */
int cl_train_open(const cl_clip_config *cfg, const char *ckpt, cl_backend *be, const cl_train_opts *opts,
                  cl_train_model **m, cl_train_optim **o, cl_error *e);
/* The model and optimizer (moments and step) of the state folder dir. */
int cl_train_state_open(const char *dir, const cl_clip_config *cfg, cl_backend *be, const cl_train_opts *opts,
                        cl_train_model **m, cl_train_optim **o, cl_error *e);

/* The spec as a JSON object (malloc'd): every field that changes the weights. */
char *cl_train_job_spec_json(const cl_train_job_spec *sp);

#endif
