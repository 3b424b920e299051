/* cl_train_ckpt: a trained model as an open_clip hub folder, plus the optimizer's state
 * beside it; every file written to a temporary name and renamed, so a reader (or a crash)
 * sees the old file or the new one, never half of one. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_train.h"
#include "io/cl_safetensors.h"

static int replace(const char *tmp, const char *path, int rc, cl_error *e) {
  if (!rc && rename(tmp, path) != 0) rc = cl_err(e, CL_EIO, "%s: cannot write (%s)", path, strerror(errno));
  if (rc) unlink(tmp);
  return rc;
}

int cl_train_save_tensors(const char *path, const cl_tmap *t, const char *metadata_json, cl_error *e) {
  char *tmp = cl_asprintf("%s.tmp%d", path, (int)getpid());
  int rc = replace(tmp, path, cl_st_save(tmp, t, metadata_json, e), e);
  free(tmp);
  return rc;
}

static int save_text(const char *path, const char *text, cl_error *e) {
  char *tmp = cl_asprintf("%s.tmp%d", path, (int)getpid());
  int rc = replace(tmp, path, cl_write_file(tmp, text, strlen(text), e), e);
  free(tmp);
  return rc;
}

int cl_train_save(cl_train_model *m, cl_train_optim *o, const char *dir, cl_error *e) {
  cl_tmap t;
  cl_tmap_init(&t);
  char *path = cl_asprintf("%s/optimizer.safetensors", dir);
  int rc = cl_train_optim_export(o, &t, e);
  if (!rc) {
    /* safetensors metadata maps strings to strings: the JSON goes in whole, as "json" */
    char *js = cl_train_optim_json(o);
    cJSON *md = cJSON_CreateObject();
    cJSON_AddStringToObject(md, "json", js);
    char *mdtext = cJSON_PrintUnformatted(md);
    cJSON_Delete(md);
    rc = cl_train_save_tensors(path, &t, mdtext, e);
    free(mdtext);
    free(js);
  }
  cl_tmap_free(&t);
  free(path);
  cl_tmap_init(&t);
  path = cl_asprintf("%s/open_clip_model.safetensors", dir);
  if (!rc) rc = cl_train_export(m, 0, "", &t, e);
  if (!rc) rc = cl_train_save_tensors(path, &t, NULL, e);
  cl_tmap_free(&t);
  free(path);
  path = cl_asprintf("%s/open_clip_config.json", dir);
  char *json = rc ? NULL : cl_clip_config_to_json(cl_train_model_config(m));
  if (!rc) rc = save_text(path, json, e);
  free(json);
  free(path);
  return rc;
}
