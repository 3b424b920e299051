/* Parity: image decoding and open_clip's preprocess_val against the fixtures made with
 * Pillow 9.4 / torchvision 0.14 (preprocess.safetensors, preprocess_png.safetensors): every
 * stage byte for byte, the normalised tensor within 1e-6 (expected exact). Plus the
 * errors a broken file must give. */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "cl_test.h"
#include "image/cl_image.h"
#include "io/cl_safetensors.h"

static const char *JPEGS[6] = {
    "img0_cat_224x224.jpg",      "img1_cat_97x131_progressive.jpg",
    "img2_raccoon_1024x768_gray.jpg", "img3_raccoon_640x480.jpg",
    "img4_human_300x500_444.jpg", "img5_human_400x300_cmyk.jpg"};
static const char *PNGS[3] = {"png0_gray_300x260.png", "png1_palette_350x250.png",
                              "png2_rgba_256x320.png"};

static double g_max_pix_diff = 0;

/* Compare an image's bytes ([H,W,C] uint8) with a fixture tensor; show the first mismatch. */
static void check_u8(const char *what, const cl_tmap *m, const char *key, const uint8_t *data,
                     int h, int w, int c) {
  const cl_tensor *t = cl_tmap_get(m, key);
  CHECK_MSG(t != NULL, "%s: fixture has no %s", what, key);
  if (!t) return;
  int64_t shape[3] = {h, w, c};
  char sb[64];
  CHECK_MSG(t->dtype == CL_U8 && cl_shape_eq(t, 3, shape), "%s: %s is %s %s, ours [%d,%d,%d]",
            what, key, cl_dtype_name(t->dtype), cl_shape_str(t, sb, sizeof sb), h, w, c);
  if (t->dtype != CL_U8 || !cl_shape_eq(t, 3, shape)) return;
  const uint8_t *ref = t->data;
  size_t n = (size_t)h * w * c, bad = 0, first = 0;
  int maxd = 0;
  for (size_t i = 0; i < n; i++)
    if (data[i] != ref[i]) {
      if (!bad++) first = i;
      int d = abs((int)data[i] - (int)ref[i]);
      if (d > maxd) maxd = d;
    }
  CHECK_MSG(bad == 0, "%s: %s differs in %zu of %zu bytes (max %d); first at y=%zu x=%zu c=%zu: "
            "ours %d, reference %d", what, key, bad, n, maxd, first / c / w, first / c % w,
            first % c, data[first], ref[first]);
}

static void check_f32(const char *what, const cl_tensor *t, const float *got, size_t n) {
  CHECK_MSG(t != NULL && t->dtype == CL_F32 && (size_t)cl_tensor_numel(t) >= n,
            "%s: no F32 reference of %zu values", what, n);
  if (!t || t->dtype != CL_F32) return;
  float *ref = malloc(sizeof(float) * n); /* mmap'd tensors need not be 4-byte aligned */
  memcpy(ref, t->data, sizeof(float) * n);
  double maxd = 0;
  size_t at = 0, ndiff = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)ref[i]);
    if (d != 0) ndiff++;
    if (d > maxd) maxd = d, at = i;
  }
  if (maxd > g_max_pix_diff) g_max_pix_diff = maxd;
  printf("  %-28s max |diff| %.3g (%zu of %zu values differ)\n", what, maxd, ndiff, n);
  CHECK_MSG(maxd <= 1e-6, "%s: max |diff| %g at %zu: ours %.9g, reference %.9g", what, maxd, at,
            got[at], ref[at]);
  /* torch's float32 ops are reproduced exactly, so demand bit equality, not just 1e-6. */
  CHECK_MSG(ndiff == 0, "%s: %zu values not bit-identical (max |diff| %g)", what, ndiff, maxd);
  free(ref);
}

/* The fixture shows a resized P image expanded to RGBA through its palette. */
static uint8_t *p_to_rgba(const cl_img *im) {
  size_t n = (size_t)im->width * im->height;
  uint8_t *o = malloc(n * 4);
  for (size_t i = 0; i < n; i++) memcpy(o + 4 * i, im->palette + 4 * (size_t)im->data[i], 4);
  return o;
}

