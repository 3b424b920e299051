/* cl_sched: read on libuv's pool, encode on a worker thread, cache in between.
 *
 * Flow: key every item (an image file's content hash through the cache's path+size+mtime
 * memo, or the item itself), look the keys up, and list the aligned batches with a miss.
 * The main thread runs a uv loop: it starts reading items for up to `batches_in_flight`
 * batches (image decoding as jobs on the pool; a modality whose reading is cheap, as texts'
 * tokenising, in line); when a batch's last item is read the batch goes to the encoder
 * worker; when the worker is done (uv_async) the main thread copies the embeddings out,
 * stores them in the cache and starts the next batch.
 *
 * A stream (cl_sched_stream_run) runs the same loop without cache or output array: a batch
 * whose reads are done has its readable items packed to the front, goes to the worker in
 * input order (a batch read early waits for the ones before it), and the worker hands it to
 * the stream's callback right after encoding it. */
#define _GNU_SOURCE
#include "cl_sched.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- progress ---- */

void cl_progress_init(cl_progress *p, cl_progress_mode mode, const char *label, const char *what, int64_t total,
                      int64_t cached) {
  memset(p, 0, sizeof *p);
  p->mode = mode;
  p->tty = isatty(2);
  p->label = label ? label : "";
  p->what = what;
  p->total = total;
  p->cached = cached;
  p->t0 = p->last = now();
}

