/* cl_wp: BertTokenizerFast's normalizer, pre-tokenizer and WordPiece (see cl_wordpiece.h),
 * on code point arrays with utf8proc's Unicode data. */
#include "cl_wordpiece.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define WP_MAX_WORD_CHARS 100

struct cl_wp {
  char **tok;      /* id -> token */
  int n;
  int32_t *slots;  /* open addressing: id + 1, 0 empty */
  size_t nslots;
  int lower, strip;
  int32_t pad, unk, cls, sep;
};

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

/* The id of the n bytes at s, or -1. */
static int32_t lookup(const cl_wp *w, const char *s, size_t n) {
  for (size_t i = hash(s, n) & (w->nslots - 1);; i = (i + 1) & (w->nslots - 1)) {
    int32_t v = w->slots[i];
    if (!v) return -1;
    const char *t = w->tok[v - 1];
    if (strlen(t) == n && !memcmp(t, s, n)) return v - 1;
  }
}

static int32_t special(cl_wp *w, const char *name, const char *path, cl_error *e) {
  int32_t id = lookup(w, name, strlen(name));
  if (id < 0) cl_err(e, CL_EFORMAT, "%s: the vocabulary has no %s token", path, name);
  return id;
}

int cl_wp_load(const char *path, int lower, int strip_accents, cl_wp **out, cl_error *e) {
  *out = NULL;
  char *buf;
  size_t len;
  int rc = cl_read_file(path, &buf, &len, e);
  if (rc) return rc;
  if (memchr(buf, 0, len)) {
    free(buf);
    return cl_err(e, CL_EFORMAT, "%s: contains a NUL byte; expected one token a line", path);
  }
  cl_wp *w = cl_xcalloc(1, sizeof *w);
  w->lower = lower != 0;
  w->strip = strip_accents < 0 ? w->lower : strip_accents != 0;
  size_t cap = 0;
  for (char *p = buf; p < buf + len;) { /* Hugging Face: each line minus its "\n" is a token */
    char *nl = memchr(p, '\n', (size_t)(buf + len - p)), *end = nl ? nl : buf + len;
    if ((size_t)w->n == cap) {
      cap = cap ? 2 * cap : 1024;
      char **t = realloc(w->tok, cap * sizeof *t);
      if (!t) abort();
      w->tok = t;
    }
    w->tok[w->n] = cl_xmalloc((size_t)(end - p) + 1);
    memcpy(w->tok[w->n], p, (size_t)(end - p));
    w->tok[w->n++][end - p] = 0;
    if (w->n > (1 << 24)) {
      free(buf);
      cl_wp_free(w);
      return cl_err(e, CL_EFORMAT, "%s: more than %d tokens", path, 1 << 24);
    }
    p = end + 1;
  }
  free(buf);
  for (w->nslots = 64; w->nslots < 2 * (size_t)w->n; w->nslots *= 2) {}
  w->slots = cl_xcalloc(w->nslots, sizeof *w->slots);
  for (int id = 0; id < w->n; id++) { /* a repeated token keeps its last id, as load_vocab */
    size_t n = strlen(w->tok[id]), i = hash(w->tok[id], n) & (w->nslots - 1);
    for (; w->slots[i]; i = (i + 1) & (w->nslots - 1))
      if (!strcmp(w->tok[w->slots[i] - 1], w->tok[id])) break;
    w->slots[i] = id + 1;
  }
  if ((w->pad = special(w, "[PAD]", path, e)) < 0 || (w->unk = special(w, "[UNK]", path, e)) < 0 ||
      (w->cls = special(w, "[CLS]", path, e)) < 0 || (w->sep = special(w, "[SEP]", path, e)) < 0) {
    cl_wp_free(w);
    return CL_EFORMAT;
  }
  *out = w;
  return CL_OK;
}

void cl_wp_free(cl_wp *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->tok[i]);
  free(w->tok);
  free(w->slots);
  free(w);
}

int cl_wp_vocab_size(const cl_wp *w) { return w->n; }
const char *cl_wp_id_str(const cl_wp *w, int32_t id) { return id >= 0 && id < w->n ? w->tok[id] : NULL; }

/* --- code point arrays --- */

typedef struct cps {
  int32_t *v;
  size_t n, cap;
} cps;

static void push(cps *b, int32_t c) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 64;
    int32_t *v = realloc(b->v, b->cap * sizeof *v);
    if (!v) abort();
    b->v = v;
  }
  b->v[b->n++] = c;
}

