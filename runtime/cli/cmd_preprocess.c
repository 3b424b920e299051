/* clade preprocess: open_clip's preprocess_val on image files, into a safetensors file
 * (tensor `pixels`, F32 [N,3,S,S]); with --augment SEED open_clip's training transform instead
 * (RandomResizedCrop, image k's box drawn from a generator seeded with SEED + k), with
 * --box L,T,W,H its crop + resize with that box for every image; the boxes go into the
 * metadata (`boxes`, [left, top, width, height] per image). Nothing is written unless every image succeeds, and
 * the output appears whole (written to a temporary name, then renamed). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_cli.h"
#include "image/cl_image.h"
#include "io/cl_safetensors.h"

/* "a,b,c" -> three floats. */
static int parse3(const char *s, float v[3]) {
  char *end;
  for (int i = 0; i < 3; i++) {
    errno = 0;
    v[i] = strtof(s, &end);
    if (end == s || errno) return -1;
    s = end;
    if (i < 2) {
      if (*s != ',') return -1;
      s++;
    }
  }
  return *s ? -1 : 0;
}

/* "l,t,w,h" -> a box with sides of 1..65535 and corners within +-65535. */
static int parse_box(const char *s, cl_img_box *b) {
  long v[4];
  char *end;
  for (int i = 0; i < 4; i++) {
    errno = 0;
    v[i] = strtol(s, &end, 10);
    if (end == s || errno || v[i] < -65535 || v[i] > 65535) return -1;
    s = end;
    if (i < 3 && *s++ != ',') return -1;
  }
  if (*s || v[2] < 1 || v[3] < 1) return -1;
  *b = (cl_img_box){(int)v[0], (int)v[1], (int)v[2], (int)v[3]};
  return 0;
}

static char *metadata(char **paths, int n, int size, cl_img_decode decode, const float mean[3], const float std[3],
                      const cl_img_box *boxes, int squash) {
  cJSON *md = cJSON_CreateObject(), *list = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(list, cJSON_CreateString(paths[i]));
  char *imgs = cJSON_PrintUnformatted(list), buf[256];
  cJSON_Delete(list);
  cJSON_AddStringToObject(md, "images", imgs);
  free(imgs);
  if (boxes) {
    snprintf(buf, sizeof buf, "RandomResizedCrop(%d, scale=(0.9, 1.0), ratio=(3/4, 4/3), bicubic) RGB ToTensor Normalize",
             size);
    cJSON *bl = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
      const int v[4] = {boxes[i].left, boxes[i].top, boxes[i].width, boxes[i].height};
      cJSON_AddItemToArray(bl, cJSON_CreateIntArray(v, 4));
    }
    char *bs = cJSON_PrintUnformatted(bl);
    cJSON_Delete(bl);
    cJSON_AddStringToObject(md, "boxes", bs);
    free(bs);
  } else if (squash) {
    snprintf(buf, sizeof buf, "RGB ToTensor Resize((%d, %d), bilinear, antialias) Normalize", size, size);
  } else {
    snprintf(buf, sizeof buf, "%sResize(%d, bicubic) CenterCrop(%d) RGB ToTensor Normalize",
             decode == CL_IMG_DECODE_DRAFT ? "draft(RGB) " : "", size, size);
  }
  cJSON_AddStringToObject(md, "transform", buf);
  cJSON_AddStringToObject(md, "decode", cl_img_decode_name(decode));
  snprintf(buf, sizeof buf, "[%.9g, %.9g, %.9g]", mean[0], mean[1], mean[2]);
  cJSON_AddStringToObject(md, "mean", buf);
  snprintf(buf, sizeof buf, "[%.9g, %.9g, %.9g]", std[0], std[1], std[2]);
  cJSON_AddStringToObject(md, "std", buf);
  char *s = cJSON_PrintUnformatted(md);
  cJSON_Delete(md);
  return s;
}

