/* cl_dna: BarcodeBERT's DNA tokenizer exactly as CLIBD's get_sequence_pipeline
 * (bioscanclip/model/dna_encoder.py at 7d73f80; shared/CLIBD.md "DNA tokens").
 * Owns: the k-mer vocabulary (<MASK>=0, <CLS>=1, <UNK>=2, then the 4^k k-mers of
 * product("ACGT"): id = 3 + base-4 value, A0 C1 G2 T3, first letter most significant) and the
 * layout [leading id, k-mer ids...]. A sequence is a Python str: cut to its first max_len
 * characters (code points) or padded with pad_char to max_len; nothing is upper-cased or
 * stripped; k-mers at stride; any k-mer with a character other than A, C, G, T (lowercase,
 * N, IUPAC, '-', space, U, ...) is <UNK>. */
#ifndef CL_DNA_H
#define CL_DNA_H
#include <stddef.h>
#include <stdint.h>

#include "../core/cl_core.h"

#define CL_DNA_MASK_ID 0
#define CL_DNA_CLS_ID 1
#define CL_DNA_UNK_ID 2
#define CL_DNA_NSPECIAL 3

typedef struct cl_dna_cfg {
  int k, stride, max_len; /* 5, 5, 660 */
  uint32_t pad_char;      /* 'N' */
  int leading_id;         /* 0: CLIBD prepends <MASK>, not <CLS> */
} cl_dna_cfg;

/* CLIBD's settings: k 5, stride 5, 660 nt, pad 'N', leading 0 (133 ids). */
void cl_dna_cfg_default(cl_dna_cfg *c);
/* Checks the settings fit (1 <= k <= 12, stride >= 1, k <= max_len <= 1e6, leading id a
 * special); the error names the key. */
int cl_dna_cfg_check(const cl_dna_cfg *c, cl_error *e);
/* Ids per sequence: 1 + (max_len - k) / stride + 1. */
int cl_dna_ntokens(const cl_dna_cfg *c);
/* Vocabulary size: 3 + 4^k (1,027 for k = 5). */
int cl_dna_vocab_size(const cl_dna_cfg *c);

/* Tokenize one sequence of len bytes (UTF-8; need not be NUL-terminated) into
 * ids[cl_dna_ntokens(c)]. Invalid UTF-8 is an error naming the byte offset. */
int cl_dna_encode(const cl_dna_cfg *c, const char *seq, size_t len, int32_t *ids, cl_error *e);

#endif
