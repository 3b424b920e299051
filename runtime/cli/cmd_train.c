#define _GNU_SOURCE
/* clade grad / clade train: one forward and backward of open_clip's ClipLoss on pairs
 * (image i <-> line i), or several AdamW steps over consecutive full batches of them, written
 * as an open_clip hub folder. Everything the run needs (config, weights, every image, every
 * text) is read and checked before the first step. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_cli.h"
#include "io/cl_ckpt.h"
#include "io/cl_safetensors.h"
#include "model/cl_encoder.h"
#include "train/cl_train.h"
#include "train/cl_train_job.h"

typedef struct train_args {
  cl_encoder_spec spec;
  const char *texts, *out;
  const char **images;
  int nimg;
  const char **freeze;
  int nfreeze;
  int steps, warmup, batch, projections_only, json_log, save_every, resume;
  double lr, wd, clip, beta1, beta2, eps;
} train_args;

static int parse_num(const char *cmd, const char *flag, const char *s, double lo, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || !isfinite(v) || v < lo) {
    cl_cli_fail("%s: %s %s: expected a number >= %g", cmd, flag, s, lo);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_int(const char *cmd, const char *flag, const char *s, int lo, int *out) {
  double v;
  if (parse_num(cmd, flag, s, lo, &v)) return -1;
  if (v != floor(v) || v > 1e9) {
    cl_cli_fail("%s: %s %s: expected an integer >= %d", cmd, flag, s, lo);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* Returns 0, or the exit code (2) after saying what is wrong. */
static int parse_args(int argc, char **argv, int train, train_args *a) {
  const char *cmd = argv[0];
  memset(a, 0, sizeof *a);
  a->images = cl_xcalloc((size_t)argc, sizeof(char *));
  a->freeze = cl_xcalloc((size_t)argc, sizeof(char *));
  a->wd = 0.2, a->beta1 = 0.9, a->beta2 = 0.98, a->eps = 1e-6; /* open_clip's for ViT models */
  a->lr = -1;
  a->steps = -1;
  int in_images = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const int takes = !strcmp(s, "--model") || !strcmp(s, "--config") || !strcmp(s, "--texts") ||
                      !strcmp(s, "--out") ||
                      (train && (!strcmp(s, "--steps") || !strcmp(s, "--lr") || !strcmp(s, "--weight-decay") ||
                                 !strcmp(s, "--warmup") || !strcmp(s, "--batch-size") || !strcmp(s, "--clip-grad") ||
                                 !strcmp(s, "--freeze") || !strcmp(s, "--beta1") || !strcmp(s, "--beta2") ||
                                 !strcmp(s, "--eps") || !strcmp(s, "--save-every")));
    if (takes) {
      in_images = 0;
      if (i + 1 >= argc) {
        cl_cli_fail("%s: %s needs a value", cmd, s);
        return 2;
      }
      const char *v = argv[++i];
      int bad = 0;
      if (!strcmp(s, "--model")) a->spec.path = v;
      else if (!strcmp(s, "--config")) a->spec.config = v;
      else if (!strcmp(s, "--texts")) a->texts = v;
      else if (!strcmp(s, "--out")) a->out = v;
      else if (!strcmp(s, "--freeze")) a->freeze[a->nfreeze++] = v;
      else if (!strcmp(s, "--steps")) bad = parse_int(cmd, s, v, 1, &a->steps);
      else if (!strcmp(s, "--warmup")) bad = parse_int(cmd, s, v, 0, &a->warmup);
      else if (!strcmp(s, "--batch-size")) bad = parse_int(cmd, s, v, 0, &a->batch);
      else if (!strcmp(s, "--lr")) bad = parse_num(cmd, s, v, 0, &a->lr);
      else if (!strcmp(s, "--weight-decay")) bad = parse_num(cmd, s, v, 0, &a->wd);
      else if (!strcmp(s, "--clip-grad")) bad = parse_num(cmd, s, v, 0, &a->clip);
      else if (!strcmp(s, "--beta1")) bad = parse_num(cmd, s, v, 0, &a->beta1);
      else if (!strcmp(s, "--beta2")) bad = parse_num(cmd, s, v, 0, &a->beta2);
      else if (!strcmp(s, "--eps")) bad = parse_num(cmd, s, v, 0, &a->eps);
      else if (!strcmp(s, "--save-every")) bad = parse_int(cmd, s, v, 1, &a->save_every);
      if (bad) return 2;
    } else if (!strcmp(s, "--images")) {
      in_images = 1;
    } else if (train && !strcmp(s, "--projections-only")) {
      in_images = 0, a->projections_only = 1;
    } else if (train && !strcmp(s, "--json-log")) {
      in_images = 0, a->json_log = 1;
    } else if (train && !strcmp(s, "--resume")) {
      in_images = 0, a->resume = 1;
    } else if (in_images && s[0] != '-') {
      a->images[a->nimg++] = s;
    } else {
      cl_cli_fail("%s: unexpected argument %s", cmd, s);
      return cl_cli_usage(cmd);
    }
  }
  if (!a->spec.path || !a->out || !a->texts || !a->nimg) {
    cl_cli_fail("%s: --model, --images, --texts and --out are required", cmd);
    return cl_cli_usage(cmd);
  }
  if (train && (a->steps < 0 || a->lr < 0)) {
    cl_cli_fail("%s: --steps and --lr are required", cmd);
    return cl_cli_usage(cmd);
  }
  return 0;
}

