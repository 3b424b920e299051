/* cl_train_state: training states on disk, each complete or absent, and resuming from them
 * (cl_train_job.h): a work folder holds `state`, the name of the latest complete state
 * folder (replaced in one rename), and that folder state-<step>/ with the hub folder
 * cl_train_save writes, an optional file of extra tensors and trainer.json. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_train_job.h"
#include "io/cl_ckpt.h"
#include "io/cl_safetensors.h"

/* rm -r of a state folder (flat: files only) */
static void remove_flat_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char *p = cl_asprintf("%s/%s", dir, de->d_name);
    unlink(p);
    free(p);
  }
  closedir(d);
  rmdir(dir);
}

void cl_train_state_clean(const char *work, const char *keep) {
  DIR *d = opendir(work);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strncmp(de->d_name, "state-", 6) || (keep && !strcmp(de->d_name, keep))) continue;
    char *p = cl_asprintf("%s/%s", work, de->d_name);
    remove_flat_dir(p);
    free(p);
  }
  closedir(d);
}

/* Bytes of every file under dir (a work folder: files and flat state-* folders). */
static int64_t dir_bytes(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int64_t n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char *p = cl_asprintf("%s/%s", dir, de->d_name);
    struct stat sb;
    if (lstat(p, &sb) == 0) {
      if (S_ISREG(sb.st_mode)) n += (int64_t)sb.st_size;
      else if (S_ISDIR(sb.st_mode) && depth < 4) n += dir_bytes(p, depth + 1);
    }
    free(p);
  }
  closedir(d);
  return n;
}

static int cmp_partial(const void *a, const void *b) {
  return strcmp(((const cl_train_partial *)a)->key, ((const cl_train_partial *)b)->key);
}

int cl_train_partials(const char *root, cl_train_partial **out, int *n, cl_error *e) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(root);
  if (!d) return errno == ENOENT || errno == ENOTDIR ? CL_OK : cl_err(e, CL_EIO, "%s: %s", root, strerror(errno));
  struct dirent *de;
  int cap = 0;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len <= 8 || strcmp(de->d_name + len - 8, ".partial")) continue;
    char *path = cl_asprintf("%s/%s", root, de->d_name);
    struct stat sb;
    if (lstat(path, &sb) || !S_ISDIR(sb.st_mode)) {
      free(path);
      continue;
    }
    if (*n == cap && !(*out = realloc(*out, (size_t)(cap = cap ? 2 * cap : 8) * sizeof **out))) abort();
    cl_train_partial *p = &(*out)[(*n)++];
    p->key = cl_asprintf("%.*s", (int)(len - 8), de->d_name);
    p->path = path;
    p->bytes = dir_bytes(path, 0);
    /* a training holds <key>.lock (flock) from before its work folder is made until it ends */
    char *lock = cl_asprintf("%s/%s.lock", root, p->key);
    int fd = open(lock, O_RDONLY | O_CLOEXEC);
    p->in_use = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (fd >= 0) close(fd); /* releases the probe's lock */
    free(lock);
  }
  closedir(d);
  if (*n > 1) qsort(*out, (size_t)*n, sizeof **out, cmp_partial);
  return CL_OK;
}

void cl_train_partials_free(cl_train_partial *p, int n) {
  for (int i = 0; i < n; i++) free(p[i].key), free(p[i].path);
  free(p);
}

static int write_atomic(const char *path, const char *text, cl_error *e) {
  char *tmp = cl_asprintf("%s.tmp", path);
  int rc = cl_write_file(tmp, text, strlen(text), e);
  if (!rc && rename(tmp, path)) rc = cl_err(e, CL_EIO, "%s: cannot write (%s)", path, strerror(errno));
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}