int cl_cmd_preprocess(int argc, char **argv) {
  const char *out = NULL;
  float mean[3] = CL_IMG_OPENAI_MEAN, std[3] = CL_IMG_OPENAI_STD;
  int size = 224, i;
  cl_img_decode decode = CL_IMG_DECODE_FULL;
  long long seed = -1; /* --augment */
  cl_img_box given = {0, 0, 0, 0}; /* --box */
  int squash = 0;                   /* --transform squash */
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == 0) break;
    if (i + 1 >= argc) {
      cl_cli_fail("preprocess: %s needs a value", a);
      return cl_cli_usage("preprocess");
    }
    const char *v = argv[++i];
    if (strcmp(a, "--out") == 0 || strcmp(a, "-o") == 0) {
      out = v;
    } else if (strcmp(a, "--mean") == 0 || strcmp(a, "--std") == 0) {
      float *dst = a[2] == 'm' ? mean : std;
      if (parse3(v, dst) != 0) {
        cl_cli_fail("preprocess: %s wants three numbers like 0.5,0.5,0.5, not '%s'", a, v);
        return 2;
      }
    } else if (strcmp(a, "--decode") == 0) {
      if (cl_img_decode_parse(v, &decode) != 0) {
        cl_cli_fail("preprocess: --decode is full or draft, not '%s'", v);
        return 2;
      }
    } else if (strcmp(a, "--augment") == 0) {
      char *end;
      errno = 0;
      seed = strtoll(v, &end, 10);
      if (*end || end == v || errno || seed < 0 || seed > (1LL << 53)) {
        cl_cli_fail("preprocess: --augment wants a seed from 0 to 2^53, not '%s'", v);
        return 2;
      }
    } else if (strcmp(a, "--box") == 0) {
      if (parse_box(v, &given) != 0) {
        cl_cli_fail("preprocess: --box wants LEFT,TOP,WIDTH,HEIGHT (sides from 1 to 65535), not '%s'", v);
        return 2;
      }
    } else if (strcmp(a, "--transform") == 0) {
      if (strcmp(v, "squash") && strcmp(v, "open_clip")) {
        cl_cli_fail("preprocess: --transform is open_clip or squash, not '%s'", v);
        return 2;
      }
      squash = !strcmp(v, "squash");
    } else if (strcmp(a, "--size") == 0) {
      char *end;
      long s = strtol(v, &end, 10);
      if (*end || s < 1 || s > 4096) {
        cl_cli_fail("preprocess: --size wants a number of pixels from 1 to 4096, not '%s'", v);
        return 2;
      }
      size = (int)s;
    } else {
      cl_cli_fail("preprocess: unknown option %s", a);
      return cl_cli_usage("preprocess");
    }
  }
  for (int c = 0; c < 3; c++)
    if (!(std[c] != 0)) {
      cl_cli_fail("preprocess: --std values must be non-zero");
      return 2;
    }
  const int train = seed >= 0 || given.width > 0;
  if (squash && (train || decode == CL_IMG_DECODE_DRAFT)) {
    cl_cli_fail("preprocess: --transform squash decodes images whole and has no boxes: not with %s",
                train ? (seed >= 0 ? "--augment" : "--box") : "--decode draft");
    return 2;
  }
  if (seed >= 0 && given.width > 0) {
    cl_cli_fail("preprocess: --augment draws the boxes; --box gives one: not both");
    return 2;
  }
  if (train && decode == CL_IMG_DECODE_DRAFT) {
    cl_cli_fail("preprocess: the training transform decodes images whole: no --decode draft with %s",
                seed >= 0 ? "--augment" : "--box");
    return 2;
  }
  char **paths = argv + i;
  int n = argc - i;
  if (!out || n < 1) {
    cl_cli_fail("preprocess: %s", !out ? "--out F.safetensors is required" : "no images given");
    return cl_cli_usage("preprocess");
  }

  const size_t per = (size_t)3 * size * size;
  float *pix = malloc(sizeof(float) * per * (size_t)n);
  cl_error *errs = calloc((size_t)n, sizeof(cl_error));
  int *rcs = calloc((size_t)n, sizeof(int));
  cl_img_box *boxes = train ? calloc((size_t)n, sizeof *boxes) : NULL;
  if (!pix || !errs || !rcs || (train && !boxes)) {
    cl_cli_fail("preprocess: out of memory for %d images of %dx%d", n, size, size);
    free(pix);
    free(errs);
    free(rcs);
    free(boxes);
    return 1;
  }
  /* Images are independent; the library keeps no shared state. */
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < n; k++) {
    if (squash) {
      rcs[k] = cl_img_squash_preprocess_file(paths[k], size, mean, std, pix + per * (size_t)k, &errs[k]);
      continue;
    }
    if (!train) {
      rcs[k] = cl_img_preprocess_file_decode(paths[k], size, decode, mean, std, pix + per * (size_t)k, &errs[k]);
      continue;
    }
    cl_pyrand r;
    cl_pyrand_seed(&r, seed + k);
    boxes[k] = given;
    rcs[k] = cl_img_train_preprocess_file(paths[k], size, NULL, seed >= 0 ? &r : NULL, mean, std,
                                          pix + per * (size_t)k, &boxes[k], &errs[k]);
  }
  int bad = 0, first = -1;
  for (int k = 0; k < n; k++)
    if (rcs[k] != CL_OK && !bad++) first = k;
  int rc = 0;
  if (bad) {
    /* One line: the first failure (its message starts with the file), then how many more. */
    if (bad > 1)
      cl_cli_fail("%s (and %d more failing image%s; nothing written)", errs[first].msg, bad - 1,
                  bad > 2 ? "s" : "");
    else
      cl_cli_fail("%s", errs[first].msg);
    rc = 1;
  } else {
    cl_tmap m;
    cl_tmap_init(&m);
    cl_tensor t = {.dtype = CL_F32, .ndim = 4, .shape = {n, 3, size, size}, .data = pix};
    cl_tmap_put(&m, "pixels", t);
    char *md = metadata(paths, n, size, decode, mean, std, boxes, squash);
    size_t tl = strlen(out) + 32;
    char *tmp = malloc(tl);
    snprintf(tmp, tl, "%s.tmp.%ld", out, (long)getpid());
    cl_error e = {0};
    if (cl_st_save(tmp, &m, md, &e) != CL_OK) {
      cl_cli_fail("%s", e.msg);
      unlink(tmp);
      rc = 1;
    } else if (rename(tmp, out) != 0) {
      cl_cli_fail("%s: %s", out, strerror(errno));
      unlink(tmp);
      rc = 1;
    }
    free(tmp);
    free(md);
    cl_tmap_free(&m); /* pix is not the map's to free */
  }
  free(pix);
  free(errs);
  free(rcs);
  free(boxes);
  return rc;
}