/* The pairs: every image preprocessed (open_clip's preprocess_val) and every line tokenised. */
typedef struct pairs {
  int n;
  float *pixels;
  int32_t *ids;
} pairs;

static int load_pairs(const train_args *a, const cl_clip_config *cfg, pairs *p, cl_error *e) {
  char *buf = NULL;
  char **lines = NULL;
  int nt = 0;
  cl_tok *tok = NULL;
  memset(p, 0, sizeof *p);
  if (cl_cli_read_lines(a->texts, &buf, &lines, &nt, e)) return e->code;
  int rc = CL_OK;
  if (nt != a->nimg) {
    rc = cl_err(e, CL_EINVAL, "%s: %d lines for %d images (line i is image i's caption)", a->texts, nt, a->nimg);
    goto done;
  }
  const int S = cfg->vision.image_size, C = cfg->text.context_length;
  const size_t per = 3 * (size_t)S * S;
  p->n = nt;
  p->pixels = cl_xmalloc((size_t)nt * per * sizeof(float));
  p->ids = cl_xmalloc((size_t)nt * C * sizeof(int32_t));
  if ((rc = cl_tok_load(NULL, &tok, e))) goto done;
  for (int i = 0; i < nt && !rc; i++)
    if (cl_tok_encode(tok, lines[i], p->ids + (size_t)i * C, C, e) < 0) {
      rc = e->code ? e->code : CL_EINVAL;
      cl_err_wrap(e, "%s, line %d", a->texts, i + 1);
    }
  for (int i = 0; i < nt && !rc; i++)
    rc = cl_img_preprocess_file(a->images[i], S, cfg->mean, cfg->std, p->pixels + (size_t)i * per, e);
done:
  cl_tok_free(tok);
  free(lines);
  free(buf);
  return rc;
}

static void free_pairs(pairs *p) {
  free(p->pixels);
  free(p->ids);
}

/* What both commands hold: the arguments, the model on the CPU backend, the pairs. */
typedef struct session {
  train_args a;
  cl_clip_config cfg;
  cl_backend *be;
  cl_train_model *m;
  pairs p;
  cl_error e;
} session;

/* Parses the arguments; 0, or the exit code after saying what is wrong. */
static int session_args(session *s, int argc, char **argv, int train) {
  memset(s, 0, sizeof *s);
  int rc = parse_args(argc, argv, train, &s->a);
  if (rc) free(s->a.images), free(s->a.freeze);
  return rc;
}

/* Resolves the model as `clade embed` does and loads it for training on the CPU. */
static int session_model(session *s) {
  char ckpt[4096];
  cl_tmap w;
  cl_error *e = &s->e;
  if (cl_encoder_locate(&s->a.spec, ckpt, sizeof ckpt, &s->cfg, e)) return e->code;
  if (cl_ckpt_load(ckpt, &w, e)) return e->code;
  int rc = cl_backend_cpu_create(&s->be, e);
  if (!rc) rc = cl_train_model_create(&s->cfg, &w, s->be, &s->m, e);
  if (rc) cl_err_wrap(e, "%s", ckpt);
  cl_tmap_free(&w);
  return rc;
}

