/* cl_sched: decode on libuv's pool, encode on a worker thread, cache in between.
 *
 * Flow for images: hash every file (through the cache's path+size+mtime memo), look the
 * hashes up, and list the aligned batches with a miss. The main thread runs a uv loop: it
 * queues decode jobs for up to `batches_in_flight` batches; when a batch's last image is
 * decoded the batch goes to the encoder worker; when the worker is done (uv_async) the main
 * thread copies the embeddings out, stores them in the cache and starts the next batch. */
#define _GNU_SOURCE
#include "cl_sched.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "image/cl_image.h"
#include "store/cl_store.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The cache kind of image embeddings: draft decoding changes the pixels, not the texts */
static const char *image_kind(const cl_encoder *enc) {
  return enc->decode == CL_IMG_DECODE_DRAFT ? "image-draft" : "image";
}

void cl_sched_model_key(const cl_encoder *enc, char out[41]) {
  const cl_clip_config *c = &enc->cfg;
  char buf[1024];
  int n = snprintf(buf, sizeof buf,
                   "%s|ckpt=%s|embed=%d|v=%d,%d,%d,%d,%d,%.6f|t=%d,%d,%d,%d,%d,%.6f|quick=%d|"
                   "pre=pil-bicubic,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g|backend=%s|precision=%s",
                   CL_ENCODER_VERSION, enc->hash, c->embed_dim, c->vision.image_size, c->vision.patch_size,
                   c->vision.width, c->vision.layers, c->vision.head_width, c->vision.mlp_ratio,
                   c->text.context_length, c->text.vocab_size, c->text.width, c->text.heads, c->text.layers,
                   c->text.mlp_ratio, c->quick_gelu, c->vision.image_size, c->mean[0], c->mean[1], c->mean[2],
                   c->std[0], c->std[1], c->std[2], enc->backend_name, enc->precision);
  if (cl_store_hash_buf(buf, (size_t)n, out, NULL) != CL_OK) snprintf(out, 41, "unhashable");
}

/* ---- progress ---- */

typedef struct progress {
  cl_progress_mode mode;
  int tty;
  const char *label, *what;
  int64_t total, done, cached;
  double t0, last;
} progress;

