/* libFuzzer: text through the CLIP BPE tokenizer (cleaning, html unescape, pre-split, BPE,
 * truncation) with the shipped merges. */
#include <stdlib.h>

#include "fuzz_util.h"
#include "text/cl_tokenizer.h"

static cl_tok *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  cl_error e;
  if (cl_tok_load(NULL, &tok, &e) != CL_OK) {
    fprintf(stderr, "fuzz_tokenizer: %s\n", e.msg);
    abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstr(data, size);
  int32_t ids[CL_TOK_CONTEXT];
  cl_error e;
  int n = cl_tok_encode(tok, s, ids, CL_TOK_CONTEXT, &e);
  if (n > CL_TOK_CONTEXT) abort();
  for (int i = 0; n > 0 && i < CL_TOK_CONTEXT; i++)
    if (ids[i] < 0 || ids[i] >= CL_TOK_VOCAB) abort();
  char *clean = NULL;
  if (cl_tok_clean(s, &clean, &e) == CL_OK) free(clean);
  free(s);
  return 0;
}
