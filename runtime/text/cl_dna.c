/* cl_dna: CLIBD's BarcodeBERT k-mer tokenizer (see cl_dna.h). */
#include "cl_dna.h"

#include <stdlib.h>
#include <utf8proc.h>

void cl_dna_cfg_default(cl_dna_cfg *c) {
  c->k = 5, c->stride = 5, c->max_len = 660, c->pad_char = 'N', c->leading_id = CL_DNA_MASK_ID;
}

int cl_dna_cfg_check(const cl_dna_cfg *c, cl_error *e) {
  if (c->k < 1 || c->k > 12) return cl_err(e, CL_EINVAL, "dna.k = %d: expected 1 to 12", c->k);
  if (c->stride < 1 || c->stride > 1000000) return cl_err(e, CL_EINVAL, "dna.stride = %d: expected 1 to 1000000", c->stride);
  if (c->max_len < c->k || c->max_len > 1000000)
    return cl_err(e, CL_EINVAL, "dna.max_len = %d: expected k (%d) to 1000000", c->max_len, c->k);
  if (c->pad_char == 0 || c->pad_char > 0x10FFFF || (c->pad_char >= 0xD800 && c->pad_char <= 0xDFFF))
    return cl_err(e, CL_EINVAL, "dna.pad_char: not a character");
  if (c->leading_id < 0 || c->leading_id >= CL_DNA_NSPECIAL)
    return cl_err(e, CL_EINVAL, "dna.leading_id = %d: expected a special id (0 <MASK>, 1 <CLS>, 2 <UNK>)",
                  c->leading_id);
  return CL_OK;
}

int cl_dna_ntokens(const cl_dna_cfg *c) { return 1 + (c->max_len - c->k) / c->stride + 1; }
int cl_dna_vocab_size(const cl_dna_cfg *c) { return CL_DNA_NSPECIAL + (1 << (2 * c->k)); }

static int base(uint32_t ch) {
  return ch == 'A' ? 0 : ch == 'C' ? 1 : ch == 'G' ? 2 : ch == 'T' ? 3 : -1;
}

int cl_dna_encode(const cl_dna_cfg *c, const char *seq, size_t len, int32_t *ids, cl_error *e) {
  int rc = cl_dna_cfg_check(c, e);
  if (rc) return rc;
  /* the padded/cut sequence as base digits (-1: anything else) */
  signed char *d = malloc((size_t)c->max_len);
  if (!d) return cl_err(e, CL_ENOMEM, "out of memory");
  size_t at = 0;
  int n = 0;
  while (n < c->max_len && at < len) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)seq + at, (utf8proc_ssize_t)(len - at), &cp);
    if (step <= 0) {
      free(d);
      return cl_err(e, CL_EINVAL, "invalid UTF-8 at byte %zu", at);
    }
    d[n++] = (signed char)base((uint32_t)cp);
    at += (size_t)step;
  }
  while (n < c->max_len) d[n++] = (signed char)base(c->pad_char);
  int t = 0;
  ids[t++] = c->leading_id;
  for (int i = 0; i + c->k <= c->max_len; i += c->stride) {
    int32_t v = 0;
    for (int j = 0; j < c->k && v >= 0; j++) v = d[i + j] < 0 ? -1 : v * 4 + d[i + j];
    ids[t++] = v < 0 ? CL_DNA_UNK_ID : CL_DNA_NSPECIAL + v;
  }
  free(d);
  return CL_OK;
}
