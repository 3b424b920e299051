/* cl_pickle: a restricted pickle VM for torch.save output.
 *
 * Why hand-written: pickle is a small stack machine whose GLOBAL/REDUCE opcodes call arbitrary
 * Python callables, and no C library reads it safely (the few that exist either trust the input
 * or pull in an interpreter). torch.save of a state dict needs ~40 opcodes and a handful of
 * globals, so we implement exactly those: every other opcode or global is refused with its byte
 * offset, every length and index is bounds-checked, and "calling" an allowed global only builds a
 * value (a dict, a tensor description) — nothing is ever executed.
 *
 * Memory: every value is registered in the cl_pt_pickle and freed together, so values shared
 * through the memo (or cycles made with APPEND) need no reference counting, and nothing here
 * recurses over the value graph. */
#include "cl_pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vm {
  const unsigned char *d;
  size_t len, pos, op; /* op: offset of the opcode being run, for errors */
  cl_pt_pickle *p;
  cl_pt_value **stack;
  size_t n, cap;
  size_t *marks;
  size_t nmarks, capmarks;
  cl_pt_value **memo;
  size_t nmemo, memocount; /* memocount: filled slots, the index MEMOIZE uses (Python's len(memo)) */
  cl_error *e;
} vm;

static int fail(vm *v, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(vm *v, int code, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return cl_err(v->e, code, "%s (offset %zu)", buf, v->op);
}

static void *grow(void *a, size_t *cap, size_t need, size_t elt) {
  if (need <= *cap) return a;
  size_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *b = realloc(a, c * elt);
  if (!b) {
    fprintf(stderr, "clade: out of memory (%zu bytes)\n", c * elt);
    abort();
  }
  *cap = c;
  return b;
}

static cl_pt_value *newv(vm *v, cl_pt_kind k) {
  cl_pt_pickle *p = v->p;
  p->all = grow(p->all, &p->capall, p->nall + 1, sizeof *p->all);
  cl_pt_value *x = cl_xcalloc(1, sizeof *x);
  x->kind = k;
  p->all[p->nall++] = x;
  return x;
}

static void seq_push(cl_pt_value *s, cl_pt_value *x) {
  s->u.seq.v = grow(s->u.seq.v, &s->u.seq.cap, s->u.seq.n + 1, sizeof *s->u.seq.v);
  s->u.seq.v[s->u.seq.n++] = x;
}

static void push(vm *v, cl_pt_value *x) {
  v->stack = grow(v->stack, &v->cap, v->n + 1, sizeof *v->stack);
  v->stack[v->n++] = x;
}

/* The bottom of the current frame: Python's unpickler starts a fresh stack at each MARK, so
 * nothing below the last mark may be popped by an ordinary opcode. */
static size_t floor_(const vm *v) { return v->nmarks ? v->marks[v->nmarks - 1] : 0; }

static int pop(vm *v, cl_pt_value **out) {
  *out = NULL;
  if (v->n <= floor_(v)) return fail(v, CL_EFORMAT, "stack underflow");
  *out = v->stack[--v->n];
  return CL_OK;
}

static int top(vm *v, cl_pt_value **out) {
  *out = NULL;
  if (v->n <= floor_(v)) return fail(v, CL_EFORMAT, "stack underflow");
  *out = v->stack[v->n - 1];
  return CL_OK;
}

/* Pops the last mark; the items above it are stack[*from .. v->n). */
static int pop_mark(vm *v, size_t *from) {
  if (!v->nmarks) return fail(v, CL_EFORMAT, "no MARK on the stack");
  *from = v->marks[--v->nmarks];
  return CL_OK;
}

static int need(vm *v, size_t n) {
  if (v->len - v->pos < n)
    return fail(v, CL_EFORMAT, "truncated: opcode 0x%02x needs %zu argument bytes, %zu left",
                v->d[v->op], n, v->len - v->pos);
  return CL_OK;
}

static uint64_t le(const unsigned char *b, int n) {
  uint64_t x = 0;
  for (int i = n - 1; i >= 0; i--) x = (x << 8) | b[i];
  return x;
}

static cl_pt_value *mkint(vm *v, int64_t x) {
  cl_pt_value *r = newv(v, CL_PT_INT);
  r->u.i.v = x;
  r->u.i.approx = (double)x;
  return r;
}

/* LONG1/LONG4: little-endian two's complement of any length. Exact when it fits int64. */
static cl_pt_value *mklong(vm *v, const unsigned char *b, size_t n) {
  if (n == 0) return mkint(v, 0);
  int neg = (b[n - 1] & 0x80) != 0;
  unsigned char ext = neg ? 0xff : 0x00;
  int fits = 1;
  for (size_t i = 8; i < n; i++)
    if (b[i] != ext) fits = 0;
  if (fits && n > 8 && ((b[7] & 0x80) != 0) != neg) fits = 0;
  if (fits) {
    size_t k = n < 8 ? n : 8;
    uint64_t u = le(b, (int)k);
    if (neg && k < 8) u |= ~(uint64_t)0 << (8 * k);
    int64_t s;
    memcpy(&s, &u, sizeof s);
    return mkint(v, s);
  }
  cl_pt_value *r = newv(v, CL_PT_INT);
  r->u.i.big = 1;
  double a = (double)(signed char)b[n - 1];
  for (size_t i = n - 1; i-- > 0;) a = a * 256.0 + b[i];
  r->u.i.approx = a;
  r->u.i.v = neg ? INT64_MIN : INT64_MAX;
  return r;
}

static cl_pt_value *mkstr(vm *v, cl_pt_kind k, const unsigned char *b, size_t n) {
  cl_pt_value *r = newv(v, k);
  r->u.str.s = cl_xmalloc(n + 1);
  memcpy(r->u.str.s, b, n);
  r->u.str.s[n] = 0;
  r->u.str.n = n;
  return r;
}

/* A sequence of the stack items [from, v->n) (by index: the stack is NULL until first pushed). */
static cl_pt_value *mkseq(vm *v, cl_pt_kind k, size_t from) {
  cl_pt_value *r = newv(v, k);
  for (size_t i = from; i < v->n; i++) seq_push(r, v->stack[i]);
  return r;
}

static int str_is(const cl_pt_value *x, const char *s) {
  return x && x->kind == CL_PT_STR && x->u.str.n == strlen(s) && memcmp(x->u.str.s, s, x->u.str.n) == 0;
}

/* A printable, bounded copy of untrusted text for error messages. */
static const char *clean(char *buf, size_t bn, const unsigned char *s, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 4 < bn; i++) buf[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
  if (n > 0 && k + 4 >= bn) { memcpy(buf + k, "...", 3); k += 3; }
  buf[k] = 0;
  return buf;
}

static const struct { const char *mod, *name; cl_pt_global g; cl_dtype dt; } allowed[] = {
  {"collections", "OrderedDict", CL_PT_G_ORDEREDDICT, CL_F32},
  {"torch._utils", "_rebuild_tensor_v2", CL_PT_G_REBUILD_TENSOR_V2, CL_F32},
  {"torch._utils", "_rebuild_parameter", CL_PT_G_REBUILD_PARAMETER, CL_F32},
  {"torch._utils", "_rebuild_parameter_with_state", CL_PT_G_REBUILD_PARAMETER_WITH_STATE, CL_F32},
  {"torch", "FloatStorage", CL_PT_G_STORAGE, CL_F32},
  {"torch", "HalfStorage", CL_PT_G_STORAGE, CL_F16},
  {"torch", "BFloat16Storage", CL_PT_G_STORAGE, CL_BF16},
  {"torch", "DoubleStorage", CL_PT_G_STORAGE, CL_F64},
  {"torch", "LongStorage", CL_PT_G_STORAGE, CL_I64},
  {"torch", "IntStorage", CL_PT_G_STORAGE, CL_I32},
  {"torch", "ShortStorage", CL_PT_G_STORAGE, CL_I16},
  {"torch", "CharStorage", CL_PT_G_STORAGE, CL_I8},
  {"torch", "ByteStorage", CL_PT_G_STORAGE, CL_U8},
  {"torch", "BoolStorage", CL_PT_G_STORAGE, CL_BOOL},
};

static int global(vm *v, const unsigned char *mod, size_t nm, const unsigned char *name, size_t nn) {
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
    if (strlen(allowed[i].mod) == nm && memcmp(allowed[i].mod, mod, nm) == 0 &&
        strlen(allowed[i].name) == nn && memcmp(allowed[i].name, name, nn) == 0) {
      cl_pt_value *g = newv(v, CL_PT_GLOBAL);
      g->u.glob.g = allowed[i].g;
      g->u.glob.dtype = allowed[i].dt;
      push(v, g);
      return CL_OK;
    }
  char a[96], b[96];
  return fail(v, CL_EUNSUP, "pickle global '%s %s' not allowed", clean(a, sizeof a, mod, nm),
              clean(b, sizeof b, name, nn));
}

/* GLOBAL's argument: "module\nname\n" as text. */
static int read_line(vm *v, const unsigned char **s, size_t *n) {
  const unsigned char *start = v->d + v->pos;
  const unsigned char *nl = memchr(start, '\n', v->len - v->pos);
  if (!nl) return fail(v, CL_EFORMAT, "truncated: GLOBAL name without a newline");
  *s = start;
  *n = (size_t)(nl - start);
  v->pos += *n + 1;
  return CL_OK;
}

static int as_size(vm *v, const cl_pt_value *x, const char *what, int64_t *out) {
  if (!x || x->kind != CL_PT_INT)
    return fail(v, CL_EFORMAT, "%s is a %s, not an int", what, x ? cl_pt_kind_name(x->kind) : "nothing");
  if (x->u.i.big) return fail(v, CL_EFORMAT, "%s %.17g is too large", what, x->u.i.approx);
  if (x->u.i.v < 0) return fail(v, CL_EFORMAT, "%s is negative (%lld)", what, (long long)x->u.i.v);
  *out = x->u.i.v;
  return CL_OK;
}

/* ('storage', <Storage class>, key, location, numel): what torch's persistent_id writes. */
static int persid(vm *v, cl_pt_value *pid, cl_pt_value **out) {
  if (pid->kind != CL_PT_TUPLE || pid->u.seq.n != 5 || !str_is(pid->u.seq.v[0], "storage"))
    return fail(v, CL_EUNSUP, "unsupported persistent id (expected ('storage', type, key, location, numel))");
  cl_pt_value **a = pid->u.seq.v;
  if (a[1]->kind != CL_PT_GLOBAL || a[1]->u.glob.g != CL_PT_G_STORAGE)
    return fail(v, CL_EUNSUP, "persistent id: storage type is not a torch *Storage class");
  if (a[2]->kind != CL_PT_STR || a[2]->u.str.n == 0 || a[2]->u.str.n > 64 || a[2]->u.str.s[0] == '.')
    return fail(v, CL_EFORMAT, "persistent id: bad storage key");
  for (size_t i = 0; i < a[2]->u.str.n; i++) {
    unsigned char c = (unsigned char)a[2]->u.str.s[i];
    /* the key names a zip entry, so keep it a plain file name */
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          c == '-' || c == '.'))
      return fail(v, CL_EFORMAT, "persistent id: storage key has a character 0x%02x", c);
  }
  if (a[3]->kind != CL_PT_STR) return fail(v, CL_EFORMAT, "persistent id: location is not a string");
  int64_t numel;
  int rc = as_size(v, a[4], "storage size", &numel);
  if (rc) return rc;
  cl_dtype dt = a[1]->u.glob.dtype;
  if ((uint64_t)numel > (uint64_t)INT64_MAX / cl_dtype_size(dt))
    return fail(v, CL_EFORMAT, "storage size %lld too large", (long long)numel);
  cl_pt_value *s = newv(v, CL_PT_STORAGE);
  s->u.storage.dtype = dt;
  s->u.storage.key = cl_strdup(a[2]->u.str.s);
  s->u.storage.numel = numel;
  *out = s;
  return CL_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static int rebuild_tensor(vm *v, cl_pt_value *args, cl_pt_value **out) {
  if (args->u.seq.n != 6 && args->u.seq.n != 7)
    return fail(v, CL_EFORMAT, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", args->u.seq.n);
  cl_pt_value **a = args->u.seq.v;
  if (a[0]->kind != CL_PT_STORAGE)
    return fail(v, CL_EFORMAT, "_rebuild_tensor_v2: first argument is a %s, not a storage",
                cl_pt_kind_name(a[0]->kind));
  const cl_pt_value *st = a[0];
  cl_pt_value *t = newv(v, CL_PT_TENSOR);
  t->u.tensor.storage = st;
  int rc = as_size(v, a[1], "storage offset", &t->u.tensor.offset);
  if (rc) return rc;
  if (a[2]->kind != CL_PT_TUPLE || a[3]->kind != CL_PT_TUPLE)
    return fail(v, CL_EFORMAT, "_rebuild_tensor_v2: size and stride must be tuples");
  size_t nd = a[2]->u.seq.n;
  if (a[3]->u.seq.n != nd)
    return fail(v, CL_EFORMAT, "_rebuild_tensor_v2: %zu sizes but %zu strides", nd, a[3]->u.seq.n);
  if (nd > CL_MAXDIM) return fail(v, CL_EUNSUP, "tensor has %zu dimensions (at most %d)", nd, CL_MAXDIM);
  t->u.tensor.ndim = (int)nd;
  int64_t numel = 1, last = t->u.tensor.offset; /* last: index of the furthest element */
  int ovf = 0;
  for (size_t i = 0; i < nd; i++) {
    int64_t sz, sd;
    if ((rc = as_size(v, a[2]->u.seq.v[i], "tensor size", &sz)) != 0) return rc;
    if ((rc = as_size(v, a[3]->u.seq.v[i], "tensor stride", &sd)) != 0) return rc;
    t->u.tensor.size[i] = sz;
    t->u.tensor.stride[i] = sd;
    int64_t span;
    ovf |= __builtin_mul_overflow(numel, sz, &numel);
    if (sz > 0) ovf |= __builtin_mul_overflow(sz - 1, sd, &span) || __builtin_add_overflow(last, span, &last);
  }
  size_t nbytes; /* also bounds every partial product of the sizes (cl_pt_tensor_contiguous's) */
  if (ovf || cl_shape_bytes((int)nd, t->u.tensor.size, cl_dtype_size(st->u.storage.dtype), &nbytes) != 0)
    return fail(v, CL_EFORMAT, "tensor of storage '%s': size/stride overflow", st->u.storage.key);
  int64_t have = st->u.storage.numel;
  if (numel > 0 && last >= have)
    return fail(v, CL_EFORMAT, "tensor view reaches element %lld of storage '%s' of %lld elements", (long long)last,
                st->u.storage.key, (long long)have);
  if (numel == 0 && t->u.tensor.offset > have)
    return fail(v, CL_EFORMAT, "storage offset %lld beyond storage '%s' of %lld elements",
                (long long)t->u.tensor.offset, st->u.storage.key, (long long)have);
  /* Overlapping views (stride 0, from expand()) would materialise more than the file holds. */
  if (numel > have)
    return fail(v, CL_EUNSUP, "tensor of %lld elements views storage '%s' of %lld (overlapping strides)",
                (long long)numel, st->u.storage.key, (long long)have);
  *out = t;
  return CL_OK;
}

static int reduce(vm *v, cl_pt_value *fn, cl_pt_value *args, cl_pt_value **out) {
  if (fn->kind != CL_PT_GLOBAL) return fail(v, CL_EUNSUP, "REDUCE on a %s", cl_pt_kind_name(fn->kind));
  if (args->kind != CL_PT_TUPLE)
    return fail(v, CL_EFORMAT, "REDUCE arguments are a %s, not a tuple", cl_pt_kind_name(args->kind));
  size_t n = args->u.seq.n;
  cl_pt_value **a = args->u.seq.v;
  switch (fn->u.glob.g) {
  case CL_PT_G_ORDEREDDICT:
    if (n != 0) return fail(v, CL_EUNSUP, "OrderedDict called with %zu arguments", n);
    *out = newv(v, CL_PT_DICT);
    return CL_OK;
  case CL_PT_G_REBUILD_TENSOR_V2:
    return rebuild_tensor(v, args, out);
  case CL_PT_G_REBUILD_PARAMETER:
  case CL_PT_G_REBUILD_PARAMETER_WITH_STATE: {
    size_t want = fn->u.glob.g == CL_PT_G_REBUILD_PARAMETER ? 3 : 4;
    if (n != want || a[0]->kind != CL_PT_TENSOR)
      return fail(v, CL_EFORMAT, "_rebuild_parameter: expected %zu arguments starting with a tensor", want);
    /* the state only restores Python attributes on the Parameter; an empty one is all we accept */
    if (want == 4 && !(a[3]->kind == CL_PT_NONE ||
                       ((a[3]->kind == CL_PT_DICT || a[3]->kind == CL_PT_TUPLE) && a[3]->u.seq.n == 0)))
      return fail(v, CL_EUNSUP, "_rebuild_parameter_with_state with a non-empty state");
    *out = a[0];
    return CL_OK;
  }
  case CL_PT_G_STORAGE:
    return fail(v, CL_EUNSUP, "calling a torch storage class is not allowed");
  }
  return fail(v, CL_EUNSUP, "REDUCE on an unknown global");
}

static int memo_put(vm *v, uint64_t idx) {
  cl_pt_value *x = NULL;
  int rc = top(v, &x);
  if (rc) return rc;
  /* The pickler numbers memo entries 0, 1, 2, ... and each needs an opcode, so an index at or past
   * the pickle's length is malformed; this also bounds the memo's memory. */
  if (idx >= v->len) return fail(v, CL_EFORMAT, "memo index %llu out of range", (unsigned long long)idx);
  if (idx >= v->nmemo) {
    size_t nn = v->nmemo ? v->nmemo : 64;
    while (nn <= idx) nn *= 2;
    if (nn > v->len) nn = v->len;
    cl_pt_value **m = realloc(v->memo, nn * sizeof *m);
    if (!m) abort();
    memset(m + v->nmemo, 0, (nn - v->nmemo) * sizeof *m);
    v->memo = m;
    v->nmemo = nn;
  }
  if (!v->memo[idx]) v->memocount++;
  v->memo[idx] = x;
  return CL_OK;
}

static int memo_get(vm *v, uint64_t idx) {
  if (idx >= v->nmemo || !v->memo[idx])
    return fail(v, CL_EFORMAT, "bad memo index %llu (nothing stored there)", (unsigned long long)idx);
  push(v, v->memo[idx]);
  return CL_OK;
}

static int run(vm *v) {
  int rc = CL_OK;
  while (v->pos < v->len) {
    v->op = v->pos;
    unsigned char op = v->d[v->pos++];
    const unsigned char *a = v->d + v->pos; /* the opcode's argument bytes, once need()-checked */
    cl_pt_value *x = NULL, *y = NULL;
    size_t from = 0, cnt;
    uint64_t len;
    switch (op) {
    case 0x80: /* PROTO */
      if ((rc = need(v, 1))) return rc;
      if (a[0] > 5) return fail(v, CL_EUNSUP, "pickle protocol %d", a[0]);
      v->pos += 1;
      break;
    case 0x95: /* FRAME: a length hint; the data follows inline */
      if ((rc = need(v, 8))) return rc;
      v->pos += 8;
      if (le(a, 8) > v->len - v->pos) return fail(v, CL_EFORMAT, "truncated: FRAME of %llu bytes",
                                                  (unsigned long long)le(a, 8));
      break;
    case '.': /* STOP */
      if ((rc = pop(v, &x))) return rc;
      v->p->root = x;
      return CL_OK;
    case '}': push(v, newv(v, CL_PT_DICT)); break;
    case ']': push(v, newv(v, CL_PT_LIST)); break;
    case ')': push(v, newv(v, CL_PT_TUPLE)); break;
    case '(': /* MARK */
      v->marks = grow(v->marks, &v->capmarks, v->nmarks + 1, sizeof *v->marks);
      v->marks[v->nmarks++] = v->n;
      break;
    case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
      cnt = (size_t)(op - 0x84);
      if (v->n < floor_(v) + cnt) return fail(v, CL_EFORMAT, "stack underflow");
      x = mkseq(v, CL_PT_TUPLE, v->n - cnt);
      v->n -= cnt;
      push(v, x);
      break;
    case 't': case 'l': /* TUPLE, LIST */
      if ((rc = pop_mark(v, &from))) return rc;
      x = mkseq(v, op == 't' ? CL_PT_TUPLE : CL_PT_LIST, from);
      v->n = from;
      push(v, x);
      break;
    case 'd': /* DICT */
      if ((rc = pop_mark(v, &from))) return rc;
      if ((v->n - from) % 2) return fail(v, CL_EFORMAT, "DICT with an odd number of items");
      x = mkseq(v, CL_PT_DICT, from);
      v->n = from;
      push(v, x);
      break;
    case 'a': /* APPEND */
      if ((rc = pop(v, &y)) || (rc = top(v, &x))) return rc;
      if (x->kind != CL_PT_LIST) return fail(v, CL_EUNSUP, "APPEND to a %s", cl_pt_kind_name(x->kind));
      seq_push(x, y);
      break;
    case 'e': /* APPENDS */
      if ((rc = pop_mark(v, &from))) return rc;
      if (from <= floor_(v)) return fail(v, CL_EFORMAT, "stack underflow");
      x = v->stack[from - 1];
      if (x->kind != CL_PT_LIST) return fail(v, CL_EUNSUP, "APPENDS to a %s", cl_pt_kind_name(x->kind));
      for (size_t i = from; i < v->n; i++) seq_push(x, v->stack[i]);
      v->n = from;
      break;
    case 's': /* SETITEM */
      if (v->n < floor_(v) + 3) return fail(v, CL_EFORMAT, "stack underflow");
      x = v->stack[v->n - 3];
      if (x->kind != CL_PT_DICT) return fail(v, CL_EUNSUP, "SETITEM on a %s", cl_pt_kind_name(x->kind));
      seq_push(x, v->stack[v->n - 2]);
      seq_push(x, v->stack[v->n - 1]);
      v->n -= 2;
      break;
    case 'u': /* SETITEMS */
      if ((rc = pop_mark(v, &from))) return rc;
      if (from <= floor_(v)) return fail(v, CL_EFORMAT, "stack underflow");
      x = v->stack[from - 1];
      if (x->kind != CL_PT_DICT) return fail(v, CL_EUNSUP, "SETITEMS on a %s", cl_pt_kind_name(x->kind));
      if ((v->n - from) % 2) return fail(v, CL_EFORMAT, "SETITEMS with an odd number of items");
      for (size_t i = from; i < v->n; i++) seq_push(x, v->stack[i]);
      v->n = from;
      break;
    case 'J': /* BININT */
      if ((rc = need(v, 4))) return rc;
      push(v, mkint(v, (int32_t)(uint32_t)le(a, 4)));
      v->pos += 4;
      break;
    case 'K': /* BININT1 */
      if ((rc = need(v, 1))) return rc;
      push(v, mkint(v, a[0]));
      v->pos += 1;
      break;
    case 'M': /* BININT2 */
      if ((rc = need(v, 2))) return rc;
      push(v, mkint(v, (int64_t)le(a, 2)));
      v->pos += 2;
      break;
    case 0x8a: case 0x8b: /* LONG1, LONG4 */
      cnt = op == 0x8a ? 1 : 4;
      if ((rc = need(v, cnt))) return rc;
      len = le(a, (int)cnt);
      v->pos += cnt;
      if (len > v->len - v->pos) return fail(v, CL_EFORMAT, "truncated: LONG of %llu bytes", (unsigned long long)len);
      push(v, mklong(v, v->d + v->pos, (size_t)len));
      v->pos += (size_t)len;
      break;
    case 'G': { /* BINFLOAT: big-endian IEEE double */
      if ((rc = need(v, 8))) return rc;
      uint64_t u = 0;
      for (int i = 0; i < 8; i++) u = (u << 8) | a[i];
      x = newv(v, CL_PT_FLOAT);
      memcpy(&x->u.f, &u, 8);
      push(v, x);
      v->pos += 8;
      break;
    }
    case 'N': push(v, newv(v, CL_PT_NONE)); break;
    case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
      x = newv(v, CL_PT_BOOL);
      x->u.b = op == 0x88;
      push(v, x);
      break;
    case 0x8c: case 'X': case 0x8d: /* SHORT_BINUNICODE, BINUNICODE, BINUNICODE8 */
    case 'C': case 'B': case 0x8e:  /* SHORT_BINBYTES, BINBYTES, BINBYTES8 */
      cnt = (op == 0x8c || op == 'C') ? 1 : (op == 'X' || op == 'B') ? 4 : 8;
      if ((rc = need(v, cnt))) return rc;
      len = le(a, (int)cnt);
      v->pos += cnt;
      if (len > v->len - v->pos)
        return fail(v, CL_EFORMAT, "truncated: string of %llu bytes, %zu left", (unsigned long long)len,
                    v->len - v->pos);
      push(v, mkstr(v, (op == 'C' || op == 'B' || op == 0x8e) ? CL_PT_BYTES : CL_PT_STR, v->d + v->pos,
                    (size_t)len));
      v->pos += (size_t)len;
      break;
    case 'q': case 'r': /* BINPUT, LONG_BINPUT */
      cnt = op == 'q' ? 1 : 4;
      if ((rc = need(v, cnt))) return rc;
      v->pos += cnt;
      if ((rc = memo_put(v, le(a, (int)cnt)))) return rc;
      break;
    case 0x94: /* MEMOIZE */
      if ((rc = memo_put(v, v->memocount))) return rc;
      break;
    case 'h': case 'j': /* BINGET, LONG_BINGET */
      cnt = op == 'h' ? 1 : 4;
      if ((rc = need(v, cnt))) return rc;
      v->pos += cnt;
      if ((rc = memo_get(v, le(a, (int)cnt)))) return rc;
      break;
    case 'c': { /* GLOBAL */
      const unsigned char *m = NULL, *nm = NULL;
      size_t mn = 0, nn = 0;
      if ((rc = read_line(v, &m, &mn)) || (rc = read_line(v, &nm, &nn))) return rc;
      if ((rc = global(v, m, mn, nm, nn))) return rc;
      break;
    }
    case 0x93: /* STACK_GLOBAL */
      if ((rc = pop(v, &y)) || (rc = pop(v, &x))) return rc;
      if (x->kind != CL_PT_STR || y->kind != CL_PT_STR)
        return fail(v, CL_EFORMAT, "STACK_GLOBAL needs two strings");
      if ((rc = global(v, (const unsigned char *)x->u.str.s, x->u.str.n, (const unsigned char *)y->u.str.s,
                       y->u.str.n)))
        return rc;
      break;
    case 'R': { /* REDUCE */
      cl_pt_value *r = NULL;
      if ((rc = pop(v, &y)) || (rc = pop(v, &x))) return rc;
      if ((rc = reduce(v, x, y, &r))) return rc;
      push(v, r);
      break;
    }
    case 0x81: /* NEWOBJ: cls.__new__(cls, *args), only OrderedDict() */
      if ((rc = pop(v, &y)) || (rc = pop(v, &x))) return rc;
      if (x->kind != CL_PT_GLOBAL || x->u.glob.g != CL_PT_G_ORDEREDDICT || y->kind != CL_PT_TUPLE || y->u.seq.n)
        return fail(v, CL_EUNSUP, "NEWOBJ is only allowed for OrderedDict()");
      push(v, newv(v, CL_PT_DICT));
      break;
    case 'b': /* BUILD: only attribute state on a dict (OrderedDict._metadata) or a tensor; ignored */
      if ((rc = pop(v, &y)) || (rc = top(v, &x))) return rc;
      if (x->kind != CL_PT_DICT && x->kind != CL_PT_TENSOR)
        return fail(v, CL_EUNSUP, "BUILD on a %s", cl_pt_kind_name(x->kind));
      break;
    case 'Q': /* BINPERSID */
      if ((rc = pop(v, &x)) || (rc = persid(v, x, &y))) return rc;
      push(v, y);
      break;
    case '0': /* POP */
      if (v->n > floor_(v)) v->n--;
      else if ((rc = pop_mark(v, &from))) return rc;
      break;
    case '1': /* POP_MARK */
      if ((rc = pop_mark(v, &from))) return rc;
      v->n = from;
      break;
    case '2': /* DUP */
      if ((rc = top(v, &x))) return rc;
      push(v, x);
      break;
    default:
      if (op >= 0x20 && op < 0x7f) return fail(v, CL_EUNSUP, "unsupported pickle opcode 0x%02x ('%c')", op, op);
      return fail(v, CL_EUNSUP, "unsupported pickle opcode 0x%02x", op);
    }
  }
  v->op = v->len;
  return fail(v, CL_EFORMAT, "truncated: no STOP opcode");
}

int cl_pt_parse(const unsigned char *data, size_t len, cl_pt_pickle *p, cl_error *e) {
  memset(p, 0, sizeof *p);
  vm v = {.d = data, .len = len, .p = p, .e = e};
  int rc = run(&v);
  free(v.stack);
  free(v.marks);
  free(v.memo);
  if (rc) cl_pt_free(p);
  return rc;
}

void cl_pt_free(cl_pt_pickle *p) {
  for (size_t i = 0; i < p->nall; i++) {
    cl_pt_value *x = p->all[i];
    switch (x->kind) {
    case CL_PT_STR: case CL_PT_BYTES: free(x->u.str.s); break;
    case CL_PT_TUPLE: case CL_PT_LIST: case CL_PT_DICT: free(x->u.seq.v); break;
    case CL_PT_STORAGE: free(x->u.storage.key); break;
    default: break;
    }
    free(x);
  }
  free(p->all);
  memset(p, 0, sizeof *p);
}

const cl_pt_value *cl_pt_dict_get(const cl_pt_value *d, const char *key) {
  if (!d || d->kind != CL_PT_DICT) return NULL;
  for (size_t i = d->u.seq.n / 2; i-- > 0;)
    if (str_is(d->u.seq.v[2 * i], key)) return d->u.seq.v[2 * i + 1];
  return NULL;
}

const char *cl_pt_kind_name(cl_pt_kind k) {
  static const char *names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple",
                                "list", "dict", "global", "storage", "tensor"};
  return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

int cl_pt_tensor_contiguous(const cl_pt_value *t) {
  int64_t want = 1;
  for (int i = t->u.tensor.ndim - 1; i >= 0; i--) {
    if (t->u.tensor.size[i] != 1 && t->u.tensor.stride[i] != want) return 0;
    want *= t->u.tensor.size[i];
  }
  return 1;
}
