/* test_tokenizer: clade's CLIP tokenizer against open_clip's (fixtures made with open_clip 2.32)
 * and against extra cases whose ids came from open_clip's SimpleTokenizer code with the real
 * ftfy 6.3.1 and regex packages (cross-checked by hand once; see each case's name). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <zlib.h>

#include "cl_test.h"
#include "io/cl_safetensors.h"
#include "text/cl_tokenizer.h"

static const struct { const char *name, *text; int n; int32_t ids[80]; } extra[] = {
  {"curly quotes", "Cooper\342\200\231s Hawk \342\200\234quoted\342\200\235 \342\200\230single\342\200\231", 11, {49406, 8133, 568, 8218, 257, 27706, 257, 568, 17005, 262, 49407}},
  {"ligatures", "\357\254\201sh \357\254\202ower e\357\254\200ect \307\205ivo \304\262ssel", 12, {49406, 2759, 4055, 5436, 67, 129, 122, 72, 3951, 7337, 19373, 49407}},
  {"fullwidth", "\357\274\246\357\274\265\357\274\254\357\274\254\343\200\200\357\275\227\357\275\211\357\275\204\357\275\224\357\275\210\343\200\200\357\274\221\357\274\222\357\274\223\357\274\201 \357\275\266\357\276\236", 10, {49406, 1476, 23571, 272, 273, 274, 256, 3909, 361, 49407}},
  {"NFC", "Cafe\314\201 Zu\314\210rich A\314\212ngstro\314\210m \341\204\200\341\205\241\341\206\250", 13, {49406, 15304, 89, 6522, 4021, 23176, 10352, 807, 7255, 332, 21122, 479, 49407}},
  {"dotted I", "\304\260stanbul \304\260I\304\261i", 10, {49406, 328, 16384, 11231, 328, 16384, 72, 18562, 328, 49407}},
  {"final sigma", "\316\237\316\224\316\237\316\243 \316\237\316\224\316\237\316\243. \316\243 A\316\243' \316\243\316\243\316\243", 31, {49406, 138, 123, 138, 112, 138, 123, 139, 480, 138, 123, 138, 112, 138, 123, 139, 480, 269, 139, 481, 64, 139, 480, 262, 139, 225, 139, 225, 139, 480, 49407}},
  {"nested entities", "fish &amp;amp;amp;amp; chips &amp;lt;3", 7, {49406, 2759, 261, 8855, 283, 274, 49407}},
  {"entities", "&eacute;t&eacute; &EACUTE;T&EACUTE; &notit; &ampfoo &#x41;&#65;&#128;&#150;&#0;&#59;&#xD800;&#1114112;&#x1F43B; &SZLIG;", 21, {49406, 3459, 39694, 3459, 39694, 126, 361, 585, 282, 261, 23435, 3894, 34919, 21070, 47356, 26, 47356, 47356, 25322, 632, 49407}},
  {"html with <", "a < b &amp;amp; c &EACUTE;\012next &amp;amp; line", 14, {49406, 320, 283, 321, 261, 322, 261, 68, 19734, 282, 1131, 261, 1148, 49407}},
  {"line breaks", "line1\015\012line2\342\200\250line3\302\205 tab\011here\302\240nbsp\343\200\200ideo\342\200\211thin\034fs", 18, {49406, 1148, 272, 1148, 273, 1148, 274, 959, 14724, 763, 6459, 4393, 1909, 334, 513, 1529, 338, 49407}},
  {"controls", "\033[31mred\033[0m text\007bell\357\273\277bom\342\201\252arabic\357\277\274obj", 11, {49406, 736, 2056, 1990, 826, 3012, 5405, 535, 1411, 329, 49407}},
  {"specials", "<start_of_text>hello<end_of_text> <START_OF_TEXT> <end_of_text", 12, {49406, 49406, 3306, 49407, 49406, 283, 806, 318, 539, 318, 4160, 49407}},
  {"contractions", "x'\305\277 y'S don't we'll they're I've I'm he'd it'S", 22, {49406, 343, 6, 129, 379, 344, 568, 847, 713, 649, 1342, 889, 982, 328, 1200, 328, 880, 797, 1896, 585, 568, 49407}},
  {"digits", "H\342\202\202O \302\262 \302\275 \331\243 \342\205\253 \342\221\240 \360\235\237\230 12,345.67", 28, {49406, 327, 5227, 480, 334, 41175, 33613, 149, 352, 158, 227, 375, 158, 239, 510, 6874, 253, 502, 272, 273, 267, 274, 275, 276, 269, 277, 278, 49407}},
  {"casing", "Stra\303\237e \341\272\236 \307\204 \342\204\252\342\204\253 \342\204\246 \342\222\266 \341\276\210", 20, {49406, 1894, 127, 253, 324, 127, 509, 67, 129, 378, 74, 127, 354, 38065, 27400, 494, 157, 122, 478, 49407}},
  {"skipped marks", "a\341\240\216b \341\276\263 \315\205x y\315\205", 12, {49406, 320, 157, 254, 492, 321, 157, 122, 367, 343, 344, 49407}},
  {"emoji", "\360\237\221\215\360\237\217\275 \360\237\217\263\357\270\217\342\200\215\360\237\214\210 \360\237\220\273\360\237\220\273", 6, {49406, 43722, 32610, 30750, 25322, 49407}},
  {"long word", "pneumonoultramicroscopicsilicovolcanoconiosispneumonoultramicroscopicsilicovolcanoconiosispneumonoultramicroscopicsilicovolcanoconiosis", 48, {49406, 28714, 749, 20253, 9800, 535, 532, 1065, 901, 1556, 13697, 9916, 78, 616, 3167, 564, 588, 3855, 749, 20253, 9800, 535, 532, 1065, 901, 1556, 13697, 9916, 78, 616, 3167, 564, 588, 3855, 749, 20253, 9800, 535, 532, 1065, 901, 1556, 13697, 9916, 78, 39031, 13903, 49407}},
  {"named refs", "&lt;&gt;&quot;&apos;&nbsp;&copy;&reg;&trade;&hellip;&mdash;&frac12;", 11, {49406, 27, 29, 31065, 31148, 30857, 29438, 7095, 2005, 33613, 49407}},
  {"truncated symbols", "\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275\360\237\220\273\302\275 end", 77, {49406, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 33613, 25322, 49407}},
  {"authority", "Ursus arctos horribilis (Ord, 1815) \342\200\224 \302\253grizzly\302\273", 21, {49406, 565, 3036, 4997, 6094, 8656, 3092, 533, 263, 11502, 267, 272, 279, 272, 276, 264, 2005, 14434, 29676, 7599, 49407}},
};

static void print_ids(const char *label, const int32_t *ids, int n) {
  fprintf(stderr, "  %s:", label);
  for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
  fputc('\n', stderr);
}

/* Encode text with context_len and compare every slot with want[0..n) then zeros. */
static void check_ids(const cl_tok *t, const char *name, const char *text, int ctx, const int32_t *want,
                      int n) {
  int32_t got[128];
  cl_error e = {0};
  int r = cl_tok_encode(t, text, got, ctx, &e);
  int same = r == n;
  for (int i = 0; i < ctx && same; i++) same = got[i] == (i < n ? want[i] : 0);
  CHECK_MSG(same, "case '%s' (context %d) returned %d, expected %d; text \"%s\" %s", name, ctx, r, n, text,
            r < 0 ? e.msg : "");
  if (!same) {
    print_ids("expected", want, n);
    if (r > 0) print_ids("got     ", got, ctx);
  }
}

