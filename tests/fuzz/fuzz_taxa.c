/* libFuzzer: a Tree of Life label set's txt_emb_species.json (the input after its first byte)
 * through cl_taxa_open_files' streaming parse, beside a float32 [2, N] .npy with N = the first
 * byte % 6 + 1 columns (so counts that agree and disagree both come up). An accepted set must
 * have N entries whose every name, and every value pybioclip's columns print, reads within
 * the arena; the groups must be in range. Both files are in memory (fuzz_file_slot). */
#include <string.h>

#include "eval/cl_taxa.h"
#include "fuzz_util.h"

/* the .npy: the header np.save writes and 2 x N zeros, in the second in-memory file */
static const char *npy_file(int N) {
  unsigned char buf[640 + 2 * 8 * sizeof(float)] = {0};
  cl_tensor t = {.dtype = CL_F32, .ndim = 2, .shape = {2, N}};
  const size_t hl = cl_npy_header(&t, buf, 640);
  if (!hl) abort();
  return fuzz_file_slot(1, buf, hl + 2 * (size_t)N * sizeof(float));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const int N = data[0] % 6 + 1;
  const char *npy = npy_file(N);
  cl_taxa t;
  cl_error e;
  if (cl_taxa_open_files(npy, fuzz_file(data + 1, size - 1), 0, &t, &e) != CL_OK) {
    if (!e.msg[0]) abort(); /* every refusal says why */
    return 0;
  }
  if (t.N != N || t.D != 2) abort();
  size_t sum = 0;
  char buf[2048];
  for (int i = 0; i < N; i++) {
    for (int r = 0; r <= CL_NRANKS; r++) sum += strlen(cl_taxa_name(&t, i, r));
    sum += strlen(cl_taxa_value(&t, i, CL_RANK_SPECIES, buf, sizeof buf));
    for (int r = 0; r < CL_NRANKS - 1; r++)
      if (t.group[r][i] < 0 || t.group[r][i] >= t.ngroups[r]) abort();
  }
  if (sum > size * 2 + 2048) abort(); /* names come from the input: never more than it holds */
  cl_taxa_close(&t);
  return 0;
}
