/* cl_tok: the CLIP BPE tokenizer, exactly as open_clip's SimpleTokenizer (clean='lower').
 * Owns: text cleaning (ftfy subset, html.unescape twice, whitespace, Python str.lower), the
 * regex pre-split, byte-level BPE over the 48,894 merges of bpe_simple_vocab_16e6.txt.gz,
 * and the [SOT] ids [EOT] 0... layout with truncation.
 * The step-by-step spec is in shared/fixtures/DETAILS.md (Tokenizer). */
#ifndef CL_TOKENIZER_H
#define CL_TOKENIZER_H
#include <stdint.h>

#include "../core/cl_core.h"

#define CL_TOK_SOT 49406
#define CL_TOK_EOT 49407
#define CL_TOK_VOCAB 49408
#define CL_TOK_CONTEXT 77
/* Where the shipped merges file lives, relative to cl_resource_dir(). */
#define CL_TOK_VOCAB_REL "runtime/text/data/bpe_simple_vocab_16e6.txt.gz"

typedef struct cl_tok cl_tok; /* opaque; immutable after load, safe to share across threads */

/* Load the merges (gzip). NULL path = the shipped vocab (CL_TOK_VOCAB_REL via cl_resource_path). */
int cl_tok_load(const char *vocab_gz_path, cl_tok **out, cl_error *e);
void cl_tok_free(cl_tok *t);

/* ids: [context_len] int32, SOT..EOT then 0-padding; truncated to context_len with EOT forced
 * last. Returns the number of non-pad tokens (incl SOT/EOT), or <0 (a negated CL_E* code) on
 * error. The input must be valid UTF-8. */
int cl_tok_encode(const cl_tok *t, const char *utf8, int32_t *ids, int context_len, cl_error *e);

/* The cleaned text open_clip tokenizes (lower-cased, whitespace collapsed), malloc'd UTF-8.
 * Needs no vocab. */
int cl_tok_clean(const char *utf8, char **out, cl_error *e);

/* The vocab string of an id ("a</w>", "<start_of_text>"), or NULL when out of range. */
const char *cl_tok_id_str(const cl_tok *t, int32_t id);

#endif