int cl_train_state_save(const char *work, int64_t step, cl_train_model *m, cl_train_optim *o, const char *extra_file,
                        const cl_tmap *extra, const char *info_json, char *name, size_t nname, cl_error *e) {
  snprintf(name, nname, "state-%lld", (long long)step);
  char *dir = cl_asprintf("%s/%s", work, name);
  remove_flat_dir(dir); /* a save of this step a kill cut short */
  int rc = mkdir(dir, 0777) ? cl_err(e, CL_EIO, "%s: cannot create (%s)", dir, strerror(errno)) : CL_OK;
  if (!rc) rc = cl_train_save(m, o, dir, e);
  if (!rc && extra && extra_file) {
    char *path = cl_asprintf("%s/%s", dir, extra_file);
    rc = cl_train_save_tensors(path, extra, NULL, e);
    free(path);
  }
  if (!rc && info_json) {
    char *path = cl_asprintf("%s/trainer.json", dir);
    rc = write_atomic(path, info_json, e);
    free(path);
  }
  if (!rc) { /* the state becomes the latest in one rename */
    char *path = cl_asprintf("%s/state", work);
    rc = write_atomic(path, name, e);
    free(path);
  }
  if (rc) cl_err_wrap(e, "saving the training state of step %lld in %s", (long long)step, work);
  else cl_train_state_clean(work, name);
  free(dir);
  return rc;
}

int cl_train_state_latest(const char *work, char *name, size_t nname, cl_error *e) {
  char *path = cl_asprintf("%s/state", work), *text = NULL;
  size_t len = 0;
  name[0] = 0;
  int rc = CL_OK;
  if (access(path, F_OK) == 0) {
    rc = cl_read_file(path, &text, &len, e);
    if (!rc && (len == 0 || len >= nname || strncmp(text, "state-", 6) || strchr(text, '/')))
      rc = cl_err(e, CL_EFORMAT, "%s: not a state name", path);
    if (!rc) snprintf(name, nname, "%s", text);
  }
  free(text);
  free(path);
  return rc;
}

int cl_train_open(const cl_clip_config *cfg, const char *ckpt, cl_backend *be, const cl_train_opts *opts,
                  cl_train_model **m, cl_train_optim **o, cl_error *e) {
  cl_tmap w;
  *m = NULL, *o = NULL;
  CL_TRY(cl_ckpt_load(ckpt, &w, e));
  int rc = cl_train_model_create(cfg, &w, be, m, e);
  cl_tmap_free(&w);
  if (rc) return cl_err_wrap(e, "%s", ckpt);
  return cl_train_optim_create(*m, opts, o, e);
}

int cl_train_state_open(const char *dir, const cl_clip_config *cfg, cl_backend *be, const cl_train_opts *opts,
                        cl_train_model **m, cl_train_optim **o, cl_error *e) {
  char *path = cl_asprintf("%s/open_clip_model.safetensors", dir);
  int rc = cl_train_open(cfg, path, be, opts, m, o, e);
  free(path);
  if (rc) return rc;
  cl_tmap t;
  path = cl_asprintf("%s/optimizer.safetensors", dir);
  if (!(rc = cl_st_load(path, &t, e))) {
    rc = cl_train_optim_import(*o, &t, e);
    cl_tmap_free(&t);
  }
  if (rc) cl_err_wrap(e, "%s", path);
  free(path);
  return rc;
}

/* ---- a job's history (draws.safetensors) ---- */

void cl_train_history_alloc(cl_train_history *h, int64_t cap, int batch, int crops) {
  memset(h, 0, sizeof *h);
  const size_t n = (size_t)(cap > 0 ? cap : 1), nb = n * (size_t)batch;
  h->batch = batch;
  h->rows = cl_xcalloc(nb, sizeof(int32_t));
  h->types = cl_xcalloc(nb, sizeof(int32_t));
  h->templates = cl_xcalloc(nb, sizeof(int32_t));
  if (crops) h->boxes = cl_xcalloc(nb * 4, sizeof(int32_t));
  h->loss = cl_xcalloc(n, sizeof(float));
  h->lr = cl_xcalloc(n, sizeof(double));
  h->grad_norm = cl_xcalloc(n, sizeof(double));
}

void cl_train_history_free(cl_train_history *h) {
  free(h->rows), free(h->types), free(h->templates), free(h->boxes);
  free(h->loss), free(h->lr), free(h->grad_norm);
  memset(h, 0, sizeof *h);
}

void cl_train_history_put(const cl_train_history *h, cl_tmap *t) {
  const int64_t sh[3] = {h->steps, h->batch, 4};
  cl_tmap_put_copy(t, "rows", CL_I32, 2, sh, h->rows);
  cl_tmap_put_copy(t, "types", CL_I32, 2, sh, h->types);
  cl_tmap_put_copy(t, "templates", CL_I32, 2, sh, h->templates);
  if (h->boxes) cl_tmap_put_copy(t, "boxes", CL_I32, 3, sh, h->boxes);
  cl_tmap_put_copy(t, "loss", CL_F32, 1, sh, h->loss);
  cl_tmap_put_copy(t, "lr", CL_F64, 1, sh, h->lr);
  cl_tmap_put_copy(t, "grad_norm", CL_F64, 1, sh, h->grad_norm);
}

