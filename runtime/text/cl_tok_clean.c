/* cl_tok_clean: open_clip's _clean_lower(text) =
 *   " ".join(html.unescape(html.unescape(ftfy.fix_text(text))).strip().split()).lower()
 * with Python's semantics, on code point arrays.
 *
 * ftfy.fix_text is reproduced except for its mojibake repair (fix_encoding and the steps only
 * it uses: restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8). That is the
 * known limit: text that ftfy would re-decode (e.g. "cafÃ©" -> "café") is kept as it is.
 * Done like ftfy 6.3: per '\n' segment, HTML entities (only when no '<' seen so far), C1
 * controls as windows-1252, Latin ligatures, full/half width, curly quotes, line breaks,
 * ANSI escapes, control characters, then NFC (utf8proc), repeated until nothing changes.
 * (ftfy also cuts lines longer than 10^6 code points into pieces; not done here.)
 * Unicode data: str.lower and ftfy's width map come from tables generated with Python 3.11
 * (Unicode 14); NFC from utf8proc, \p{L}/\p{N} from PCRE2; versions differ only on code
 * points assigned recently. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "cl_tok_tables.h"
#include "cl_tokenizer.h"

typedef struct cps {
  uint32_t *v;
  size_t n, cap;
} cps;

static void cps_push(cps *b, uint32_t c) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 64;
    uint32_t *v = cl_xmalloc(b->cap * sizeof *v);
    if (b->n) memcpy(v, b->v, b->n * sizeof *v);
    free(b->v);
    b->v = v;
  }
  b->v[b->n++] = c;
}

static void cps_swap(cps *a, cps *b) {
  cps t = *a;
  *a = *b;
  *b = t;
}

/* Strict UTF-8 as Python decodes it: no overlongs, surrogates or values past U+10FFFF. */
static int utf8_decode(const unsigned char *s, size_t n, cps *out, cl_error *e) {
  size_t i = 0;
  while (i < n) {
    uint32_t c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || i + len > n) return cl_err(e, CL_EINVAL, "invalid UTF-8 at byte %zu", i);
    if (len > 1) c &= 0x7F >> len;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return cl_err(e, CL_EINVAL, "invalid UTF-8 at byte %zu", i);
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    static const uint32_t minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < minv[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      return cl_err(e, CL_EINVAL, "invalid UTF-8 at byte %zu", i);
    cps_push(out, c);
    i += len;
  }
  return CL_OK;
}