/* Every stage of one image; tensors under prefix (e.g. "img3."). */
static void check_image(const cl_tmap *m, const char *file, const char *prefix, int has_decoded,
                        float *pix_out) {
  char path[4096], rel[512], key[128], what[160];
  snprintf(rel, sizeof rel, "images/%s", file);
  cl_test_fixture(path, sizeof path, rel);
  cl_error e = {0};
  cl_img im = {0}, rgb = {0}, rs = {0}, cr = {0}, crgb = {0};
  int rc = cl_img_decode_file(path, &im, &e);
  CHECK_OK(rc, e);
  if (rc) return;
  printf("%s: %dx%d mode %s\n", file, im.width, im.height, cl_img_mode_name(im.mode));

  if (has_decoded) {
    CHECK_OK(cl_img_to_rgb(&im, &rgb, &e), e);
    snprintf(key, sizeof key, "%sdecoded_rgb", prefix);
    snprintf(what, sizeof what, "%s decode", file);
    if (rgb.data) check_u8(what, m, key, rgb.data, rgb.height, rgb.width, 3);
  } else {
    snprintf(key, sizeof key, "%smode", prefix);
    const cl_tensor *mt = cl_tmap_get(m, key);
    char mode[8] = {0};
    if (mt) memcpy(mode, mt->data, cl_tensor_nbytes(mt) < 7 ? cl_tensor_nbytes(mt) : 7);
    for (int k = (int)strlen(mode) - 1; k >= 0 && mode[k] == ' '; k--) mode[k] = 0;
    CHECK_STR(cl_img_mode_name(im.mode), mode);
  }

  CHECK_OK(cl_img_resize_shorter(&im, 224, &rs, &e), e);
  if (rs.data) {
    snprintf(key, sizeof key, "%sresized", prefix);
    snprintf(what, sizeof what, "%s resize", file);
    if (rs.mode == CL_IMG_P) {
      uint8_t *x = p_to_rgba(&rs);
      check_u8(what, m, key, x, rs.height, rs.width, 4);
      free(x);
    } else {
      check_u8(what, m, key, rs.data, rs.height, rs.width, rs.channels);
    }
    CHECK_OK(cl_img_center_crop(&rs, 224, &cr, &e), e);
  }
  if (cr.data) {
    CHECK_OK(cl_img_to_rgb(&cr, &crgb, &e), e);
    snprintf(key, sizeof key, "%scropped_rgb", prefix);
    snprintf(what, sizeof what, "%s crop+rgb", file);
    if (crgb.data) check_u8(what, m, key, crgb.data, 224, 224, 3);
  }
  float *pix = malloc(sizeof(float) * 3 * 224 * 224), *fused = malloc(sizeof(float) * 3 * 224 * 224);
  if (crgb.data) {
    cl_img_normalize(&crgb, NULL, NULL, pix);
    snprintf(key, sizeof key, "%spixel_values", prefix);
    snprintf(what, sizeof what, "%s pixels", file);
    check_f32(what, cl_tmap_get(m, key), pix, 3 * 224 * 224);
  }
  /* The fused pipeline (resize only the crop window) must give the very same floats. */
  rc = cl_img_preprocess_file(path, 224, NULL, NULL, fused, &e);
  CHECK_OK(rc, e);
  if (rc == 0 && crgb.data)
    CHECK_MSG(memcmp(pix, fused, sizeof(float) * 3 * 224 * 224) == 0,
              "%s: fused preprocess differs from the staged one", file);
  if (pix_out && rc == 0) memcpy(pix_out, fused, sizeof(float) * 3 * 224 * 224);
  free(pix);
  free(fused);
  cl_img_free(&im);
  cl_img_free(&rgb);
  cl_img_free(&rs);
  cl_img_free(&cr);
  cl_img_free(&crgb);
}

