/* test_clibd_tokens: CLIBD's DNA ids (get_sequence_pipeline) and its text tower's WordPiece ids,
 * attention mask and token types (bert-small's BertTokenizerFast, max_length 20), bit-exact
 * against shared/fixtures/clibd (cases.json, outputs.safetensors, vocab.txt), which CLIBD's
 * own code produced. The cases cover padding, cutting, lowercase, N runs, IUPAC letters, gaps,
 * an empty sequence, U and spaces; capitals, punctuation, digits, unknown words, accents, '&',
 * double spaces and tabs, and truncation past 20 tokens. */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "cl_test.h"
#include "io/cl_safetensors.h"
#include "text/cl_dna.h"
#include "text/cl_wordpiece.h"

static const int32_t *i32(const cl_tmap *m, const char *name, int64_t d0, int64_t d1) {
  const cl_tensor *t = cl_tmap_get(m, name);
  CHECK_MSG(t && t->dtype == CL_I32 && cl_shape_eq(t, 2, (int64_t[]){d0, d1}), "%s: missing or not I32 [%lld,%lld]",
            name, (long long)d0, (long long)d1);
  return t && t->dtype == CL_I32 && cl_shape_eq(t, 2, (int64_t[]){d0, d1}) ? t->data : NULL;
}

static void test_dna(const cJSON *cases, const cl_tmap *out) {
  cl_dna_cfg c;
  cl_dna_cfg_default(&c);
  CHECK_EQ_INT(cl_dna_ntokens(&c), 133);
  CHECK_EQ_INT(cl_dna_vocab_size(&c), 1027);
  const cJSON *dna = cJSON_GetObjectItem(cases, "dna");
  int n = cJSON_GetArraySize(dna);
  CHECK_EQ_INT(n, 12);
  const int32_t *want = i32(out, "dna_tokens", n, 133);
  for (int i = 0; i < n && want; i++) {
    const cJSON *cs = cJSON_GetArrayItem(dna, i);
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "name"));
    const char *seq = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "seq"));
    int32_t ids[133];
    cl_error e = {0};
    CHECK_OK(cl_dna_encode(&c, seq, strlen(seq), ids, &e), e);
    int bad = -1;
    for (int j = 0; j < 133 && bad < 0; j++)
      if (ids[j] != want[i * 133 + j]) bad = j;
    CHECK_MSG(bad < 0, "dna case %s: id %d is %d, CLIBD's %d", name, bad, bad < 0 ? 0 : ids[bad],
              bad < 0 ? 0 : want[i * 133 + bad]);
  }
  /* invalid UTF-8 is an error naming the byte */
  int32_t ids[133];
  cl_error e = {0};
  CHECK(cl_dna_encode(&c, "ACGT\xff", 5, ids, &e) == CL_EINVAL && strstr(e.msg, "byte 4"));
  /* a bad setting names its key */
  c.k = 0;
  CHECK(cl_dna_encode(&c, "ACGT", 4, ids, &e) == CL_EINVAL && strstr(e.msg, "dna.k"));
}

static void test_text(const cJSON *cases, const cl_tmap *out) {
  char path[4096];
  cl_wp *w;
  cl_error e = {0};
  int rc = cl_wp_load(cl_test_fixture(path, sizeof path, "clibd/vocab.txt"), 1, 1, &w, &e);
  CHECK_OK(rc, e);
  if (rc) return;
  CHECK_EQ_INT(cl_wp_vocab_size(w), 238);
  const cJSON *texts = cJSON_GetObjectItem(cases, "texts"), *pieces = cJSON_GetObjectItem(cases, "text_wordpieces");
  int n = cJSON_GetArraySize(texts);
  CHECK_EQ_INT(n, 8);
  const int32_t *want = i32(out, "text_tokens", n, 20), *wmask = i32(out, "text_attention_mask", n, 20),
                *wtype = i32(out, "text_token_type_ids", n, 20);
  for (int i = 0; i < n && want && wmask && wtype; i++) {
    const char *text = cJSON_GetStringValue(cJSON_GetArrayItem(texts, i));
    int32_t ids[20], mask[20];
    int r = cl_wp_encode(w, text, 20, ids, mask, &e);
    CHECK_MSG(r >= 2, "text %d: %s", i, e.msg);
    int bad = -1;
    for (int j = 0; j < 20 && bad < 0; j++)
      if (ids[j] != want[i * 20 + j] || mask[j] != wmask[i * 20 + j] || wtype[i * 20 + j] != 0) bad = j;
    CHECK_MSG(bad < 0, "text \"%s\": position %d is id %d mask %d, CLIBD's id %d mask %d", text, bad,
              bad < 0 ? 0 : ids[bad], bad < 0 ? 0 : mask[bad], bad < 0 ? 0 : want[i * 20 + bad],
              bad < 0 ? 0 : wmask[i * 20 + bad]);
    const cJSON *pc = cJSON_GetArrayItem(pieces, i);
    for (int j = 0; j < 20; j++) {
      const char *p = cJSON_GetStringValue(cJSON_GetArrayItem(pc, j)), *g = cl_wp_id_str(w, ids[j]);
      CHECK_MSG(p && g && !strcmp(p, g), "text %d piece %d: %s, expected %s", i, j, g ? g : "?", p ? p : "?");
    }
  }
  int32_t ids[20];
  CHECK(cl_wp_encode(w, "bad \xc3", 20, ids, NULL, &e) < 0 && strstr(e.msg, "UTF-8"));
  cl_wp_free(w);
  CHECK(cl_wp_load("/nonexistent/vocab.txt", 1, 1, &w, &e) != CL_OK && strstr(e.msg, "/nonexistent/vocab.txt"));
}

int main(void) {
  char path[4096];
  char *json = NULL;
  size_t len;
  cl_error e = {0};
  if (cl_read_file(cl_test_fixture(path, sizeof path, "clibd/cases.json"), &json, &len, &e)) {
    fprintf(stderr, "skip: %s\n", e.msg);
    return CL_TEST_SKIP;
  }
  cJSON *cases = cJSON_Parse(json);
  free(json);
  cl_tmap out;
  int rc = cl_st_load(cl_test_fixture(path, sizeof path, "clibd/outputs.safetensors"), &out, &e);
  CHECK_OK(rc, e);
  CHECK(cases != NULL);
  if (!rc && cases) {
    test_dna(cases, &out);
    test_text(cases, &out);
  }
  if (!rc) cl_tmap_free(&out);
  cJSON_Delete(cases);
  return cl_test_done("test_clibd_tokens");
}
