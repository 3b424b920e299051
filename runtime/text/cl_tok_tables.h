/* cl_tok_tables: data tables for the tokenizer's text cleaning (generated into
 * cl_tok_tables.c from Python's standard library; see there). Private to runtime/text. */
#ifndef CL_TOK_TABLES_H
#define CL_TOK_TABLES_H
#include <stdint.h>

typedef struct cl_tok_entity {
  const char *name;  /* without the '&'; sorted bytewise (strcmp) */
  const char *value; /* UTF-8 */
} cl_tok_entity;

typedef struct cl_tok_map {
  uint32_t cp;
  uint32_t to[2]; /* to[1] == 0 when it maps to one code point */
} cl_tok_map;

typedef struct cl_tok_range {
  uint32_t lo, hi; /* inclusive */
} cl_tok_range;

extern const cl_tok_entity cl_tok_html5[];      /* html.entities.html5 */
extern const int cl_tok_html5_n;
extern const cl_tok_entity cl_tok_ftfy_upper[]; /* ftfy's all-caps extras, e.g. "EACUTE;" */
extern const int cl_tok_ftfy_upper_n;
extern const cl_tok_map cl_tok_width[];         /* ftfy.fixes.fix_character_width */
extern const int cl_tok_width_n;
extern const cl_tok_map cl_tok_lower[];         /* str.lower(), sorted by cp */
extern const int cl_tok_lower_n;
extern const cl_tok_range cl_tok_case_ignorable[];
extern const int cl_tok_case_ignorable_n;
extern const cl_tok_range cl_tok_cased[];       /* cased and not case-ignorable */
extern const int cl_tok_cased_n;

#endif