/* img5 converted to RGB before resizing: the fixture keeps that variant to show it differs. */
static void check_rgb_first(const cl_tmap *m) {
  char path[4096];
  cl_test_fixture(path, sizeof path, "images/img5_human_400x300_cmyk.jpg");
  cl_error e = {0};
  cl_img im = {0}, rgb = {0}, cr = {0};
  CHECK_OK(cl_img_decode_file(path, &im, &e), e);
  CHECK_OK(cl_img_to_rgb(&im, &rgb, &e), e);
  CHECK_OK(cl_img_resize_crop(&rgb, 224, &cr, &e), e);
  if (cr.data) {
    float *pix = malloc(sizeof(float) * 3 * 224 * 224);
    cl_img_normalize(&cr, NULL, NULL, pix);
    check_f32("img5 rgb-first variant", cl_tmap_get(m, "img5.pixel_values_rgb_first"), pix,
              3 * 224 * 224);
    const cl_tensor *native = cl_tmap_get(m, "img5.pixel_values");
    CHECK(native && memcmp(native->data, pix, sizeof(float) * 3 * 224 * 224) != 0);
    free(pix);
  }
  cl_img_free(&im);
  cl_img_free(&rgb);
  cl_img_free(&cr);
}

/* ---- faults: each must fail cleanly with the path in the message ---- */

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

static void expect_fail(const char *path, const char *why) {
  cl_error e = {0};
  cl_img im = {0};
  int rc = cl_img_decode_file(path, &im, &e);
  CHECK_MSG(rc != CL_OK, "%s: decoding %s succeeded", why, path);
  CHECK_MSG(rc == CL_OK || rc == CL_EIO || rc == CL_EFORMAT || rc == CL_EUNSUP,
            "%s: code %d (%s)", why, rc, cl_strcode(rc));
  CHECK_MSG(rc == CL_OK || strstr(e.msg, path) != NULL, "%s: message lacks the path: %s", why,
            e.msg);
  printf("  fault %-22s -> %s: %s\n", why, cl_strcode(rc), e.msg);
  if (rc == CL_OK) cl_img_free(&im);
  float *pix = malloc(sizeof(float) * 3 * 224 * 224);
  e.msg[0] = 0;
  rc = cl_img_preprocess_file(path, 224, NULL, NULL, pix, &e);
  CHECK_MSG(rc != CL_OK && strstr(e.msg, path), "%s: preprocess gave %d: %s", why, rc, e.msg);
  free(pix);
}

