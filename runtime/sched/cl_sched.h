/* cl_sched: the embedding job graph on libuv. Image files are decoded and preprocessed on
 * libuv's thread pool (all cores), assembled into batches and encoded by one encoder worker
 * thread per device, with a fixed number of batches in flight so memory stays bounded and
 * the encoder is kept busy while the next batches decode. Results go through the embedding
 * cache: only images and texts it lacks are encoded.
 * Owns: the per-call loop, the worker thread, the batch buffers, the progress display. */
#ifndef CL_SCHED_H
#define CL_SCHED_H
#include <stdint.h>

#include "model/cl_encoder.h"
#include "sched/cl_cache.h"

/* Counters and timings a run records (clade log, the run's stats_json). */
typedef struct cl_sched_stats {
  int64_t images_encoded, images_cached, texts_encoded, texts_cached;
  double decode_seconds;  /* summed over decode threads */
  double encode_seconds;  /* encoder busy time */
  double wall_seconds;    /* wall time inside the image pipeline */
} cl_sched_stats;

typedef enum { CL_PROGRESS_AUTO = 0, CL_PROGRESS_OFF, CL_PROGRESS_JSON } cl_progress_mode;

typedef struct cl_sched_opts {
  cl_cache *cache;          /* NULL: no cache */
  cl_progress_mode progress;
  const char *label;        /* shown in the progress line ("bioclip on rare_species") */
  int batches_in_flight;    /* default 3 */
} cl_sched_opts;

/* The encoder's cache identity: checkpoint hash, config, preprocessing, backend, precision
 * and CL_ENCODER_VERSION, hashed into 40 hex digits. */
void cl_sched_model_key(const cl_encoder *enc, char out[41]);

/* Embed n image files into out [n, embed_dim] (manifest order). Batches are aligned to
 * positions (images b*B .. b*B+B-1), and a batch with any cache miss is encoded whole, so a
 * run resumed from the cache computes exactly what a clean run computes. */
int cl_sched_images(cl_encoder *enc, const cl_sched_opts *o, const char *const *paths, int n, float *out,
                    cl_sched_stats *st, cl_error *e);
/* Embed n texts into out [n, embed_dim], through the cache. */
int cl_sched_texts(cl_encoder *enc, const cl_sched_opts *o, const char *const *texts, int n, float *out,
                   cl_sched_stats *st, cl_error *e);

#endif