static void progress_init(progress *p, cl_progress_mode mode, const char *label, const char *what, int64_t total,
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

static void progress_show(progress *p, int final) {
  if (p->mode == CL_PROGRESS_OFF) return;
  double t = now(), el = t - p->t0;
  if (!final && t - p->last < (p->tty ? 0.2 : 5.0)) return;
  if (final && el < 1.0 && p->mode != CL_PROGRESS_JSON && !(p->tty && p->last > p->t0)) return; /* too quick to matter */
  p->last = t;
  double rate = el > 0 ? (double)p->done / el : 0;
  double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
  if (p->mode == CL_PROGRESS_JSON) {
    fprintf(stderr, "{\"event\":\"progress\",\"stage\":\"%s\",\"label\":\"%s\",\"done\":%lld,\"total\":%lld,"
                    "\"cached\":%lld,\"per_second\":%.1f,\"eta_seconds\":%.1f}\n",
            p->what, p->label, (long long)p->done, (long long)p->total, (long long)p->cached, rate, eta);
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

/* ---- the image pipeline ---- */

typedef struct batch batch;
typedef struct imgpipe imgpipe;

typedef struct job {
  uv_work_t req;
  batch *b;
  int slot;  /* index within the batch */
  int index; /* image index */
  cl_error err;
  int rc;
  double secs;
} job;

struct batch {
  imgpipe *p;
  int block;     /* aligned block number */
  int start, n;  /* images start .. start+n-1 */
  int pending;   /* decode jobs outstanding */
  float *pixels; /* [B, 3, S, S] */
  float *emb;    /* [B, D] */
  job *jobs;
  int rc;
  cl_error err;
  batch *next;   /* encoder queue link */
};

struct imgpipe {
  cl_encoder *enc;
  const cl_sched_opts *o;
  const char *const *paths;
  char (*keys)[41];
  float *out;
  int B, S, D;
  int *todo, ntodo, next_todo; /* blocks to encode, and the next to start */
  int in_flight;
  batch *free_list;
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
  progress prog;
  uv_loop_t *loop;
};

static void decode_work(uv_work_t *req) {
  job *j = req->data;
  imgpipe *p = j->b->p;
  double t = now();
  size_t per = (size_t)3 * p->S * p->S;
  j->rc = cl_img_preprocess_file_decode(p->paths[j->index], p->S, p->enc->decode, p->enc->cfg.mean, p->enc->cfg.std,
                                        j->b->pixels + (size_t)j->slot * per, &j->err);
  j->secs = now() - t;
}

static void start_next_batch(imgpipe *p);

static void worker_main(void *arg) {
  imgpipe *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->queue_head && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
    if (!p->queue_head && p->stop) {
      pthread_mutex_unlock(&p->mu);
      return;
    }
    batch *b = p->queue_head;
    p->queue_head = b->next;
    if (!p->queue_head) p->queue_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    double t = now();
    b->rc = cl_clip_encode_images(p->enc->clip, b->pixels, b->n, b->emb, &b->err);
    double dt = now() - t;
    pthread_mutex_lock(&p->mu);
    p->st->encode_seconds += dt;
    b->next = p->done_head;
    p->done_head = b;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->done_async);
  }
}

static void fail_at(imgpipe *p, int index, int rc, const cl_error *err) {
  if (p->rc == CL_OK || index < p->err_index) {
    p->rc = rc;
    p->err = *err;
    p->err_index = index;
  }
}

static void decode_done(uv_work_t *req, int status) {
  job *j = req->data;
  batch *b = j->b;
  imgpipe *p = b->p;
  p->st->decode_seconds += j->secs;
  if (status != 0) {
    cl_error e;
    cl_err(&e, CL_EIO, "%s: decode job cancelled", p->paths[j->index]);
    fail_at(p, j->index, CL_EIO, &e);
  } else if (j->rc != CL_OK) {
    fail_at(p, j->index, j->rc, &j->err);
  }
  if (--b->pending > 0) return;
  if (p->rc != CL_OK) { /* do not encode; release the batch */
    b->next = p->free_list;
    p->free_list = b;
    p->in_flight--;
    if (p->in_flight == 0) uv_close((uv_handle_t *)&p->done_async, NULL);
    return;
  }
  pthread_mutex_lock(&p->mu);
  b->next = NULL;
  if (p->queue_tail) p->queue_tail->next = b;
  else p->queue_head = b;
  p->queue_tail = b;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void encoded(uv_async_t *h) {
  imgpipe *p = h->data;
  pthread_mutex_lock(&p->mu);
  batch *list = p->done_head;
  p->done_head = NULL;
  pthread_mutex_unlock(&p->mu);
  while (list) {
    batch *b = list;
    list = b->next;
    if (b->rc != CL_OK) {
      fail_at(p, b->start, b->rc, &b->err);
    } else if (p->rc == CL_OK) {
      memcpy(p->out + (size_t)b->start * p->D, b->emb, (size_t)b->n * p->D * sizeof(float));
      if (p->o->cache) {
        const char *keys[512];
        for (int i = 0; i < b->n; i++) keys[i] = p->keys[b->start + i];
        char mk[41];
        cl_sched_model_key(p->enc, mk);
        cl_error e;
        if (cl_cache_put(p->o->cache, mk, image_kind(p->enc), keys, b->n, p->D, b->emb, &e) != CL_OK) fail_at(p, b->start, e.code, &e);
      }
      p->st->images_encoded += b->n;
      p->prog.done += b->n;
      progress_show(&p->prog, 0);
    }
    b->next = p->free_list;
    p->free_list = b;
    p->in_flight--;
    start_next_batch(p);
  }
  if (p->in_flight == 0 && (p->next_todo >= p->ntodo || p->rc != CL_OK)) uv_close((uv_handle_t *)&p->done_async, NULL);
}

static void start_next_batch(imgpipe *p) {
  while (p->rc == CL_OK && p->next_todo < p->ntodo && p->free_list) {
    batch *b = p->free_list;
    p->free_list = b->next;
    int block = p->todo[p->next_todo++];
    b->block = block;
    b->start = block * p->B;
    b->n = p->B;
    if (b->start + b->n > p->prog.total + p->prog.cached) b->n = (int)(p->prog.total + p->prog.cached) - b->start;
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
      uv_queue_work(p->loop, &j->req, decode_work, decode_done);
    }
  }
}

/* Hash every image through the cache and look the embeddings up. */
static int lookup_images(cl_encoder *enc, const cl_sched_opts *o, const char *const *paths, int n, float *out,
                         char (*keys)[41], uint8_t *hit, cl_error *e) {
  memset(hit, 0, (size_t)n);
  if (!cl_cache_on(o->cache)) return CL_OK; /* no cache, or one a failure turned off */
  for (int i = 0; i < n; i++) {
    int rc = cl_cache_file_hash(o->cache, paths[i], keys[i], e);
    if (rc) return rc;
  }
  char mk[41];
  cl_sched_model_key(enc, mk);
  const char **kp = cl_xmalloc((size_t)(n ? n : 1) * sizeof(char *));
  for (int i = 0; i < n; i++) kp[i] = keys[i];
  int rc = cl_cache_get(o->cache, mk, image_kind(enc), kp, n, enc->cfg.embed_dim, out, hit, e);
  free(kp);
  return rc;
}

int cl_sched_images(cl_encoder *enc, const cl_sched_opts *o, const char *const *paths, int n, float *out,
                    cl_sched_stats *st, cl_error *e) {
  double t0 = now();
  int B = enc->batch, D = enc->cfg.embed_dim, S = enc->cfg.vision.image_size;
  char (*keys)[41] = cl_xcalloc((size_t)(n ? n : 1), 41);
  uint8_t *hit = cl_xmalloc((size_t)(n ? n : 1));
  int rc = lookup_images(enc, o, paths, n, out, keys, hit, e);
  if (rc) {
    free(keys);
    free(hit);
    return rc;
  }
  /* blocks with any miss are encoded whole */
  int nblocks = (n + B - 1) / B, ntodo = 0;
  int *todo = cl_xmalloc((size_t)(nblocks ? nblocks : 1) * sizeof(int));
  int64_t cached = 0;
  for (int b = 0; b < nblocks; b++) {
    int all = 1;
    for (int i = b * B; i < n && i < (b + 1) * B; i++) all &= hit[i];
    if (all) cached += (b + 1) * B < n ? B : n - b * B;
    else todo[ntodo++] = b;
  }
  st->images_cached += cached;
  if (ntodo == 0) {
    free(todo);
    free(keys);
    free(hit);
    st->wall_seconds += now() - t0;
    return CL_OK;
  }
  imgpipe p;
  memset(&p, 0, sizeof p);
  p.enc = enc;
  p.o = o;
  p.paths = paths;
  p.keys = keys;
  p.out = out;
  p.B = B;
  p.S = S;
  p.D = D;
  p.todo = todo;
  p.ntodo = ntodo;
  p.st = st;
  p.err_index = n;
  progress_init(&p.prog, o->progress, o->label, "images", n - cached, cached);
  p.prog.total = n - cached; /* to encode */
  uv_loop_t loop;
  uv_loop_init(&loop);
  p.loop = &loop;
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  uv_async_init(&loop, &p.done_async, encoded);
  p.done_async.data = &p;
  int nb = o->batches_in_flight > 0 ? o->batches_in_flight : 3;
  batch *bs = cl_xcalloc((size_t)nb, sizeof *bs);
  size_t per = (size_t)3 * S * S;
  for (int i = 0; i < nb; i++) {
    bs[i].p = &p;
    bs[i].pixels = cl_xmalloc((size_t)B * per * sizeof(float));
    bs[i].emb = cl_xmalloc((size_t)B * D * sizeof(float));
    bs[i].jobs = cl_xcalloc((size_t)B, sizeof(job));
    bs[i].next = p.free_list;
    p.free_list = &bs[i];
  }
  uv_thread_create(&p.worker, worker_main, &p);
  /* start_next_batch uses prog.total + cached as n: keep that true */
  p.prog.total = n - cached;
  p.prog.cached = cached;
  start_next_batch(&p);
  uv_run(&loop, UV_RUN_DEFAULT);
  pthread_mutex_lock(&p.mu);
  p.stop = 1;
  pthread_cond_signal(&p.cv);
  pthread_mutex_unlock(&p.mu);
  uv_thread_join(&p.worker);
  uv_loop_close(&loop);
  progress_show(&p.prog, 1);
  for (int i = 0; i < nb; i++) {
    free(bs[i].pixels);
    free(bs[i].emb);
    free(bs[i].jobs);
  }
  free(bs);
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  free(todo);
  free(keys);
  free(hit);
  st->wall_seconds += now() - t0;
  if (p.rc != CL_OK) {
    if (e) *e = p.err;
    return p.rc;
  }
  return CL_OK;
}

int cl_sched_texts(cl_encoder *enc, const cl_sched_opts *o, const char *const *texts, int n, float *out,
                   cl_sched_stats *st, cl_error *e) {
  const int B = 256;
  int D = enc->cfg.embed_dim;
  uint8_t *hit = cl_xcalloc((size_t)(n ? n : 1), 1);
  char mk[41];
  cl_sched_model_key(enc, mk);
  int rc = CL_OK;
  if (o->cache) rc = cl_cache_get(o->cache, mk, "text", texts, n, D, out, hit, e);
  progress pr;
  int64_t todo = 0;
  for (int b = 0; b < n; b += B) {
    int all = 1;
    for (int i = b; i < n && i < b + B; i++) all &= hit[i];
    if (!all) todo += (b + B < n ? B : n - b);
  }
  progress_init(&pr, o->progress, o->label, "texts", todo, n - todo);
  for (int b = 0; rc == CL_OK && b < n; b += B) {
    int nb = b + B < n ? B : n - b, all = 1;
    for (int i = 0; i < nb; i++) all &= hit[b + i];
    if (all) {
      st->texts_cached += nb;
      continue;
    }
    rc = cl_encoder_texts(enc, texts + b, nb, out + (size_t)b * D, NULL, e);
    if (rc == CL_OK && o->cache) rc = cl_cache_put(o->cache, mk, "text", texts + b, nb, D, out + (size_t)b * D, e);
    st->texts_encoded += nb;
    pr.done += nb;
    progress_show(&pr, 0);
  }
  if (todo) progress_show(&pr, 1);
  free(hit);
  return rc;
}