/* Says the error (rc != 0), frees everything; returns the exit code. */
static int session_close(session *s, int rc) {
  if (rc) cl_cli_fail("%s", s->e.msg);
  free_pairs(&s->p);
  cl_train_model_free(s->m);
  cl_backend_destroy(s->be);
  free(s->a.images), free(s->a.freeze);
  return rc ? 1 : 0;
}

int cl_cmd_grad(int argc, char **argv) {
  session s;
  int rc = session_args(&s, argc, argv, 0);
  if (rc) return rc;
  cl_tmap out;
  cl_tmap_init(&out);
  float loss = 0;
  rc = session_model(&s) || load_pairs(&s.a, &s.cfg, &s.p, &s.e) ||
       cl_train_forward_backward(s.m, s.p.pixels, s.p.ids, s.p.n, &loss, NULL, &s.e);
  if (!rc) {
    cl_tmap_put_copy(&out, "loss", CL_F32, 0, NULL, &loss);
    rc = cl_train_export(s.m, 1, "grad.", &out, &s.e) || cl_train_save_tensors(s.a.out, &out, NULL, &s.e);
  }
  cl_tmap_free(&out);
  return session_close(&s, rc);
}

static int make_dir(const char *dir, cl_error *e) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return cl_err(e, CL_EIO, "%s: exists and is not a folder", dir);
    return access(dir, W_OK) == 0 ? CL_OK : cl_err(e, CL_EIO, "%s: not writable", dir);
  }
  if (mkdir(dir, 0777) != 0) return cl_err(e, CL_EIO, "%s: cannot create (%s)", dir, strerror(errno));
  return CL_OK;
}

/* What a saved state must have been made with to be resumed: the checkpoint, config, every
 * optimizer option, the images named and the texts (hashed). */
static int inputs_key(session *s, cl_train_optim *o, char key[41], cl_error *e) {
  char ckpt[4096], h[41];
  cl_clip_config cfg;
  CL_TRY(cl_encoder_locate(&s->a.spec, ckpt, sizeof ckpt, &cfg, e));
  CL_TRY(cl_hash_file(ckpt, h, e));
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return cl_err(e, CL_ENOMEM, "out of memory");
  char *cj = cl_clip_config_to_json(&s->cfg), *oj = cl_train_optim_json(o);
  fprintf(f, "clade train --resume v1%c%s%c%s%c%s%c", 0, h, 0, cj, 0, oj, 0);
  free(cj), free(oj);
  for (int i = 0; i < s->a.nimg; i++) fprintf(f, "%s%c", s->a.images[i], 0);
  char *texts = NULL;
  size_t tn = 0;
  int rc = cl_read_file(s->a.texts, &texts, &tn, e);
  if (!rc) fwrite(texts, 1, tn, f);
  free(texts);
  fclose(f);
  if (!rc) rc = cl_hash_buf(buf, len, key, e);
  free(buf);
  return rc;
}

/* The saved state to resume from (--resume): the model and optimizer of DIR/.state's latest
 * state, checked to come from the same inputs. *start: its step (0 when there is none). */
static int resume_state(session *s, const cl_train_opts *opts, cl_train_optim **o, const char *work, const char *key,
                        int *start, cl_error *e) {
  char name[64];
  *start = 0;
  CL_TRY(cl_train_state_latest(work, name, sizeof name, e));
  if (!name[0]) {
    fprintf(stderr, "clade: train: no saved state in %s: starting from the model\n", work);
    return CL_OK;
  }
  char *dir = cl_asprintf("%s/%s", work, name), *info = cl_asprintf("%s/trainer.json", dir), *text = NULL;
  size_t n = 0;
  int rc = cl_read_file(info, &text, &n, e);
  cJSON *j = rc ? NULL : cJSON_Parse(text);
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "inputs");
  if (!rc && (!cJSON_IsString(k) || strcmp(k->valuestring, key)))
    rc = cl_err(e, CL_EINVAL,
                "%s was saved by a training with other inputs (model, config, images, texts or options): "
                "rerun with the same arguments, or without --resume to start again", dir);
  cJSON_Delete(j);
  free(text), free(info);
  if (!rc) {
    cl_train_optim_free(*o), *o = NULL;
    cl_train_model_free(s->m), s->m = NULL;
    rc = cl_train_state_open(dir, &s->cfg, s->be, opts, &s->m, o, e);
  }
  if (!rc) {
    *start = cl_train_optim_steps(*o);
    fprintf(stderr, "clade: train: resuming from step %d of %d (%s)\n", *start, opts->steps, dir);
  }
  free(dir);
  return rc;
}

