/* open_clip's training crop (runtime/image/cl_img_augment.c).
 * - The crop boxes equal torchvision 0.14 RandomResizedCrop.get_params's given the same draws:
 *   tests/data/augment/rrc_boxes.json, made once by gen_rrc_boxes.py with torchvision's own code
 *   drawing from Python's random (which cl_pyrand reproduces); two boxes per generator, so the
 *   draws each box consumes are checked too: 432 cases over 18 sizes (1x1 to 1000x100: the
 *   attempts and the central fallback), 3 scale and 2 ratio ranges, 4 seeds.
 * - cl_img_crop is PIL's crop (zeros outside, palette kept); cl_img_center_crop goes through it.
 * - Bad sizes and ranges are refused. The pixels of crop + resize are compared with PIL's in
 *   tests/parity/test_augment_pil.sh. */
#include <cjson/cJSON.h>

#include "cl_test.h"
#include "core/cl_core.h"
#include "image/cl_image.h"

static void test_boxes_equal_torchvision(void) {
  char *text = NULL;
  size_t len = 0;
  cl_error e = {0};
  CHECK_OK(cl_read_file(CLADE_SOURCE_DIR "/tests/data/augment/rrc_boxes.json", &text, &len, &e), e);
  cJSON *root = text ? cJSON_Parse(text) : NULL;
  free(text);
  cJSON *cases = cJSON_GetObjectItem(root, "cases");
  CHECK(cJSON_GetArraySize(cases) == 432);
  int n = 0, bad = 0, fallbacks = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    int w = cJSON_GetObjectItem(c, "width")->valueint, h = cJSON_GetObjectItem(c, "height")->valueint;
    const cJSON *sc = cJSON_GetObjectItem(c, "scale"), *ra = cJSON_GetObjectItem(c, "ratio");
    cl_img_rrc p = {{cJSON_GetArrayItem(sc, 0)->valuedouble, cJSON_GetArrayItem(sc, 1)->valuedouble},
                    {cJSON_GetArrayItem(ra, 0)->valuedouble, cJSON_GetArrayItem(ra, 1)->valuedouble}};
    cl_pyrand r;
    cl_pyrand_seed(&r, cJSON_GetObjectItem(c, "seed")->valueint);
    const cJSON *want;
    cJSON_ArrayForEach(want, cJSON_GetObjectItem(c, "boxes")) {
      cl_img_box b = {-1, -1, -1, -1};
      CHECK_OK(cl_img_random_resized_crop_box(w, h, &p, &r, &b, &e), e);
      int ref[4];
      for (int k = 0; k < 4; k++) ref[k] = cJSON_GetArrayItem(want, k)->valueint;
      int ok = b.left == ref[0] && b.top == ref[1] && b.width == ref[2] && b.height == ref[3];
      CHECK_MSG(ok, "%dx%d scale (%g,%g) ratio (%g,%g): box %d,%d %dx%d, torchvision %d,%d %dx%d", w, h, p.scale[0],
                p.scale[1], p.ratio[0], p.ratio[1], b.left, b.top, b.width, b.height, ref[0], ref[1], ref[2], ref[3]);
      CHECK(b.left >= 0 && b.top >= 0 && b.left + b.width <= w && b.top + b.height <= h);
      bad += !ok;
      n++;
      /* a centred box is what the fallback gives (an attempt may give one too) */
      fallbacks += b.left == (w - b.width) / 2 && b.top == (h - b.height) / 2;
    }
  }
  cJSON_Delete(root);
  CHECK_EQ_INT(n, 864);
  CHECK(fallbacks > 50 && fallbacks < n - 200); /* both paths are exercised */
  printf("boxes: %d of %d equal to torchvision's (%d centred)\n", n - bad, n, fallbacks);
}