static void check_faults(void) {
  char src[4096], dir[] = "/tmp/clade_img_faultXXXXXX", p[4200];
  if (!mkdtemp(dir)) {
    CHECK_MSG(0, "mkdtemp failed");
    return;
  }
  char *buf = NULL;
  size_t n = 0;
  cl_error e = {0};
  const char *srcs[3] = {"images/img3_raccoon_640x480.jpg", "images/img1_cat_97x131_progressive.jpg",
                         "images/png2_rgba_256x320.png"};
  const char *names[3] = {"trunc_baseline.jpg", "trunc_progressive.jpg", "trunc.png"};
  for (int i = 0; i < 3; i++) {
    CHECK_OK(cl_read_file(cl_test_fixture(src, sizeof src, srcs[i]), &buf, &n, &e), e);
    if (!buf) continue;
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    write_bytes(p, buf, n / 2);
    expect_fail(p, names[i]);
    unlink(p);
    if (i == 0) { /* a file cut inside its header */
      snprintf(p, sizeof p, "%s/header_only.jpg", dir);
      write_bytes(p, buf, 200);
      expect_fail(p, "header_only.jpg");
      unlink(p);
      /* scan data overwritten with garbage past the middle: corrupt, then cut */
      snprintf(p, sizeof p, "%s/garbled.jpg", dir);
      for (size_t k = n / 3; k < n; k++) buf[k] = (char)(k * 2654435761u >> 13);
      write_bytes(p, buf, n);
      cl_img im = {0};
      cl_error e2 = {0};
      int rc = cl_img_decode_file(p, &im, &e2); /* may decode with warnings, as PIL does */
      CHECK_MSG(rc == CL_OK || strstr(e2.msg, p), "garbled JPEG: %s", e2.msg);
      printf("  garbled.jpg             -> %s%s%s\n", cl_strcode(rc), rc ? ": " : "", rc ? e2.msg : "");
      cl_img_free(&im);
      unlink(p);
    }
    free(buf);
    buf = NULL;
  }
  /* random bytes, random bytes behind a JPEG / PNG signature, empty, missing, a directory */
  unsigned char rnd[4096];
  uint32_t s = 12345;
  for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)((s = s * 1664525u + 1013904223u) >> 24);
  snprintf(p, sizeof p, "%s/random.bin", dir);
  write_bytes(p, rnd, sizeof rnd);
  expect_fail(p, "random bytes");
  unlink(p);
  memcpy(rnd, "\xFF\xD8\xFF", 3);
  snprintf(p, sizeof p, "%s/random.jpg", dir);
  write_bytes(p, rnd, sizeof rnd);
  expect_fail(p, "JPEG magic + noise");
  unlink(p);
  memcpy(rnd, "\x89PNG\r\n\x1a\n", 8);
  snprintf(p, sizeof p, "%s/random.png", dir);
  write_bytes(p, rnd, sizeof rnd);
  expect_fail(p, "PNG magic + noise");
  unlink(p);
  snprintf(p, sizeof p, "%s/anim.gif", dir);
  write_bytes(p, "GIF89a\x01\x00\x01\x00", 10);
  expect_fail(p, "GIF");
  unlink(p);
  snprintf(p, sizeof p, "%s/empty.jpg", dir);
  write_bytes(p, "", 0);
  expect_fail(p, "empty file");
  unlink(p);
  snprintf(p, sizeof p, "%s/missing.jpg", dir);
  expect_fail(p, "missing file");
  expect_fail(dir, "a directory");
  rmdir(dir);
}

/* Damage PIL tolerates must decode to the same pixels; damage it rejects must fail. */
static void check_jpeg_edges(void) {
  char src[4096], p[] = "/tmp/clade_img_edgeXXXXXX";
  int fd = mkstemp(p);
  if (fd < 0) return;
  close(fd);
  char *buf = NULL;
  size_t n = 0;
  cl_error e = {0};
  cl_img ref = {0}, im = {0};
  CHECK_OK(cl_read_file(cl_test_fixture(src, sizeof src, "images/img3_raccoon_640x480.jpg"), &buf,
                        &n, &e), e);
  CHECK_OK(cl_img_decode_file(src, &ref, &e), e);
  if (!buf || !ref.data) return;
  CHECK(n > 2 && (uint8_t)buf[n - 2] == 0xFF && (uint8_t)buf[n - 1] == 0xD9);
  size_t nb = (size_t)ref.width * ref.height * 3;
  /* 1. a sequential JPEG missing only its EOI marker */
  write_bytes(p, buf, n - 2);
  int rc = cl_img_decode_file(p, &im, &e);
  CHECK_MSG(rc == 0 && memcmp(im.data, ref.data, nb) == 0, "JPEG without EOI: %d %s", rc, e.msg);
  cl_img_free(&im);
  /* 2. junk bytes before the EOI marker: libjpeg warns, PIL decodes */
  char *b2 = malloc(n + 3);
  memcpy(b2, buf, n - 2);
  memcpy(b2 + n - 2, "\x12\x34\x56\xFF\xD9", 5);
  write_bytes(p, b2, n + 3);
  rc = cl_img_decode_file(p, &im, &e);
  CHECK_MSG(rc == 0 && memcmp(im.data, ref.data, nb) == 0, "JPEG with junk before EOI: %d %s", rc,
            e.msg);
  cl_img_free(&im);
  /* 3. trailing bytes after EOI */
  memcpy(b2, buf, n);
  memcpy(b2 + n, "abc", 3);
  write_bytes(p, b2, n + 3);
  rc = cl_img_decode_file(p, &im, &e);
  CHECK_MSG(rc == 0 && memcmp(im.data, ref.data, nb) == 0, "JPEG with trailing bytes: %d %s", rc,
            e.msg);
  cl_img_free(&im);
  free(b2);
  free(buf);
  cl_img_free(&ref);
  /* 4. a progressive JPEG without EOI: PIL reads all scans up front and calls it truncated */
  buf = NULL;
  CHECK_OK(cl_read_file(cl_test_fixture(src, sizeof src, "images/img1_cat_97x131_progressive.jpg"),
                        &buf, &n, &e), e);
  if (buf) {
    write_bytes(p, buf, n - 2);
    expect_fail(p, "progressive, no EOI");
    free(buf);
  }
  unlink(p);
}