static void remove_work(const char *work) {
  cl_train_state_clean(work, NULL);
  char *p = cl_asprintf("%s/state", work);
  unlink(p);
  free(p);
  rmdir(work);
}

int cl_cmd_train(int argc, char **argv) {
  session s;
  int rc = session_args(&s, argc, argv, 1);
  if (rc) return rc;
  const train_args *a = &s.a;
  cl_error *e = &s.e;
  cl_train_optim *o = NULL;
  cl_train_opts opts;
  cl_train_opts_default(&opts);
  opts.lr = a->lr, opts.weight_decay = a->wd, opts.steps = a->steps, opts.warmup = a->warmup, opts.clip_grad = a->clip;
  opts.freeze = a->freeze, opts.nfreeze = a->nfreeze, opts.projections_only = a->projections_only;
  opts.beta1 = a->beta1, opts.beta2 = a->beta2, opts.eps = a->eps;
  const int B = a->batch ? a->batch : a->nimg;
  opts.batch_size = B;
  if (B < 2) rc = cl_err(e, CL_EINVAL, "batch size %d: contrastive training needs at least 2 pairs per batch", B);
  else if (B > a->nimg) rc = cl_err(e, CL_EINVAL, "batch size %d is larger than the %d pairs given", B, a->nimg);
  else rc = make_dir(a->out, e) || session_model(&s) || cl_train_optim_create(s.m, &opts, &o, e) ||
            load_pairs(a, &s.cfg, &s.p, e);
  /* states for --resume in DIR/.state: every --save-every steps */
  char *work = cl_asprintf("%s/.state", a->out), key[41] = "";
  int start = 0;
  if (!rc && (a->resume || a->save_every)) rc = inputs_key(&s, o, key, e);
  if (!rc && a->resume) rc = resume_state(&s, &opts, &o, work, key, &start, e);
  if (!rc && !a->resume) cl_train_state_clean(work, NULL); /* a fresh start: older states go */
  if (!rc && a->save_every && mkdir(work, 0777) && errno != EEXIST)
    rc = cl_err(e, CL_EIO, "%s: cannot create (%s)", work, strerror(errno));
  const int nbatch = s.p.n / B, C = s.cfg.text.context_length;
  const size_t per = 3 * (size_t)s.cfg.vision.image_size * s.cfg.vision.image_size;
  for (int step = start; step < a->steps && !rc; step++) {
    const int b0 = (step % nbatch) * B; /* consecutive full batches, in the given order */
    float loss = 0;
    double lr = 0, norm = -1;
    if (cl_train_forward_backward(s.m, s.p.pixels + (size_t)b0 * per, s.p.ids + (size_t)b0 * C, B, &loss, NULL, e) ||
        cl_train_optim_step(o, &lr, &norm, e)) {
      rc = cl_err_wrap(e, "step %d", step);
      break;
    }
    if (a->json_log) {
      char lrs[32]; /* the shortest text that reads back as lr: 0.0005, not 0.00050000000000000001 */
      for (int digits = 15; digits <= 17; digits++)
        if (snprintf(lrs, sizeof lrs, "%.*g", digits, lr), strtod(lrs, NULL) == lr) break;
      printf("{\"step\":%d,\"loss\":%.9g,\"lr\":%s", step, loss, lrs);
      if (norm >= 0) printf(",\"grad_norm\":%.9g", norm);
      printf("}\n");
      fflush(stdout);
    } else {
      fprintf(stderr, "step %d/%d: loss %.6f, lr %.3g\n", step + 1, a->steps, loss, lr);
    }
    if (a->save_every && (step + 1) % a->save_every == 0 && step + 1 < a->steps) {
      char info[128], name[64];
      snprintf(info, sizeof info, "{\"step\": %d, \"inputs\": \"%s\"}\n", step + 1, key);
      rc = cl_train_state_save(work, step + 1, s.m, o, NULL, NULL, info, name, sizeof name, e);
    }
  }
  if (!rc) rc = cl_train_save(s.m, o, a->out, e);
  if (!rc) remove_work(work);
  free(work);
  cl_train_optim_free(o);
  return session_close(&s, rc);
}