/* Rust's char::is_whitespace (the White_Space property). */
static int is_space(int32_t c) {
  return (c >= 9 && c <= 13) || c == ' ' || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* tokenizers' is_control: the C* categories, but \t \n \r count as white space. */
static int is_control(int32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return 0;
  utf8proc_category_t k = utf8proc_category(c);
  return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
         k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN;
}

static int is_cjk(int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* ASCII punctuation or a Unicode P* category (tokenizers' is_bert_punc). */
static int is_punct(int32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return 1;
  utf8proc_category_t k = utf8proc_category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* BertNormalizer: clean text, CJK spacing, strip accents (NFD, drop Mn), lower case. */
static int normalize(const cl_wp *w, const char *s, cps *out, cl_error *e) {
  size_t len = strlen(s);
  cps a = {0};
  for (size_t at = 0; at < len;) {
    utf8proc_int32_t c;
    utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)s + at, (utf8proc_ssize_t)(len - at), &c);
    if (step <= 0) {
      free(a.v);
      return cl_err(e, CL_EINVAL, "invalid UTF-8 at byte %zu", at);
    }
    at += (size_t)step;
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_space(c)) c = ' ';
    if (is_cjk(c)) push(&a, ' '), push(&a, c), push(&a, ' ');
    else push(&a, c);
  }
  for (size_t i = 0; i < a.n; i++) {
    utf8proc_int32_t d[32];
    int nd = 1;
    d[0] = a.v[i];
    if (w->strip) { /* NFD per character is NFD here: the Mn marks it would reorder are dropped */
      utf8proc_ssize_t r = utf8proc_decompose_char(a.v[i], d, 32, UTF8PROC_DECOMPOSE, NULL);
      nd = r > 0 && r <= 32 ? (int)r : (d[0] = a.v[i], 1);
    }
    for (int k = 0; k < nd; k++) {
      int32_t c = d[k];
      if (w->strip && utf8proc_category(c) == UTF8PROC_CATEGORY_MN) continue;
      if (w->lower && c == 0x130) { /* Rust's full lower case of U+0130: i + U+0307 */
        push(out, 'i'), push(out, 0x307);
        continue;
      }
      push(out, w->lower ? utf8proc_tolower(c) : c);
    }
  }
  free(a.v);
  return CL_OK;
}

/* WordPiece of one word (code points v[0..n)): greedy longest match from the left. */
static void wordpiece(const cl_wp *w, const int32_t *v, size_t n, int32_t *pieces, int cap, int *np) {
  if (n > WP_MAX_WORD_CHARS) {
    if (*np < cap) pieces[*np] = w->unk;
    (*np)++;
    return;
  }
  /* the word's UTF-8 after "##", so that a continuation is "##" + its bytes in place */
  char *buf = cl_xmalloc(4 * n + 3), *tmp = cl_xmalloc(4 * n + 3);
  size_t *off = cl_xmalloc((n + 1) * sizeof *off); /* byte offset of each char in buf */
  size_t b = 0;
  for (size_t i = 0; i < n; i++) off[i] = b, b += (size_t)utf8proc_encode_char(v[i], (utf8proc_uint8_t *)buf + b);
  off[n] = b;
  int start_np = *np;
  for (size_t start = 0; start < n;) {
    int32_t id = -1;
    size_t end = n;
    for (; end > start; end--) {
      size_t nb = off[end] - off[start];
      if (start) {
        tmp[0] = tmp[1] = '#';
        memcpy(tmp + 2, buf + off[start], nb);
      }
      if ((id = start ? lookup(w, tmp, nb + 2) : lookup(w, buf, nb)) >= 0) break;
    }
    if (id < 0) { /* not coverable: the whole word is one [UNK] */
      *np = start_np;
      if (*np < cap) pieces[*np] = w->unk;
      (*np)++;
      break;
    }
    if (*np < cap) pieces[*np] = id;
    (*np)++;
    start = end;
  }
  free(buf);
  free(tmp);
  free(off);
}

int cl_wp_pieces(const cl_wp *w, const char *utf8, int32_t *pieces, int cap, cl_error *e) {
  cps t = {0};
  int rc = normalize(w, utf8, &t, e);
  if (rc) return -rc;
  int np = 0;
  /* BertPreTokenizer: white space separates words, each punctuation char is its own word */
  for (size_t i = 0; i < t.n;) {
    if (is_space(t.v[i])) {
      i++;
      continue;
    }
    size_t j = i + 1;
    if (!is_punct(t.v[i]))
      while (j < t.n && !is_space(t.v[j]) && !is_punct(t.v[j])) j++;
    wordpiece(w, t.v + i, j - i, pieces, cap, &np);
    i = j;
  }
  free(t.v);
  return np;
}

int cl_wp_encode(const cl_wp *w, const char *utf8, int max_length, int32_t *ids, int32_t *mask, cl_error *e) {
  if (max_length < 2 || max_length > (1 << 20))
    return -cl_err(e, CL_EINVAL, "max_length %d: expected 2 to %d", max_length, 1 << 20);
  int np = cl_wp_pieces(w, utf8, ids + 1, max_length - 2, e);
  if (np < 0) return np;
  if (np > max_length - 2) np = max_length - 2; /* truncation: the first pieces */
  ids[0] = w->cls;
  ids[np + 1] = w->sep;
  for (int i = 0; i < max_length; i++) {
    if (i > np + 1) ids[i] = w->pad;
    if (mask) mask[i] = i <= np + 1;
  }
  return np + 2;
}
