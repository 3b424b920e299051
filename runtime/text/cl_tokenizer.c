/* cl_tok: vocab loading, the regex pre-split and byte-level BPE (open_clip SimpleTokenizer). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "cl_tokenizer.h"

#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define NMERGES 48894 /* lines[1 : 49152-256-2+1] of the merges file */
#define PAIR_BITS 17  /* open-addressing table for the merge ranks, load < 0.4 */

/* CLIP's pre-split, compiled with UTF|UCP|CASELESS like Python's regex.IGNORECASE, with two
 * differences between the engines spelled out in the last class:
 * - \s is the `regex` module's list; PCRE2's also holds U+180E, which Python keeps as a symbol;
 * - `regex` matches a negated class caselessly against every case variant, so U+0345 (which
 *   folds to the letter iota) matches no alternative and is skipped, like whitespace. */
static const char cl_tok_pattern[] =
    "<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
    "[^\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}\\x{345}\\p{L}\\p{N}]+";

struct cl_tok {
  char *arena;              /* every vocab string, NUL-terminated */
  uint32_t off[CL_TOK_VOCAB];
  int32_t byte_id[256];     /* the symbol of a byte inside a word */
  int32_t byte_id_end[256]; /* ... and as the last byte of a word (with </w>) */
  uint64_t *pair_key;       /* (a << 32 | b) of a mergeable pair */
  int32_t *pair_rank;       /* -1 = empty slot */
  int32_t merge_id[NMERGES];
  pcre2_code *re;
};

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100.. in
 * byte order; rank = position in that list = the byte's vocab id. */
static void bytes_to_unicode(uint32_t cp_of_rank[256], int rank_of_byte[256]) {
  int n = 0, extra = 0, in_bs[256] = {0};
  for (int b = 0; b < 256; b++)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
      in_bs[b] = 1;
      cp_of_rank[n] = (uint32_t)b;
      rank_of_byte[b] = n++;
    }
  for (int b = 0; b < 256; b++)
    if (!in_bs[b]) {
      cp_of_rank[n] = 256u + (uint32_t)extra++;
      rank_of_byte[b] = n++;
    }
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static uint32_t pair_slot(uint64_t key) {
  uint64_t h = key * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(h >> (64 - PAIR_BITS));
}

static int32_t pair_rank(const cl_tok *t, int32_t a, int32_t b) {
  uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
  uint32_t mask = (1u << PAIR_BITS) - 1;
  for (uint32_t s = pair_slot(key);; s = (s + 1) & mask) {
    if (t->pair_rank[s] < 0) return -1;
    if (t->pair_key[s] == key) return t->pair_rank[s];
  }
}

/* Later merges of the same pair win, as in Python's dict(zip(merges, range(...))). */
static void pair_put(cl_tok *t, int32_t a, int32_t b, int32_t rank) {
  uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
  uint32_t mask = (1u << PAIR_BITS) - 1;
  for (uint32_t s = pair_slot(key);; s = (s + 1) & mask) {
    if (t->pair_rank[s] < 0 || t->pair_key[s] == key) {
      t->pair_key[s] = key;
      t->pair_rank[s] = rank;
      return;
    }
  }
}

/* A string -> id map used while loading: Python's encoder dict keeps the last id of a string,
 * and symbols are compared as strings, so every id is canonicalised through it. */
typedef struct strmap {
  const cl_tok *t;
  int32_t *slot; /* -1 = empty */
  uint32_t mask;
} strmap;

static int32_t *strmap_find(strmap *m, const char *s, size_t n) {
  for (uint32_t i = (uint32_t)fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
    int32_t id = m->slot[i];
    if (id < 0) return &m->slot[i];
    const char *v = m->t->arena + m->t->off[id];
    if (strncmp(v, s, n) == 0 && v[n] == 0) return &m->slot[i];
  }
}

static int32_t strmap_get(strmap *m, const char *s, size_t n) { return *strmap_find(m, s, n); }