int cl_train_history_load(const char *dir, cl_train_history *h, cl_error *e) {
  cl_tmap t;
  char *path = cl_asprintf("%s/draws.safetensors", dir);
  memset(h, 0, sizeof *h);
  int rc = cl_st_load(path, &t, e);
  const int loaded = rc == CL_OK;
  const cl_tensor *ty = rc ? NULL : cl_tmap_get(&t, "types");
  if (!rc && (!ty || ty->dtype != CL_I32 || ty->ndim != 2 || ty->shape[1] < 1 || ty->shape[1] > 1000000))
    rc = cl_err(e, CL_EFORMAT, "%s: types missing or not I32 [steps, batch]", path);
  if (!rc) {
    const int64_t steps = ty->shape[0], sh[3] = {ty->shape[0], ty->shape[1], 4};
    cl_train_history_alloc(h, steps, (int)ty->shape[1], cl_tmap_get(&t, "boxes") != NULL);
    h->steps = steps;
    struct {
      const char *name;
      cl_dtype dt;
      int ndim;
      void *dst;
      size_t size;
    } parts[] = {{"rows", CL_I32, 2, h->rows, sizeof(int32_t) * h->batch},
                 {"types", CL_I32, 2, h->types, sizeof(int32_t) * h->batch},
                 {"templates", CL_I32, 2, h->templates, sizeof(int32_t) * h->batch},
                 {"boxes", CL_I32, 3, h->boxes, sizeof(int32_t) * 4 * h->batch},
                 {"loss", CL_F32, 1, h->loss, sizeof(float)},
                 {"lr", CL_F64, 1, h->lr, sizeof(double)},
                 {"grad_norm", CL_F64, 1, h->grad_norm, sizeof(double)}};
    for (size_t k = 0; k < sizeof parts / sizeof *parts && !rc; k++) {
      if (!parts[k].dst) continue;
      const cl_tensor *x = cl_tmap_get(&t, parts[k].name);
      if (!x || x->dtype != parts[k].dt || !cl_shape_eq(x, parts[k].ndim, sh))
        rc = cl_err(e, CL_EFORMAT, "%s: %s missing, or not of the types' steps and batch", path, parts[k].name);
      else
        memcpy(parts[k].dst, x->data, (size_t)steps * parts[k].size);
    }
    if (rc) cl_train_history_free(h);
  }
  if (loaded) cl_tmap_free(&t);
  free(path);
  return rc;
}

void cl_train_history_copy(cl_train_history *dst, const cl_train_history *src) {
  const size_t n = (size_t)src->steps, nb = n * src->batch * sizeof(int32_t);
  memcpy(dst->rows, src->rows, nb);
  memcpy(dst->types, src->types, nb);
  memcpy(dst->templates, src->templates, nb);
  if (dst->boxes && src->boxes) memcpy(dst->boxes, src->boxes, 4 * nb);
  memcpy(dst->loss, src->loss, n * sizeof(float));
  memcpy(dst->lr, src->lr, n * sizeof(double));
  memcpy(dst->grad_norm, src->grad_norm, n * sizeof(double));
  dst->steps = src->steps;
}

void cl_train_history_set(cl_train_history *h, const cl_train_step_info *info) {
  const int64_t s = info->step;
  memcpy(h->rows + s * h->batch, info->rows, (size_t)h->batch * sizeof(int32_t));
  h->loss[s] = info->loss, h->lr[s] = info->lr, h->grad_norm[s] = info->grad_norm;
  if (s + 1 > h->steps) h->steps = s + 1;
}

void cl_train_history_step(const cl_train_history *h, int64_t s, int64_t steps, int nb, cl_train_step_info *info) {
  *info = (cl_train_step_info){.step = s, .steps = steps, .epoch = (int)(s / nb), .batch = h->batch,
                               .rows = h->rows + s * h->batch, .types = h->types + s * h->batch,
                               .templates = h->templates + s * h->batch, .loss = h->loss[s], .lr = h->lr[s],
                               .grad_norm = h->grad_norm[s]};
}