static size_t utf8_put(uint32_t c, char *o) {
  if (c < 0x80) { o[0] = (char)c; return 1; }
  if (c < 0x800) { o[0] = (char)(0xC0 | c >> 6); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
  if (c < 0x10000) {
    o[0] = (char)(0xE0 | c >> 12); o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | c >> 18); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

static char *utf8_encode(const uint32_t *v, size_t n, size_t *len) {
  char *s = cl_xmalloc(4 * n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) o += utf8_put(v[i], s + o);
  s[o] = 0;
  if (len) *len = o;
  return s;
}

static void push_utf8(cps *out, const char *s) {
  cps tmp = {0};
  (void)utf8_decode((const unsigned char *)s, strlen(s), &tmp, NULL); /* table data is valid */
  for (size_t i = 0; i < tmp.n; i++) cps_push(out, tmp.v[i]);
  free(tmp.v);
}

/* ---- table lookups ---- */

/* The entry whose name is exactly key[0..n), or NULL. */
static const cl_tok_entity *entity_find(const cl_tok_entity *tab, int count, const char *key, size_t n) {
  int lo = 0, hi = count - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    const char *name = tab[mid].name;
    int c = strncmp(name, key, n);
    if (c == 0) c = name[n] ? 1 : 0;
    if (c == 0) return &tab[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

static const cl_tok_map *map_find(const cl_tok_map *tab, int count, uint32_t c) {
  int lo = 0, hi = count - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (tab[mid].cp == c) return &tab[mid];
    if (tab[mid].cp < c) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

static int in_ranges(const cl_tok_range *r, int count, uint32_t c) {
  int lo = 0, hi = count - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (c < r[mid].lo) hi = mid - 1;
    else if (c > r[mid].hi) lo = mid + 1;
    else return 1;
  }
  return 0;
}

/* Python's str.isspace(): bidi WS/B/S or category Zs. */
static int py_space(uint32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  if (c < 0x85) return 0;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex(uint32_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int is_alnum(uint32_t c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

/* ---- Python's html.unescape ---- */

/* windows-1252 for 0x80..0x9F; the five bytes it leaves undefined map to themselves (as
 * html.unescape's table and ftfy's sloppy codec both do). */
static const uint16_t cp1252[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

/* html._replace_charref for a numeric reference; num is saturated at 0x110000. */
static void charref_num(uint32_t num, cps *out) {
  if (num == 0) { cps_push(out, 0xFFFD); return; }
  if (num == 0x0D) { cps_push(out, 0x0D); return; }
  if (num >= 0x80 && num <= 0x9F) { cps_push(out, cp1252[num - 0x80]); return; }
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) { cps_push(out, 0xFFFD); return; }
  /* _invalid_codepoints decode to nothing */
  if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
      (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
    return;
  cps_push(out, num);
}

/* Named reference s = v[0..n) (up to 32 code points plus an optional ';'): an exact html5 name,
 * else the longest html5 prefix of at least 2 characters, else left as is. */
static void charref_named(const uint32_t *v, size_t n, cps *out) {
  char key[40];
  size_t ascii = 0;
  while (ascii < n && ascii < sizeof key && v[ascii] < 0x80) {
    key[ascii] = (char)v[ascii];
    ascii++;
  }
  const cl_tok_entity *ent = NULL;
  size_t x = n;
  if (ascii == n) ent = entity_find(cl_tok_html5, cl_tok_html5_n, key, n);
  if (!ent)
    for (x = (n - 1 < ascii ? n - 1 : ascii); x >= 2; x--)
      if ((ent = entity_find(cl_tok_html5, cl_tok_html5_n, key, x))) break;
  if (ent) {
    push_utf8(out, ent->value);
    for (size_t i = x; i < n; i++) cps_push(out, v[i]);
    return;
  }
  cps_push(out, '&');
  for (size_t i = 0; i < n; i++) cps_push(out, v[i]);
}

/* html.unescape: the regex &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) */
static void html_unescape(const cps *in, cps *out) {
  const uint32_t *v = in->v;
  size_t n = in->n, i = 0;
  out->n = 0;
  while (i < n) {
    if (v[i] != '&') { cps_push(out, v[i++]); continue; }
    size_t j = i + 1;
    if (j < n && v[j] == '#') {
      int hex = j + 1 < n && (v[j + 1] == 'x' || v[j + 1] == 'X');
      size_t d0 = j + 1 + (size_t)hex, k = d0;
      uint32_t num = 0;
      while (k < n && (hex ? is_hex(v[k]) : is_digit(v[k]))) {
        uint32_t d = is_digit(v[k]) ? v[k] - '0' : (v[k] | 0x20) - 'a' + 10;
        num = num >= 0x110000 ? 0x110000 : num * (hex ? 16 : 10) + d; /* saturate: all map to U+FFFD */
        if (num > 0x110000) num = 0x110000;
        k++;
      }
      if (k == d0) { cps_push(out, v[i++]); continue; } /* "&#", "&#x" without digits stay */
      if (k < n && v[k] == ';') k++;
      charref_num(num, out);
      i = k;
      continue;
    }
    size_t k = j;
    while (k < n && k - j < 32) {
      uint32_t c = v[k];
      if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';')
        break;
      k++;
    }
    if (k == j) { cps_push(out, v[i++]); continue; }
    if (k < n && v[k] == ';') k++;
    charref_named(v + j, k - j, out);
    i = k;
  }
}

static int has_cp(const cps *b, uint32_t c) {
  for (size_t i = 0; i < b->n; i++)
    if (b->v[i] == c) return 1;
  return 0;
}

/* ---- ftfy ---- */

/* ftfy.fixes.unescape_html: &#?[0-9A-Za-z]{1,24}; that is an html5 name ending in ';' or one of
 * ftfy's all-caps names, or a numeric reference html.unescape decodes completely. */
static void ftfy_unescape(const cps *in, cps *out) {
  const uint32_t *v = in->v;
  size_t n = in->n, i = 0;
  out->n = 0;
  while (i < n) {
    if (v[i] != '&') { cps_push(out, v[i++]); continue; }
    int hash = i + 1 < n && v[i + 1] == '#';
    size_t j = i + 1 + (size_t)hash, k = j;
    while (k < n && k - j <= 24 && is_alnum(v[k])) k++;
    if (k == j || k - j > 24 || k >= n || v[k] != ';') { cps_push(out, v[i++]); continue; }
    size_t end = k + 1; /* v[i..end) is the entity */
    if (!hash) {
      char key[32];
      size_t kn = end - j;
      for (size_t q = 0; q < kn; q++) key[q] = (char)v[j + q];
      const cl_tok_entity *ent = entity_find(cl_tok_html5, cl_tok_html5_n, key, kn);
      if (!ent) ent = entity_find(cl_tok_ftfy_upper, cl_tok_ftfy_upper_n, key, kn);
      if (ent) push_utf8(out, ent->value);
      else
        for (size_t q = i; q < end; q++) cps_push(out, v[q]);
    } else {
      cps ref = {.v = (uint32_t *)(v + i), .n = end - i}, un = {0};
      html_unescape(&ref, &un);
      if (has_cp(&un, ';'))
        for (size_t q = i; q < end; q++) cps_push(out, v[q]);
      else
        for (size_t q = 0; q < un.n; q++) cps_push(out, un.v[q]);
      free(un.v);
    }
    i = end;
  }
}

/* uncurl_quotes after fix_character_width on one code point. */
static void width_quotes(uint32_t c, cps *out) {
  int wide = c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF);
  const cl_tok_map *w = wide ? map_find(cl_tok_width, cl_tok_width_n, c) : NULL;
  uint32_t r[2] = {c, 0};
  if (w) { r[0] = w->to[0]; r[1] = w->to[1]; }
  for (int q = 0; q < 2 && r[q]; q++) {
    uint32_t x = r[q];
    if (x == 0x02BC || (x >= 0x2018 && x <= 0x201B)) x = '\'';
    else if (x >= 0x201C && x <= 0x201F) x = '"';
    cps_push(out, x);
  }
}

/* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes: all per code point,
 * applied in ftfy's order. */
static void ftfy_charmaps(const cps *in, cps *out) {
  static const struct { uint32_t cp; const char *to; } lig[] = {
      {0x0132, "IJ"}, {0x0133, "ij"}, {0x0149, "\xCA\xBCn"}, {0x01C4, "D\xC5\xBD"},
      {0x01C5, "D\xC5\xBE"}, {0x01C6, "d\xC5\xBE"}, {0x01C7, "LJ"}, {0x01C8, "Lj"},
      {0x01C9, "lj"}, {0x01CA, "NJ"}, {0x01CB, "Nj"}, {0x01CC, "nj"}, {0x01F1, "DZ"},
      {0x01F2, "Dz"}, {0x01F3, "dz"}, {0xFB00, "ff"}, {0xFB01, "fi"}, {0xFB02, "fl"},
      {0xFB03, "ffi"}, {0xFB04, "ffl"}, {0xFB05, "\xC5\xBFt"}, {0xFB06, "st"}};
  out->n = 0;
  for (size_t i = 0; i < in->n; i++) {
    uint32_t c = in->v[i];
    if (c >= 0x80 && c <= 0x9F) c = cp1252[c - 0x80];
    const char *l = NULL;
    if ((c >= 0x0132 && c <= 0x01F3) || (c >= 0xFB00 && c <= 0xFB06))
      for (size_t q = 0; q < sizeof lig / sizeof lig[0]; q++)
        if (lig[q].cp == c) l = lig[q].to;
    if (!l) { width_quotes(c, out); continue; }
    cps tmp = {0};
    push_utf8(&tmp, l);
    for (size_t q = 0; q < tmp.n; q++) width_quotes(tmp.v[q], out);
    free(tmp.v);
  }
}

/* fix_line_breaks, remove_terminal_escapes (\x1b\[(\d|;)*[a-zA-Z], \d = Nd), remove_control_chars. */
static void ftfy_breaks_controls(const cps *in, cps *tmp, cps *out) {
  const uint32_t *v = in->v;
  size_t n = in->n;
  tmp->n = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = v[i];
    if (c == '\r') {
      if (i + 1 < n && v[i + 1] == '\n') i++;
      c = '\n';
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      c = '\n';
    }
    cps_push(tmp, c);
  }
  v = tmp->v;
  n = tmp->n;
  out->n = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = v[i];
    if (c == 0x1B && i + 1 < n && v[i + 1] == '[') {
      size_t k = i + 2;
      while (k < n && (v[k] == ';' || utf8proc_category((utf8proc_int32_t)v[k]) == UTF8PROC_CATEGORY_ND)) k++;
      if (k < n && v[k] < 0x80 && is_alnum(v[k]) && !is_digit(v[k])) {
        i = k;
        continue;
      }
    }
    if (c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
        c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
      continue;
    cps_push(out, c);
  }
}

static int nfc(const cps *in, cps *out, cl_error *e) {
  out->n = 0;
  int simple = 1; /* nothing below U+0300 composes or decomposes under NFC */
  for (size_t i = 0; i < in->n && simple; i++) simple = in->v[i] < 0x300;
  if (simple) {
    for (size_t i = 0; i < in->n; i++) cps_push(out, in->v[i]);
    return CL_OK;
  }
  size_t len;
  char *s = utf8_encode(in->v, in->n, &len);
  utf8proc_uint8_t *r = NULL;
  utf8proc_ssize_t rn = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &r,
                                     UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  free(s);
  if (rn < 0) return cl_err(e, CL_EINVAL, "NFC normalization failed: %s", utf8proc_errmsg(rn));
  int rc = utf8_decode(r, (size_t)rn, out, e);
  free(r);
  return rc;
}

static int cps_eq(const cps *a, const cps *b) {
  return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* ftfy.fix_and_explain on one segment, without fix_encoding. */
static int ftfy_segment(cps *seg, int unescape, cl_error *e) {
  cps orig = {0}, a = {0}, b = {0};
  int rc = CL_OK;
  for (int iter = 0; iter < 100; iter++) { /* ftfy loops until a fixed point */
    orig.n = 0;
    for (size_t i = 0; i < seg->n; i++) cps_push(&orig, seg->v[i]);
    if (unescape) {
      ftfy_unescape(seg, &a);
      cps_swap(seg, &a);
    }
    ftfy_charmaps(seg, &a);
    ftfy_breaks_controls(&a, &b, seg);
    if ((rc = nfc(seg, &a, e))) break;
    cps_swap(seg, &a);
    if (cps_eq(seg, &orig)) break;
  }
  free(orig.v);
  free(a.v);
  free(b.v);
  return rc;
}

/* ftfy.fix_text: lines are fixed one by one; once a line holds '<' (looks like HTML), entities
 * are left alone in it and in every later line (ftfy keeps the changed config). */
static int ftfy_fix_text(const cps *in, cps *out, cl_error *e) {
  int unescape = 1, rc = CL_OK;
  size_t pos = 0;
  cps seg = {0};
  out->n = 0;
  while (pos < in->n) {
    size_t end = pos;
    while (end < in->n && in->v[end] != '\n') end++;
    if (end < in->n) end++;
    seg.n = 0;
    for (size_t i = pos; i < end; i++) cps_push(&seg, in->v[i]);
    if (unescape && has_cp(&seg, '<')) unescape = 0;
    if ((rc = ftfy_segment(&seg, unescape, e))) break;
    for (size_t i = 0; i < seg.n; i++) cps_push(out, seg.v[i]);
    pos = end;
  }
  free(seg.v);
  return rc;
}

/* ---- whitespace and lower ---- */

static int cased(uint32_t c) { return in_ranges(cl_tok_cased, cl_tok_cased_n, c); }
static int case_ignorable(uint32_t c) { return in_ranges(cl_tok_case_ignorable, cl_tok_case_ignorable_n, c); }

/* str.lower(): the table, plus the Final_Sigma rule for U+03A3 as CPython applies it. */
static void py_lower(const cps *in, cps *out) {
  const uint32_t *v = in->v;
  size_t n = in->n;
  out->n = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = v[i];
    if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && case_ignorable(v[j - 1])) j--;
      int final = j > 0 && cased(v[j - 1]);
      if (final) {
        j = i + 1;
        while (j < n && case_ignorable(v[j])) j++;
        final = j == n || !cased(v[j]);
      }
      cps_push(out, final ? 0x3C2 : 0x3C3);
      continue;
    }
    const cl_tok_map *m = c >= 0x41 ? map_find(cl_tok_lower, cl_tok_lower_n, c) : NULL;
    if (!m) { cps_push(out, c); continue; }
    cps_push(out, m->to[0]);
    if (m->to[1]) cps_push(out, m->to[1]);
  }
}

int cl_tok_clean(const char *utf8, char **out, cl_error *e) {
  if (!utf8 || !out) return cl_err(e, CL_EINVAL, "cl_tok_clean: NULL argument");
  *out = NULL;
  cps a = {0}, b = {0};
  int rc = utf8_decode((const unsigned char *)utf8, strlen(utf8), &a, e);
  if (!rc) rc = ftfy_fix_text(&a, &b, e);
  if (!rc) {
    if (has_cp(&b, '&')) {
      html_unescape(&b, &a);
      if (has_cp(&a, '&')) {
        html_unescape(&a, &b);
      } else {
        cps_swap(&a, &b);
      }
    }
    /* " ".join(s.strip().split()).strip(): words separated by one space */
    a.n = 0;
    for (size_t i = 0; i < b.n;) {
      while (i < b.n && py_space(b.v[i])) i++;
      if (i == b.n) break;
      if (a.n) cps_push(&a, ' ');
      while (i < b.n && !py_space(b.v[i])) cps_push(&a, b.v[i++]);
    }
    py_lower(&a, &b);
    *out = utf8_encode(b.v, b.n, NULL);
  }
  free(a.v);
  free(b.v);
  return rc;
}