/* The default is open_clip's scale (0.9, 1.0): the area share stays in it up to rounding. */
static void test_openclip_default(void) {
  cl_error e = {0};
  cl_pyrand r, r2;
  cl_pyrand_seed(&r, 7);
  cl_pyrand_seed(&r2, 7);
  for (int k = 0; k < 200; k++) {
    cl_img_box b, b2;
    const cl_img_rrc oc = CL_IMG_RRC_OPENCLIP;
    CHECK_OK(cl_img_random_resized_crop_box(640, 480, NULL, &r, &b, &e), e);
    CHECK_OK(cl_img_random_resized_crop_box(640, 480, &oc, &r2, &b2, &e), e);
    CHECK(!memcmp(&b, &b2, sizeof b));
    double share = (double)b.width * b.height / (640.0 * 480.0);
    CHECK_MSG(share > 0.89 && share <= 1.0, "share %g", share);
  }
}

static void test_bad_input(void) {
  cl_error e = {0};
  cl_pyrand r;
  cl_pyrand_seed(&r, 0);
  cl_img_box b;
  CHECK(cl_img_random_resized_crop_box(0, 10, NULL, &r, &b, &e) == CL_EINVAL);
  cl_img_rrc neg = {{0.5, 0.4}, {0.75, 1.33}};
  CHECK(cl_img_random_resized_crop_box(10, 10, &neg, &r, &b, &e) == CL_EINVAL);
  CHECK(strstr(e.msg, "scale") != NULL);
  cl_img_rrc nan = {{0.5, 1}, {NAN, 1.33}};
  CHECK(cl_img_random_resized_crop_box(10, 10, &nan, &r, &b, &e) == CL_EINVAL);
  cl_img im;
  CHECK_OK(cl_img_alloc(&im, 4, 3, CL_IMG_RGB, &e), e);
  cl_img out;
  cl_img_box zero = {0, 0, 0, 3};
  CHECK(cl_img_crop(&im, &zero, &out, &e) == CL_EINVAL);
  cl_img_box ok = {1, 1, 2, 2};
  CHECK(cl_img_random_resized_crop(&im, &ok, 0, &out, &e) == CL_EINVAL);
  cl_img_free(&im);
}

/* PIL's crop: the pixels of the box, zeros outside the image, the palette of a P image. */
static void test_crop(void) {
  cl_error e = {0};
  cl_img im, out;
  CHECK_OK(cl_img_alloc(&im, 5, 4, CL_IMG_P, &e), e);
  for (int i = 0; i < 20; i++) im.data[i] = (uint8_t)(i + 1);
  im.palette_size = 21;
  im.palette[4 * 7] = 99;
  cl_img_box b = {3, -1, 4, 3}; /* columns 3..6, rows -1..1 */
  CHECK_OK(cl_img_crop(&im, &b, &out, &e), e);
  const uint8_t want[12] = {0, 0, 0, 0, 4, 5, 0, 0, 9, 10, 0, 0};
  CHECK(out.width == 4 && out.height == 3 && out.mode == CL_IMG_P && !memcmp(out.data, want, 12));
  CHECK(out.palette_size == 21 && out.palette[4 * 7] == 99);
  cl_img_free(&out);
  /* a box of the whole image resized to its own size is the image */
  cl_img rgb;
  CHECK_OK(cl_img_to_rgb(&im, &rgb, &e), e);
  cl_img_box all = {0, 0, 5, 4};
  CHECK_OK(cl_img_random_resized_crop(&rgb, &all, 5, &out, &e), e);
  CHECK(out.width == 5 && out.height == 5);
  cl_img same;
  CHECK_OK(cl_img_resize(&rgb, 5, 5, &same, &e), e);
  CHECK(!memcmp(out.data, same.data, 5 * 5 * 3));
  cl_img_free(&same);
  cl_img_free(&out);
  cl_img_free(&rgb);
  cl_img_free(&im);
}

int main(void) {
  test_boxes_equal_torchvision();
  test_openclip_default();
  test_bad_input();
  test_crop();
  return cl_test_done("test_augment");
}
