/* cl_wp: BERT's WordPiece tokenizer as Hugging Face's BertTokenizerFast (tokenizers 0.13)
 * runs it for CLIBD's text tower (prajjwal1/bert-small): BertNormalizer (clean text, spaces
 * around CJK ideographs, accents stripped by NFD minus Mn, lower case), BertPreTokenizer
 * (split on white space, each punctuation character a word), greedy longest-match WordPiece
 * with "##" continuations (a word longer than 100 characters, or one the vocabulary cannot
 * cover, is one [UNK]), then [CLS] pieces [SEP] truncated and [PAD]-padded to max_length.
 * Owns: the vocabulary (vocab.txt, one token a line, id = line number). */
#ifndef CL_WORDPIECE_H
#define CL_WORDPIECE_H
#include <stdint.h>

#include "../core/cl_core.h"

typedef struct cl_wp cl_wp; /* immutable after load: safe to share across threads */

/* lower: lower-case (and strip accents when strip_accents is -1, as Hugging Face's None);
 * strip_accents: 1, 0 or -1. vocab.txt must hold [PAD], [UNK], [CLS] and [SEP]. */
int cl_wp_load(const char *vocab_path, int lower, int strip_accents, cl_wp **out, cl_error *e);
void cl_wp_free(cl_wp *w);
int cl_wp_vocab_size(const cl_wp *w);
/* The token of an id, or NULL out of range. */
const char *cl_wp_id_str(const cl_wp *w, int32_t id);

/* The word pieces of one text (no specials, no truncation) into pieces[0..cap); returns how
 * many there are (may exceed cap), or a negated CL_E* code (invalid UTF-8). */
int cl_wp_pieces(const cl_wp *w, const char *utf8, int32_t *pieces, int cap, cl_error *e);
/* padding="max_length", truncation=True: ids and attention mask [max_length] (mask may be
 * NULL); returns the number of real tokens ([CLS] .. [SEP]) or a negated CL_E* code. */
int cl_wp_encode(const cl_wp *w, const char *utf8, int max_length, int32_t *ids, int32_t *mask, cl_error *e);

#endif
