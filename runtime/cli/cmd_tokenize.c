/* clade tokenize: print open_clip's token ids (SOT .. EOT) of texts, or with --dna CLIBD's
 * BarcodeBERT ids of DNA barcodes, one line per text or sequence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cli.h"
#include "text/cl_dna.h"
#include "text/cl_tokenizer.h"

/* What tokenizes: the CLIP tokenizer (t), or the DNA one when t is NULL. */
typedef struct tokenizer {
  const cl_tok *t;
  cl_dna_cfg dna;
} tokenizer;

/* One line of ids; where names the text in error messages. */
static int print_ids(const tokenizer *tk, const char *text, const char *where) {
  int32_t buf[CL_TOK_CONTEXT], *ids = buf;
  cl_error e = {0};
  int n;
  if (tk->t) {
    n = cl_tok_encode(tk->t, text, ids, CL_TOK_CONTEXT, &e);
  } else {
    n = cl_dna_ntokens(&tk->dna);
    ids = cl_xmalloc((size_t)n * sizeof *ids);
    if (cl_dna_encode(&tk->dna, text, strlen(text), ids, &e)) n = -1;
  }
  if (n >= 0) {
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
  } else {
    cl_cli_fail("%s: %s", where, e.msg);
  }
  if (ids != buf) free(ids);
  return n < 0;
}

static int read_stdin(char **out, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = cl_xmalloc(cap);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      char *b = cl_xmalloc(cap * 2);
      memcpy(b, buf, n);
      free(buf);
      buf = b;
      cap *= 2;
    }
  }
  if (ferror(stdin)) {
    free(buf);
    return 1;
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 0;
}

/* One text per line; a final newline adds no empty text; a trailing \r is dropped. */
static int tokenize_file(const tokenizer *t, const char *path) {
  char *buf;
  size_t len;
  cl_error e = {0};
  if (strcmp(path, "-") == 0) {
    if (read_stdin(&buf, &len)) {
      cl_cli_fail("-: cannot read standard input");
      return 1;
    }
  } else if (cl_read_file(path, &buf, &len, &e)) {
    cl_cli_fail("%s", e.msg);
    return 1;
  }
  if (memchr(buf, 0, len)) {
    cl_cli_fail("%s: contains a NUL byte; expected UTF-8 text, one text per line", path);
    free(buf);
    return 1;
  }
  int rc = 0, lineno = 0;
  for (char *p = buf; p < buf + len && !rc;) {
    char *nl = memchr(p, '\n', (size_t)(buf + len - p));
    char *end = nl ? nl : buf + len;
    lineno++;
    if (end > p && end[-1] == '\r') end[-1] = 0;
    *end = 0;
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", path, lineno);
    rc = print_ids(t, p, where);
    p = end + 1;
  }
  free(buf);
  return rc;
}

int cl_cmd_tokenize(int argc, char **argv) {
  int i = 1, opts = 1, ntexts = 0, dna = 0;
  for (int k = 1; k < argc; k++) { /* check the options before loading anything */
    if (opts && strcmp(argv[k], "--") == 0) { opts = 0; continue; }
    if (opts && strcmp(argv[k], "--dna") == 0) { dna = 1; continue; }
    if (opts && (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0)) {
      for (const cl_cmd *c = cl_cmds; c->name; c++)
        if (strcmp(c->name, "tokenize") == 0) printf("usage: %s\n", c->usage);
      return 0;
    }
    if (opts && strcmp(argv[k], "--file") == 0) {
      if (k + 1 >= argc) {
        cl_cli_fail("tokenize: --file needs a file name");
        return cl_cli_usage("tokenize");
      }
      k++;
      ntexts++;
      continue;
    }
    if (opts && strncmp(argv[k], "--", 2) == 0) {
      cl_cli_fail("tokenize: unknown option '%s'", argv[k]);
      return cl_cli_usage("tokenize");
    }
    ntexts++;
  }
  if (!ntexts) return cl_cli_usage("tokenize");

  cl_tok *t = NULL;
  cl_error e = {0};
  if (!dna && cl_tok_load(NULL, &t, &e)) {
    cl_cli_fail("loading the tokenizer vocab: %s", e.msg);
    return 1;
  }
  tokenizer tk = {.t = t};
  cl_dna_cfg_default(&tk.dna);
  int rc = 0, argn = 0;
  opts = 1;
  for (i = 1; i < argc && !rc; i++) {
    if (opts && strcmp(argv[i], "--") == 0) { opts = 0; continue; }
    if (opts && strcmp(argv[i], "--dna") == 0) continue;
    if (opts && strcmp(argv[i], "--file") == 0) {
      rc = tokenize_file(&tk, argv[++i]);
      continue;
    }
    char where[64];
    snprintf(where, sizeof where, "%s %d", dna ? "sequence" : "text", ++argn);
    rc = print_ids(&tk, argv[i], where);
  }
  cl_tok_free(t);
  if (fflush(stdout) != 0) {
    cl_cli_fail("tokenize: cannot write to standard output");
    return 1;
  }
  return rc;
}
