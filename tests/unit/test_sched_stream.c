/* cl_sched_stream_run (clade predict's pipeline): batches reach the callback in input order
 * although their reads finish out of order (reads sleep by item); unreadable items are
 * skipped and listed with their errors, a batch with none readable still arrives (not
 * encoded), the embeddings are the readable items' in order; a failing callback or encode
 * ends the run with its error and no batch after it arrives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_test.h"
#include "sched/cl_sched.h"

typedef struct seen {
  int next_start, batches, items, okn, failn, encoded, fail_at_batch;
  int order_bad, emb_bad, list_bad;
} seen;

/* item "ok N" or "bad N": N into the input, after a sleep that reorders the reads */
static int rd(const cl_tower *t, const char *item, void *input, cl_error *e) {
  (void)t;
  int n = atoi(item + 3);
  if (n % 10 == 0) usleep(6000); /* the first of every other batch (of 5): the next one reads first */
  if (!strncmp(item, "bad", 3)) return cl_err(e, CL_EFORMAT, "%s: unreadable", item);
  *(float *)input = (float)n;
  return CL_OK;
}

static int enc(const cl_tower *t, const void *in, int n, float *out, cl_error *e) {
  seen *s = t->ctx;
  for (int i = 0; i < n; i++) {
    if (((const float *)in)[i] == 999.0f) return cl_err(e, CL_EINVAL, "encoder failed at 999");
    out[2 * i] = ((const float *)in)[i], out[2 * i + 1] = -((const float *)in)[i];
  }
  s->encoded += n;
  return CL_OK;
}

static int on_batch(void *ud, const cl_sched_batch *b, cl_error *e) {
  seen *s = ud;
  s->order_bad += b->start != s->next_start;
  s->next_start = b->start + b->n;
  s->list_bad += b->nok + b->nfailed != b->n;
  int io = 0, ifl = 0; /* the two lists interleave to cover start .. start+n-1 in order */
  for (int i = b->start; i < b->start + b->n; i++) {
    if (io < b->nok && b->ok[io] == i) {
      s->emb_bad += b->emb[2 * io] != (float)i || b->emb[2 * io + 1] != -(float)i;
      io++;
    } else if (ifl < b->nfailed && b->failed[ifl] == i) {
      char want[64];
      snprintf(want, sizeof want, "bad %d: unreadable", i);
      s->list_bad += strcmp(b->errs[ifl].msg, want) != 0;
      ifl++;
    } else {
      s->list_bad++;
    }
  }
  s->okn += b->nok, s->failn += b->nfailed, s->items += b->n;
  if (++s->batches == s->fail_at_batch) return cl_err(e, CL_EIO, "callback failed at batch %d", s->batches);
  return CL_OK;
}

static char **make_items(int n, int bad_every) {
  char **v = malloc((size_t)n * sizeof *v);
  for (int i = 0; i < n; i++) {
    v[i] = malloc(32);
    /* items 10..13 are all bad: batch 2 (size 5) has none readable with bad_every > 0 */
    const int bad = bad_every && (i % bad_every == 0 || (i >= 10 && i <= 14));
    snprintf(v[i], 32, "%s %d", bad ? "bad" : "ok ", i);
  }
  return v;
}

int main(void) {
  cl_error e = {0};
  const int n = 53;
  char **items = make_items(n, 4);
  seen s = {0};
  cl_tower t = {.mod = cl_modality_find("image"), .dim = 2, .batch = 5, .input_bytes = sizeof(float), .ctx = &s,
                .read = rd, .encode = enc};
  cl_sched_opts o = {.progress = CL_PROGRESS_OFF, .batches_in_flight = 4};
  cl_sched_stream st = {.on_batch = on_batch, .ud = &s};
  cl_sched_stats stats = {0};
  CHECK_OK(cl_sched_stream_run(&t, &o, (const char *const *)items, n, &st, &stats, &e), e);
  int nbad = 0;
  for (int i = 0; i < n; i++) nbad += items[i][0] == 'b';
  CHECK_EQ_INT(s.batches, 11);
  CHECK_EQ_INT(s.items, n);
  CHECK_EQ_INT(s.failn, nbad);
  CHECK_EQ_INT(s.okn, n - nbad);
  CHECK_EQ_INT(s.encoded, n - nbad);
  CHECK_EQ_INT(s.order_bad, 0);
  CHECK_EQ_INT(s.emb_bad, 0);
  CHECK_EQ_INT(s.list_bad, 0);
  const int mi = cl_modality_index(t.mod);
  CHECK(stats.encoded[mi] == n - nbad && stats.wait_seconds[mi] >= 0);

  /* the callback fails at the third batch: that error, and nothing after it */
  memset(&s, 0, sizeof s);
  s.fail_at_batch = 3;
  int rc = cl_sched_stream_run(&t, &o, (const char *const *)items, n, &st, &stats, &e);
  CHECK_EQ_INT(rc, CL_EIO);
  CHECK(strstr(e.msg, "callback failed at batch 3") != NULL);
  CHECK_EQ_INT(s.batches, 3);

  /* the encoder fails on item 37 (batch 7): batches 0..6 arrive, then the error */
  for (int i = 0; i < n; i++) free(items[i]);
  free(items);
  items = make_items(n, 0);
  snprintf(items[37], 32, "ok 999");
  memset(&s, 0, sizeof s);
  rc = cl_sched_stream_run(&t, &o, (const char *const *)items, n, &st, &stats, &e);
  CHECK_EQ_INT(rc, CL_EINVAL);
  CHECK(strstr(e.msg, "encoder failed at 999") != NULL);
  CHECK_EQ_INT(s.batches, 7);
  CHECK_EQ_INT(s.order_bad, 0);
  for (int i = 0; i < n; i++) free(items[i]);
  free(items);
  return cl_test_done("test_sched_stream");
}