void cl_progress_show(cl_progress *p, int final) {
  if (p->mode == CL_PROGRESS_OFF) return;
  double t = now(), el = t - p->t0;
  if (!final && t - p->last < (p->tty ? 0.2 : 5.0)) return;
  if (final && el < 1.0 && p->mode != CL_PROGRESS_JSON && !(p->tty && p->last > p->t0)) return; /* too quick to matter */
  p->last = t;
  double rate = el > 0 ? (double)p->done / el : 0;
  double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
  if (p->mode == CL_PROGRESS_JSON) { /* the label is the user's (model and dataset names) */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", "progress");
    cJSON_AddStringToObject(o, "stage", p->what);
    cJSON_AddStringToObject(o, "label", p->label);
    cJSON_AddNumberToObject(o, "done", (double)p->done);
    cJSON_AddNumberToObject(o, "total", (double)p->total);
    cJSON_AddNumberToObject(o, "cached", (double)p->cached);
    cJSON_AddNumberToObject(o, "per_second", round(rate * 10) / 10);
    cJSON_AddNumberToObject(o, "eta_seconds", round(eta * 10) / 10);
    char *text = cJSON_PrintUnformatted(o);
    if (text) fprintf(stderr, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(o);
    return;
  }
  if (p->tty) {
    int w = 30, fill = p->total ? (int)(w * p->done / p->total) : w;
    char bar[64];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r\033[K%s %s [%s] %lld/%lld %.1f/s ETA %.0fs", p->label, p->what, bar, (long long)p->done,
            (long long)p->total, rate, eta);
    if (final) fputc('\n', stderr);
  } else {
    fprintf(stderr, "clade: %s %s %lld/%lld (%.1f/s, ETA %.0fs)\n", p->label, p->what, (long long)p->done,
            (long long)p->total, rate, eta);
  }
}

/* ---- the pipeline ---- */

typedef struct batch batch;
typedef struct pipe_ pipe_;

typedef struct job {
  uv_work_t req;
  batch *b;
  int slot;  /* index within the batch */
  int index; /* item index */
  cl_error err;
  int rc;
  double secs;
} job;

struct batch {
  pipe_ *p;
  int block;     /* aligned block number */
  int start, n;  /* items start .. start+n-1 */
  int pending;   /* reads outstanding */
  char *inputs;  /* [B, input_bytes] */
  float *emb;    /* [B, D] */
  job *jobs;
  int rc;
  cl_error err;
  batch *next;   /* encoder queue link */
  /* streams: position in the run, reads done, and what read */
  int seq, ready;
  int *ok, nok, *failed, nfailed;
  cl_error *errs;
};

struct pipe_ {
  const cl_tower *t;
  const cl_sched_opts *o;
  const char *model_key, *kind;
  const char *const *items;
  const char *const *keys; /* cache keys, or NULL without a cache */
  float *out;
  int B, D, n, mi;
  int *todo, ntodo, next_todo; /* blocks to encode, and the next to start */
  int in_flight;
  batch *free_list;
  const cl_sched_stream *stream; /* NULL: embed into out */
  batch *all;                    /* the batches (streams: looked up by seq) */
  int nall, next_queue;          /* streams: the seq of the next batch for the worker */
  /* encoder worker */
  uv_thread_t worker;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  batch *queue_head, *queue_tail;
  int stop;
  uv_async_t done_async;
  batch *done_head; /* finished by the worker, guarded by mu */
  /* outcome */
  int rc;
  cl_error err;
  int err_index;
  cl_sched_stats *st;
  cl_progress prog;
  uv_loop_t *loop;
};

static void read_work(uv_work_t *req) {
  job *j = req->data;
  pipe_ *p = j->b->p;
  double t = now();
  j->rc = p->t->read(p->t, p->items[j->index], j->b->inputs + (size_t)j->slot * p->t->input_bytes, &j->err);
  j->secs = now() - t;
}

static void start_next_batch(pipe_ *p);

/* A stream's batch: encode what read, then hand it over (nothing more after a failure). */
static int stream_batch(pipe_ *p, batch *b, int *dead, double *dt) {
  if (*dead) return CL_OK;
  double t = now();
  int rc = b->nok ? p->t->encode(p->t, b->inputs, b->nok, b->emb, &b->err) : CL_OK;
  *dt = now() - t;
  cl_sched_batch sb = {.start = b->start, .n = b->n, .ok = b->ok, .nok = b->nok, .emb = b->emb,
                       .failed = b->failed, .errs = b->errs, .nfailed = b->nfailed};
  if (!rc) rc = p->stream->on_batch(p->stream->ud, &sb, &b->err);
  if (rc) *dead = 1;
  return rc;
}

static void worker_main(void *arg) {
  pipe_ *p = arg;
  int dead = 0;
  for (;;) {
    double tw = now();
    pthread_mutex_lock(&p->mu);
    while (!p->queue_head && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
    if (!p->queue_head && p->stop) {
      pthread_mutex_unlock(&p->mu);
      return;
    }
    batch *b = p->queue_head;
    p->queue_head = b->next;
    if (!p->queue_head) p->queue_tail = NULL;
    p->st->wait_seconds[p->mi] += now() - tw;
    pthread_mutex_unlock(&p->mu);
    double t = now(), dt = 0;
    if (p->stream) {
      b->rc = stream_batch(p, b, &dead, &dt);
    } else {
      b->rc = p->t->encode(p->t, b->inputs, b->n, b->emb, &b->err);
      dt = now() - t;
    }
    pthread_mutex_lock(&p->mu);
    p->st->encode_seconds[p->mi] += dt;
    b->next = p->done_head;
    p->done_head = b;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->done_async);
  }
}

static void fail_at(pipe_ *p, int index, int rc, const cl_error *err) {
  if (p->rc == CL_OK || index < p->err_index) {
    p->rc = rc;
    p->err = *err;
    p->err_index = index;
  }
}

static void to_worker(pipe_ *p, batch *b) {
  pthread_mutex_lock(&p->mu);
  b->next = NULL;
  if (p->queue_tail) p->queue_tail->next = b;
  else p->queue_head = b;
  p->queue_tail = b;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* A stream's batch whose reads are done: the readable items' inputs packed to the front, then
 * it and every read batch after it go to the worker in order. */
static void stream_ready(pipe_ *p, batch *b) {
  b->nok = b->nfailed = 0;
  for (int i = 0; i < b->n; i++) {
    const job *j = &b->jobs[i];
    if (j->rc != CL_OK) {
      b->failed[b->nfailed] = j->index;
      b->errs[b->nfailed++] = j->err;
      continue;
    }
    if (b->nok != i)
      memmove(b->inputs + (size_t)b->nok * p->t->input_bytes, b->inputs + (size_t)i * p->t->input_bytes,
              p->t->input_bytes);
    b->ok[b->nok++] = j->index;
  }
  b->ready = 1;
  for (int found = 1; found;) {
    found = 0;
    for (int i = 0; i < p->nall; i++) {
      batch *c = &p->all[i];
      if (c->ready && c->seq == p->next_queue) {
        c->ready = 0;
        p->next_queue++;
        to_worker(p, c);
        found = 1;
      }
    }
  }
}

static void read_done(uv_work_t *req, int status) {
  job *j = req->data;
  batch *b = j->b;
  pipe_ *p = b->p;
  p->st->read_seconds[p->mi] += j->secs;
  if (status != 0) {
    cl_error e;
    cl_err(&e, CL_EIO, "%s: read job cancelled", p->items[j->index]);
    fail_at(p, j->index, CL_EIO, &e);
  } else if (j->rc != CL_OK && !p->stream) { /* a stream skips it */
    fail_at(p, j->index, j->rc, &j->err);
  }
  if (--b->pending > 0) return;
  if (p->rc != CL_OK) { /* do not encode; release the batch, and a stream's read ones waiting for it */
    for (int i = 0; i < p->nall; i++) {
      batch *c = &p->all[i];
      if (c != b && !c->ready) continue;
      c->ready = 0;
      c->next = p->free_list;
      p->free_list = c;
      p->in_flight--;
    }
    if (p->in_flight == 0) uv_close((uv_handle_t *)&p->done_async, NULL);
    return;
  }
  if (p->stream) stream_ready(p, b);
  else to_worker(p, b);
}

static void encoded(uv_async_t *h) {
  pipe_ *p = h->data;
  pthread_mutex_lock(&p->mu);
  batch *list = p->done_head;
  p->done_head = NULL;
  pthread_mutex_unlock(&p->mu);
  while (list) {
    batch *b = list;
    list = b->next;
    if (b->rc != CL_OK) {
      fail_at(p, b->start, b->rc, &b->err);
    } else if (p->stream && p->rc == CL_OK) { /* handed over by the worker */
      p->st->encoded[p->mi] += b->nok;
      p->prog.done += b->n;
      cl_progress_show(&p->prog, 0);
    } else if (p->rc == CL_OK) {
      memcpy(p->out + (size_t)b->start * p->D, b->emb, (size_t)b->n * p->D * sizeof(float));
      cl_error e;
      if (p->keys &&
          cl_cache_put(p->o->cache, p->model_key, p->kind, p->keys + b->start, b->n, p->D, b->emb, &e) != CL_OK)
        fail_at(p, b->start, e.code, &e);
      p->st->encoded[p->mi] += b->n;
      p->prog.done += b->n;
      cl_progress_show(&p->prog, 0);
    }
    b->next = p->free_list;
    p->free_list = b;
    p->in_flight--;
    start_next_batch(p);
  }
  if (p->in_flight == 0 && (p->next_todo >= p->ntodo || p->rc != CL_OK)) uv_close((uv_handle_t *)&p->done_async, NULL);
}

static void start_next_batch(pipe_ *p) {
  while (p->rc == CL_OK && p->next_todo < p->ntodo && p->free_list) {
    batch *b = p->free_list;
    p->free_list = b->next;
    b->seq = p->next_todo;
    b->ready = 0;
    int block = p->todo[p->next_todo++];
    b->block = block;
    b->start = block * p->B;
    b->n = p->B;
    if (b->start + b->n > p->n) b->n = p->n - b->start;
    b->pending = b->n;
    b->rc = CL_OK;
    p->in_flight++;
    for (int i = 0; i < b->n; i++) {
      job *j = &b->jobs[i];
      memset(j, 0, sizeof *j);
      j->b = b;
      j->slot = i;
      j->index = b->start + i;
      j->req.data = j;
      if (p->t->mod->parallel_read) {
        uv_queue_work(p->loop, &j->req, read_work, read_done);
      } else { /* cheap to read: in line, then the batch goes to the worker as a pooled one would */
        read_work(&j->req);
        read_done(&j->req, 0);
      }
    }
  }
}

/* Key every item (its file's content hash through the cache, or the item itself) and look
 * the embeddings up. */
static int lookup(const cl_tower *t, const cl_sched_opts *o, const char *model_key, const char *kind,
                  const char *const *items, int n, float *out, const char **keys, char (*hashes)[41], uint8_t *hit,
                  cl_error *e) {
  memset(hit, 0, (size_t)n);
  if (!cl_cache_on(o->cache)) return CL_OK; /* no cache, or one a failure turned off */
  for (int i = 0; i < n; i++) {
    if (t->mod->key_by == CL_KEY_FILE) {
      int rc = cl_cache_file_hash(o->cache, items[i], hashes[i], e);
      if (rc) return rc;
      keys[i] = hashes[i];
    } else {
      keys[i] = items[i];
    }
  }
  return cl_cache_get(o->cache, model_key, kind, keys, n, t->dim, out, hit, e);
}

static int run_pipe(pipe_ *p, int batches_in_flight) {
  const cl_tower *t = p->t;
  int B = p->B;
  uv_loop_t loop;
  uv_loop_init(&loop);
  p->loop = &loop;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  uv_async_init(&loop, &p->done_async, encoded);
  p->done_async.data = p;
  int nb = batches_in_flight > 0 ? batches_in_flight : 3;
  batch *bs = cl_xcalloc((size_t)nb, sizeof *bs);
  p->all = bs;
  p->nall = nb;
  for (int i = 0; i < nb; i++) {
    bs[i].p = p;
    bs[i].inputs = cl_xmalloc((size_t)B * t->input_bytes);
    bs[i].emb = cl_xmalloc((size_t)B * p->D * sizeof(float));
    bs[i].jobs = cl_xcalloc((size_t)B, sizeof(job));
    if (p->stream) {
      bs[i].ok = cl_xmalloc((size_t)B * sizeof(int));
      bs[i].failed = cl_xmalloc((size_t)B * sizeof(int));
      bs[i].errs = cl_xmalloc((size_t)B * sizeof(cl_error));
    }
    bs[i].next = p->free_list;
    p->free_list = &bs[i];
  }
  uv_thread_create(&p->worker, worker_main, p);
  start_next_batch(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  uv_thread_join(&p->worker);
  uv_loop_close(&loop);
  cl_progress_show(&p->prog, 1);
  for (int i = 0; i < nb; i++) {
    free(bs[i].inputs);
    free(bs[i].emb);
    free(bs[i].jobs);
    free(bs[i].ok);
    free(bs[i].failed);
    free(bs[i].errs);
  }
  free(bs);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  return p->rc;
}

static void pipe_init(pipe_ *p, const cl_tower *t, const cl_sched_opts *o, const char *const *items, int n, int *todo,
                      int ntodo, cl_sched_stats *st) {
  memset(p, 0, sizeof *p);
  p->t = t;
  p->o = o;
  p->items = items;
  p->B = t->batch > 0 ? t->batch : 1;
  p->D = t->dim;
  p->n = n;
  p->mi = cl_modality_index(t->mod);
  p->todo = todo;
  p->ntodo = ntodo;
  p->st = st;
  p->err_index = n;
}

int cl_sched_embed(cl_encoder *enc, const char *modality, const cl_sched_opts *o, const char *const *items, int n,
                   float *out, cl_sched_stats *st, cl_error *e) {
  const cl_tower *t = cl_encoder_tower(enc, modality, e);
  if (!t) return e ? e->code : CL_EINVAL;
  double t0 = now();
  int B = t->batch > 0 ? t->batch : 1, mi = cl_modality_index(t->mod);
  const char *kind = cl_tower_cache_kind(t);
  size_t n1 = (size_t)(n > 0 ? n : 1);
  const char **keys = cl_xcalloc(n1, sizeof *keys);
  char (*hashes)[41] = t->mod->key_by == CL_KEY_FILE && o->cache ? cl_xcalloc(n1, 41) : NULL;
  uint8_t *hit = cl_xmalloc(n1);
  int *todo = NULL;
  int rc = lookup(t, o, enc->model_key, kind, items, n, out, keys, hashes, hit, e);
  if (rc) goto done;
  /* blocks with any miss are encoded whole */
  int nblocks = (n + B - 1) / B, ntodo = 0;
  todo = cl_xmalloc((size_t)(nblocks ? nblocks : 1) * sizeof(int));
  int64_t cached = 0;
  for (int b = 0; b < nblocks; b++) {
    int all = 1;
    for (int i = b * B; i < n && i < (b + 1) * B; i++) all &= hit[i];
    if (all) cached += (b + 1) * B < n ? B : n - b * B;
    else todo[ntodo++] = b;
  }
  st->cached[mi] += cached;
  if (ntodo == 0) goto done;
  pipe_ p;
  pipe_init(&p, t, o, items, n, todo, ntodo, st);
  p.model_key = enc->model_key;
  p.kind = kind;
  p.keys = o->cache ? keys : NULL;
  p.out = out;
  cl_progress_init(&p.prog, o->progress, o->label, t->mod->plural, n - cached, cached);
  if ((rc = run_pipe(&p, o->batches_in_flight)) && e) *e = p.err;
done:
  free(todo);
  free(keys);
  free(hashes);
  free(hit);
  st->wall_seconds[mi] += now() - t0;
  return rc;
}

int cl_sched_stream_run(const cl_tower *t, const cl_sched_opts *o, const char *const *items, int n,
                        const cl_sched_stream *s, cl_sched_stats *st, cl_error *e) {
  if (n <= 0) return CL_OK;
  double t0 = now();
  const int B = t->batch > 0 ? t->batch : 1, mi = cl_modality_index(t->mod), nblocks = (n + B - 1) / B;
  int *todo = cl_xmalloc((size_t)nblocks * sizeof *todo);
  for (int b = 0; b < nblocks; b++) todo[b] = b;
  pipe_ p;
  pipe_init(&p, t, o, items, n, todo, nblocks, st);
  p.stream = s;
  cl_progress_init(&p.prog, o->progress, o->label, t->mod->plural, n, 0);
  int rc = run_pipe(&p, o->batches_in_flight);
  if (rc && e) *e = p.err;
  free(todo);
  st->wall_seconds[mi] += now() - t0;
  return rc;
}