static void test_fixtures(const cl_tok *t) {
  char path[4096];
  char *json;
  cl_error e = {0};
  int rc = cl_read_file(cl_test_fixture(path, sizeof path, "text_cases.json"), &json, NULL, &e);
  CHECK_OK(rc, e);
  if (rc) return;
  cJSON *cases = cJSON_Parse(json);
  free(json);
  CHECK_MSG(cJSON_IsArray(cases), "%s: not a JSON array", path);
  cl_tmap m;
  rc = cl_st_load(cl_test_fixture(path, sizeof path, "text_tokens.safetensors"), &m, &e);
  CHECK_OK(rc, e);
  if (rc || !cJSON_IsArray(cases)) {
    cJSON_Delete(cases);
    if (!rc) cl_tmap_free(&m);
    return;
  }
  const cl_tensor *ids = cl_tmap_get(&m, "input_ids");
  int ncases = cJSON_GetArraySize(cases);
  CHECK_EQ_INT(ncases, 21);
  CHECK(ids && ids->dtype == CL_I32 && ids->ndim == 2 && ids->shape[0] == ncases && ids->shape[1] == 77);
  if (ids && ids->dtype == CL_I32 && ids->ndim == 2 && ids->shape[0] == ncases && ids->shape[1] == 77) {
    for (int c = 0; c < ncases; c++) {
      const cJSON *cs = cJSON_GetArrayItem(cases, c);
      const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "text"));
      const char *cleaned = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "cleaned"));
      const cJSON *ntok = cJSON_GetObjectItem(cs, "n_tokens_with_sot_eot");
      CHECK(text && cleaned && cJSON_IsNumber(ntok));
      if (!text || !cleaned || !cJSON_IsNumber(ntok)) continue;
      const int32_t *want = (const int32_t *)ids->data + (size_t)c * 77;
      int n = ntok->valueint < 77 ? ntok->valueint : 77;
      char name[32];
      snprintf(name, sizeof name, "fixture %d", c);
      check_ids(t, name, text, 77, want, n);

      char *mine = NULL;
      rc = cl_tok_clean(text, &mine, &e);
      CHECK_OK(rc, e);
      CHECK_MSG(mine && strcmp(mine, cleaned) == 0, "fixture %d cleaned \"%s\", expected \"%s\"", c,
                mine ? mine : "(null)", cleaned);
      free(mine);

      /* the BPE strings, for the cases that were not truncated */
      const cJSON *toks = cJSON_GetObjectItem(cs, "bpe_tokens");
      if (ntok->valueint <= 77 && cJSON_IsArray(toks) && cJSON_GetArraySize(toks) == n - 2)
        for (int k = 0; k < n - 2; k++) {
          const char *s = cl_tok_id_str(t, want[k + 1]);
          const char *w = cJSON_GetStringValue(cJSON_GetArrayItem(toks, k));
          CHECK_MSG(s && w && strcmp(s, w) == 0, "fixture %d token %d: vocab string \"%s\", expected \"%s\"", c,
                    k, s ? s : "(null)", w ? w : "(null)");
        }
    }
  }
  cl_tmap_free(&m);
  cJSON_Delete(cases);
}