static int read_merges(const char *path, char **fa, char **fb, cl_error *e) {
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f) return cl_err(e, CL_EIO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
  char line[1024];
  int lineno = 0, nm = 0;
  while (nm < NMERGES) {
    if (!gzgets(f, line, sizeof line)) {
      int zerr = 0;
      const char *msg = gzerror(f, &zerr);
      gzclose(f);
      if (zerr != Z_OK) return cl_err(e, CL_EIO, "%s: line %d: %s", path, lineno + 1, msg);
      return cl_err(e, CL_EFORMAT, "%s: has %d merges, expected %d", path, nm, NMERGES);
    }
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      gzclose(f);
      return cl_err(e, CL_EFORMAT, "%s: line %d: longer than %zu bytes", path, lineno, sizeof line - 2);
    }
    if (lineno == 1) continue; /* "#version: 0.2" */
    /* merge.split(): exactly two fields separated by whitespace */
    char *fields[3] = {0};
    int nf = 0;
    for (char *p = line; *p && nf < 3;) {
      while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f' || *p == '\v') *p++ = 0;
      if (!*p) break;
      fields[nf++] = p;
      while (*p && !(*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f' || *p == '\v')) p++;
    }
    if (nf != 2) {
      gzclose(f);
      return cl_err(e, CL_EFORMAT, "%s: line %d: expected 2 fields in a merge, got %d", path, lineno, nf);
    }
    fa[nm] = cl_strdup(fields[0]);
    fb[nm] = cl_strdup(fields[1]);
    nm++;
  }
  gzclose(f);
  return CL_OK;
}

int cl_tok_load(const char *vocab_gz_path, cl_tok **out, cl_error *e) {
  if (!out) return cl_err(e, CL_EINVAL, "cl_tok_load: NULL out");
  *out = NULL;
  char pbuf[4096];
  const char *path = vocab_gz_path ? vocab_gz_path : cl_resource_path(pbuf, sizeof pbuf, CL_TOK_VOCAB_REL);
  char **fa = cl_xcalloc(NMERGES, sizeof *fa), **fb = cl_xcalloc(NMERGES, sizeof *fb);
  int rc = read_merges(path, fa, fb, e);
  cl_tok *t = NULL;
  strmap m = {0};
  if (rc) goto done;

  t = cl_xcalloc(1, sizeof *t);
  /* vocab: 256 byte chars, the same + "</w>", the merges joined, the two specials */
  size_t cap = 256 * 3 + 256 * 7 + 64;
  for (int r = 0; r < NMERGES; r++) cap += strlen(fa[r]) + strlen(fb[r]) + 1;
  t->arena = cl_xmalloc(cap);
  size_t used = 0;
  uint32_t cp_of_rank[256];
  int rank_of_byte[256];
  bytes_to_unicode(cp_of_rank, rank_of_byte);
  for (int w = 0; w < 2; w++)
    for (int r = 0; r < 256; r++) {
      uint32_t c = cp_of_rank[r];
      t->off[w * 256 + r] = (uint32_t)used;
      char *o = t->arena + used;
      size_t k = 0;
      if (c < 0x80) o[k++] = (char)c;
      else { o[k++] = (char)(0xC0 | c >> 6); o[k++] = (char)(0x80 | (c & 0x3F)); }
      if (w) { memcpy(o + k, "</w>", 4); k += 4; }
      o[k++] = 0;
      used += k;
    }
  for (int r = 0; r < NMERGES; r++) {
    t->off[512 + r] = (uint32_t)used;
    size_t la = strlen(fa[r]), lb = strlen(fb[r]);
    memcpy(t->arena + used, fa[r], la);
    memcpy(t->arena + used + la, fb[r], lb + 1);
    used += la + lb + 1;
  }
  static const char *special[2] = {"<start_of_text>", "<end_of_text>"};
  for (int s = 0; s < 2; s++) {
    t->off[CL_TOK_SOT + s] = (uint32_t)used;
    memcpy(t->arena + used, special[s], strlen(special[s]) + 1);
    used += strlen(special[s]) + 1;
  }

  m.t = t;
  m.mask = (1u << 17) - 1;
  m.slot = cl_xmalloc(((size_t)m.mask + 1) * sizeof *m.slot);
  memset(m.slot, 0xFF, ((size_t)m.mask + 1) * sizeof *m.slot);
  for (int32_t id = 0; id < CL_TOK_VOCAB; id++) {
    const char *s = t->arena + t->off[id];
    *strmap_find(&m, s, strlen(s)) = id; /* last wins */
  }
  for (int b = 0; b < 256; b++) {
    const char *s = t->arena + t->off[rank_of_byte[b]];
    t->byte_id[b] = strmap_get(&m, s, strlen(s));
    s = t->arena + t->off[256 + rank_of_byte[b]];
    t->byte_id_end[b] = strmap_get(&m, s, strlen(s));
  }
  t->pair_key = cl_xmalloc(sizeof *t->pair_key << PAIR_BITS);
  t->pair_rank = cl_xmalloc(sizeof *t->pair_rank << PAIR_BITS);
  memset(t->pair_rank, 0xFF, sizeof *t->pair_rank << PAIR_BITS);
  for (int r = 0; r < NMERGES; r++) {
    const char *s = t->arena + t->off[512 + r];
    t->merge_id[r] = strmap_get(&m, s, strlen(s));
    int32_t a = strmap_get(&m, fa[r], strlen(fa[r])), b = strmap_get(&m, fb[r], strlen(fb[r]));
    if (a >= 0 && b >= 0) pair_put(t, a, b, r); /* a part no symbol can equal never merges */
  }

  int errcode;
  PCRE2_SIZE erroff;
  t->re = pcre2_compile((PCRE2_SPTR)cl_tok_pattern, PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &errcode, &erroff, NULL);
  if (!t->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(errcode, msg, sizeof msg);
    rc = cl_err(e, CL_EUNSUP, "tokenizer regex at offset %zu: %s", (size_t)erroff, (char *)msg);
    goto done;
  }

done:
  for (int r = 0; r < NMERGES; r++) {
    free(fa[r]);
    free(fb[r]);
  }
  free(fa);
  free(fb);
  free(m.slot);
  if (rc) {
    cl_tok_free(t);
    return rc;
  }
  *out = t;
  return CL_OK;
}

void cl_tok_free(cl_tok *t) {
  if (!t) return;
  if (t->re) pcre2_code_free(t->re);
  free(t->arena);
  free(t->pair_key);
  free(t->pair_rank);
  free(t);
}

const char *cl_tok_id_str(const cl_tok *t, int32_t id) {
  if (!t || id < 0 || id >= CL_TOK_VOCAB) return NULL;
  return t->arena + t->off[id];
}

typedef struct ids {
  int32_t *v;
  size_t n, cap;
} ids;

static void ids_push(ids *b, int32_t x) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 128;
    int32_t *v = cl_xmalloc(b->cap * sizeof *v);
    if (b->n) memcpy(v, b->v, b->n * sizeof *v);
    free(b->v);
    b->v = v;
  }
  b->v[b->n++] = x;
}

