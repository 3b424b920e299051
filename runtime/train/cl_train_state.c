/* cl_train_state: training states on disk, each complete or absent, and resuming from them
 * (cl_train_job.h): a work folder holds `state`, the name of the latest complete state
 * folder (replaced in one rename), and that folder state-<step>/ with the hub folder
 * cl_train_save writes, an optional file of extra tensors and trainer.json. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