static void test_context_lengths(const cl_tok *t) {
  static const int32_t sparrow[] = {49406, 320, 1125, 539, 1212, 22888, 269, 49407};
  check_ids(t, "BIOCLIP.md example", "a photo of house sparrow.", 77, sparrow, 8);
  static const int32_t c5[] = {49406, 320, 1125, 539, 49407};
  check_ids(t, "truncated to 5", "a photo of Ursus arctos.", 5, c5, 5);
  static const int32_t c2[] = {49406, 49407}, c1[] = {49407};
  check_ids(t, "truncated to 2", "a photo of Ursus arctos.", 2, c2, 2);
  check_ids(t, "truncated to 1", "a photo of Ursus arctos.", 1, c1, 1);
  check_ids(t, "empty in 2", "", 2, c2, 2);
  check_ids(t, "empty in 1", "", 1, c1, 1);
  static const int32_t b4[] = {49406, 2866, 4298, 49407}, b3[] = {49406, 2866, 49407};
  check_ids(t, "exactly 4", "brown bear", 4, b4, 4);
  check_ids(t, "truncated to 3", "brown bear", 3, b3, 3);
}

static void test_errors(const cl_tok *t) {
  int32_t ids[77];
  cl_error e = {0};
  CHECK(cl_tok_encode(t, "caf\xC3", ids, 77, &e) < 0);          /* truncated sequence */
  CHECK_MSG(strstr(e.msg, "UTF-8") != NULL, "message: %s", e.msg);
  CHECK(cl_tok_encode(t, "\xED\xA0\x80", ids, 77, &e) < 0);      /* a surrogate */
  CHECK(cl_tok_encode(t, "\xC0\xAF", ids, 77, &e) < 0);          /* overlong */
  CHECK(cl_tok_encode(t, "ok", ids, 0, &e) < 0);

  cl_tok *bad = NULL;
  int rc = cl_tok_load("/nonexistent/bpe.txt.gz", &bad, &e);
  CHECK_EQ_INT(rc, CL_EIO);
  CHECK_MSG(strstr(e.msg, "/nonexistent/bpe.txt.gz") != NULL, "message names the file: %s", e.msg);
  CHECK(bad == NULL);

  /* a merges file that stops early, and one with a malformed line */
  char path[] = "/tmp/cl_tok_testXXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  gzFile f = gzdopen(fd, "wb");
  gzputs(f, "#version: 0.2\ni n\nt h\n");
  gzclose(f);
  rc = cl_tok_load(path, &bad, &e);
  CHECK_EQ_INT(rc, CL_EFORMAT);
  CHECK_MSG(strstr(e.msg, "2 merges") != NULL, "message: %s", e.msg);
  f = gzopen(path, "wb");
  gzputs(f, "#version: 0.2\ni n\nt h e\n");
  gzclose(f);
  rc = cl_tok_load(path, &bad, &e);
  CHECK_EQ_INT(rc, CL_EFORMAT);
  CHECK_MSG(strstr(e.msg, "line 3") != NULL, "message names the line: %s", e.msg);
  remove(path);
}