/* SimpleTokenizer.bpe on one piece: repeatedly merge every occurrence (left to right) of the
 * adjacent pair with the lowest rank, until no pair has a rank. */
static void bpe(const cl_tok *t, const unsigned char *s, size_t n, int32_t *w, ids *out) {
  for (size_t i = 0; i < n; i++) w[i] = i + 1 < n ? t->byte_id[s[i]] : t->byte_id_end[s[i]];
  while (n > 1) {
    int32_t best = -1, first = 0, second = 0;
    for (size_t i = 0; i + 1 < n; i++) {
      int32_t r = pair_rank(t, w[i], w[i + 1]);
      if (r >= 0 && (best < 0 || r < best)) {
        best = r;
        first = w[i];
        second = w[i + 1];
      }
    }
    if (best < 0) break;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
      if (i + 1 < n && w[i] == first && w[i + 1] == second) {
        w[o++] = t->merge_id[best];
        i += 2;
      } else {
        w[o++] = w[i++];
      }
    }
    n = o;
  }
  for (size_t i = 0; i < n; i++) ids_push(out, w[i]);
}

int cl_tok_encode(const cl_tok *t, const char *utf8, int32_t *out_ids, int context_len, cl_error *e) {
  if (!t || !utf8 || !out_ids) return -cl_err(e, CL_EINVAL, "cl_tok_encode: NULL argument");
  if (context_len < 1) return -cl_err(e, CL_EINVAL, "cl_tok_encode: context length %d < 1", context_len);
  char *text;
  int rc = cl_tok_clean(utf8, &text, e);
  if (rc) return -rc;
  size_t len = strlen(text);
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
  int32_t *w = cl_xmalloc((len + 1) * sizeof *w);
  ids all = {0};
  ids_push(&all, CL_TOK_SOT);
  PCRE2_SIZE at = 0;
  /* Only the first context_len ids survive truncation; stop once past them. */
  while (at < len && all.n <= (size_t)context_len) {
    int mr = pcre2_match(t->re, (PCRE2_SPTR)text, len, at, 0, md, NULL);
    if (mr == PCRE2_ERROR_NOMATCH) break;
    if (mr < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(mr, msg, sizeof msg);
      rc = cl_err(e, CL_EINVAL, "tokenizer regex failed at byte %zu: %s", (size_t)at, (char *)msg);
      break;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    const char *p = text + ov[0];
    size_t n = ov[1] - ov[0];
    if (n == 0) break; /* the pattern cannot match empty; never loop on it */
    at = ov[1];
    /* the specials are cached as themselves in SimpleTokenizer.bpe */
    if (n == 15 && memcmp(p, "<start_of_text>", 15) == 0) ids_push(&all, CL_TOK_SOT);
    else if (n == 13 && memcmp(p, "<end_of_text>", 13) == 0) ids_push(&all, CL_TOK_EOT);
    else bpe(t, (const unsigned char *)p, n, w, &all);
  }
  pcre2_match_data_free(md);
  free(w);
  free(text);
  if (rc) {
    free(all.v);
    return -rc;
  }
  ids_push(&all, CL_TOK_EOT);
  int n = (int)(all.n < (size_t)context_len ? all.n : (size_t)context_len);
  memcpy(out_ids, all.v, (size_t)n * sizeof *out_ids);
  if (all.n > (size_t)context_len) out_ids[n - 1] = CL_TOK_EOT;
  for (int i = n; i < context_len; i++) out_ids[i] = 0;
  free(all.v);
  return n;
}
