/* cl_sched: the embedding job graph on libuv, for items of any registered modality. Items
 * are read into encoder inputs (image files decoded and preprocessed on libuv's thread pool,
 * all cores; texts tokenised in line), assembled into batches and encoded by one encoder
 * worker thread per device, with a fixed number of batches in flight so memory stays
 * bounded and the encoder is kept busy while the next batches are read. Results go through
 * the embedding cache, keyed by (model, modality's cache kind, item key): only items it
 * lacks are encoded.
 * Owns: the per-call loop, the worker thread, the batch buffers, the progress display. */
#ifndef CL_SCHED_H
#define CL_SCHED_H
#include <stdint.h>

#include "model/cl_encoder.h"
#include "sched/cl_cache.h"

/* Counters and timings a run records (clade log, the run's stats_json), per registered
 * modality (index as cl_modality_index). */
typedef struct cl_sched_stats {
  int64_t encoded[CL_MODALITY_MAX], cached[CL_MODALITY_MAX]; /* items */
  double read_seconds[CL_MODALITY_MAX];   /* reading items (image decoding), summed over threads */
  double encode_seconds[CL_MODALITY_MAX]; /* encoder busy time */
  double wall_seconds[CL_MODALITY_MAX];   /* wall time inside the pipeline */
  double wait_seconds[CL_MODALITY_MAX];   /* the encoder idle, waiting for a batch to be read */
} cl_sched_stats;

/* The stats index of a modality name (-1: not registered). */
static inline int cl_sched_stat(const char *modality) { return cl_modality_index(cl_modality_find(modality)); }

typedef enum { CL_PROGRESS_AUTO = 0, CL_PROGRESS_OFF, CL_PROGRESS_JSON } cl_progress_mode;
/* A progress line on stderr: a bar on a terminal (every 0.2 s), a line every 5 s otherwise,
 * or JSON objects ({"event": "progress", "stage": what, "label", "done", "total", ...}). The
 * caller advances done (and may change label) and calls show; show(p, 1) at the end. */
typedef struct cl_progress {
  cl_progress_mode mode;
  int tty;
  const char *label, *what;
  int64_t total, done, cached;
  double t0, last;
} cl_progress;
void cl_progress_init(cl_progress *p, cl_progress_mode mode, const char *label, const char *what, int64_t total,
                      int64_t cached);
void cl_progress_show(cl_progress *p, int final);

typedef struct cl_sched_opts {
  cl_cache *cache;          /* NULL: no cache */
  cl_progress_mode progress;
  const char *label;        /* shown in the progress line ("bioclip on rare_species") */
  int batches_in_flight;    /* default 3 */
} cl_sched_opts;

/* Embed n items of `modality` (image file paths, texts, ...) into out [n, tower dim] (input
 * order), with the model's tower for it (an error naming the towers it has when it lacks
 * one). Batches are aligned to positions (items b*B .. b*B+B-1, B the tower's batch), and a
 * batch with any cache miss is encoded whole, so a run resumed from the cache computes
 * exactly what a clean run computes. */
int cl_sched_embed(cl_encoder *enc, const char *modality, const cl_sched_opts *o, const char *const *items, int n,
                   float *out, cl_sched_stats *st, cl_error *e);

/* A stream of batches instead of an output array (clade predict): the same pipeline (items
 * read on libuv's pool while the worker encodes the batch before), but an item that fails to
 * read is skipped, not the end of the run, and every batch goes to `on_batch` on the encoder
 * worker, right after its readable items are encoded, in input order. Items i*B .. i*B+B-1
 * (B the tower's batch) make batch i. */
typedef struct cl_sched_batch {
  int start, n;            /* items start .. start+n-1 */
  const int *ok;           /* the nok items read (indices into the items), in order */
  int nok;
  const float *emb;        /* [nok, tower dim]: their embeddings */
  const int *failed;       /* the nfailed items that did not read, and why */
  const cl_error *errs;
  int nfailed;
} cl_sched_batch;
typedef struct cl_sched_stream {
  /* A failure ends the run with that error, after the batches before it. */
  int (*on_batch)(void *ud, const cl_sched_batch *b, cl_error *e);
  void *ud;
} cl_sched_stream;
int cl_sched_stream_run(const cl_tower *t, const cl_sched_opts *o, const char *const *items, int n,
                        const cl_sched_stream *s, cl_sched_stats *st, cl_error *e);

#endif