/* One tokenizer shared by threads gives the same ids as one thread. */
static void test_threads(const cl_tok *t) {
  int bad = 0;
  int nextra = (int)(sizeof extra / sizeof extra[0]);
#pragma omp parallel for reduction(+ : bad)
  for (int i = 0; i < 64 * nextra; i++) {
    int32_t got[77];
    int n = cl_tok_encode(t, extra[i % nextra].text, got, 77, NULL);
    if (n != extra[i % nextra].n || memcmp(got, extra[i % nextra].ids, (size_t)n * sizeof *got)) bad++;
  }
  CHECK_EQ_INT(bad, 0);
}

int main(void) {
  cl_tok *t = NULL;
  cl_error e = {0};
  int rc = cl_tok_load(NULL, &t, &e); /* the vocab the project ships */
  CHECK_OK(rc, e);
  if (rc) return cl_test_done("test_tokenizer");
  CHECK_STR(cl_tok_id_str(t, 49406), "<start_of_text>");
  CHECK_STR(cl_tok_id_str(t, 49407), "<end_of_text>");
  CHECK_STR(cl_tok_id_str(t, 320), "a</w>");
  CHECK_STR(cl_tok_id_str(t, 0), "!");
  CHECK(cl_tok_id_str(t, 49408) == NULL);

  test_fixtures(t);
  test_context_lengths(t);
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
    check_ids(t, extra[i].name, extra[i].text, 77, extra[i].ids, extra[i].n);
  test_errors(t);
  test_threads(t);
  cl_tok_free(t);

  /* the shipped copy is the fixture's file */
  char path[4096];
  rc = cl_tok_load(cl_test_fixture(path, sizeof path, "bpe_simple_vocab_16e6.txt.gz"), &t, &e);
  CHECK_OK(rc, e);
  if (!rc) {
    static const int32_t sparrow[] = {49406, 320, 1125, 539, 1212, 22888, 269, 49407};
    check_ids(t, "fixture vocab", "a photo of house sparrow.", 77, sparrow, 8);
    cl_tok_free(t);
  }
  return cl_test_done("test_tokenizer");
}