/* The library keeps no shared state: many threads at once give the serial bytes. */
static void check_threads(void) {
  enum { NF = 9, REP = 6, PX = 3 * 224 * 224 };
  char paths[NF][4096], rel[256];
  for (int i = 0; i < NF; i++) {
    snprintf(rel, sizeof rel, "images/%s", i < 6 ? JPEGS[i] : PNGS[i - 6]);
    cl_test_fixture(paths[i], sizeof paths[i], rel);
  }
  float *serial = malloc(sizeof(float) * NF * PX), *par = malloc(sizeof(float) * NF * REP * PX);
  cl_error e = {0};
  for (int i = 0; i < NF; i++) CHECK_OK(cl_img_preprocess_file(paths[i], 224, NULL, NULL, serial + (size_t)i * PX, &e), e);
  int fails = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : fails)
  for (int k = 0; k < NF * REP; k++) {
    cl_error ek = {0};
    fails += cl_img_preprocess_file(paths[k % NF], 224, NULL, NULL, par + (size_t)k * PX, &ek) != 0;
  }
  CHECK_EQ_INT(fails, 0);
  int same = 1;
  for (int k = 0; k < NF * REP; k++)
    same &= memcmp(par + (size_t)k * PX, serial + (size_t)(k % NF) * PX, sizeof(float) * PX) == 0;
  CHECK_MSG(same, "parallel preprocessing differs from serial");
  free(serial);
  free(par);
}

int main(void) {
  char path[4096];
  cl_tmap m, mp;
  cl_error e = {0};
  if (cl_st_load(cl_test_fixture(path, sizeof path, "preprocess.safetensors"), &m, &e) != 0) {
    fprintf(stderr, "test_preprocess: cannot load fixtures: %s\n", e.msg);
    return CL_TEST_SKIP;
  }
  const float dm[3] = CL_IMG_OPENAI_MEAN, ds[3] = CL_IMG_OPENAI_STD;
  const cl_tensor *mt = cl_tmap_get(&m, "mean"), *st = cl_tmap_get(&m, "std");
  CHECK(mt && st && memcmp(mt->data, dm, sizeof dm) == 0 && memcmp(st->data, ds, sizeof ds) == 0);

  float *all = calloc(6 * 3 * 224 * 224, sizeof(float));
  for (int i = 0; i < 6; i++) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "img%d.", i);
    check_image(&m, JPEGS[i], prefix, 1, all + (size_t)i * 3 * 224 * 224);
  }
  check_f32("stacked pixel_values", cl_tmap_get(&m, "pixel_values"), all, 6 * 3 * 224 * 224);
  check_rgb_first(&m);
  free(all);
  cl_tmap_free(&m);

  if (cl_st_load(cl_test_fixture(path, sizeof path, "preprocess_png.safetensors"), &mp, &e) != 0) {
    CHECK_MSG(0, "cannot load preprocess_png.safetensors: %s", e.msg);
  } else {
    for (int i = 0; i < 3; i++) {
      char prefix[16];
      snprintf(prefix, sizeof prefix, "png%d.", i);
      check_image(&mp, PNGS[i], prefix, 0, NULL);
    }
    cl_tmap_free(&mp);
  }
  printf("max |pixel diff| over all images: %g\n", g_max_pix_diff);

  check_threads();
  check_faults();
  check_jpeg_edges();
  return cl_test_done("test_preprocess");
}
