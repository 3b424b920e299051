/* cl_cache: the embedding cache, a SQLite database beside the results one (cache.db).
 * Owns: content hashes of files (keyed by path + size + mtime, so a 600 MB checkpoint is
 * hashed once) and embeddings keyed by content, never by name: the encoder key (checkpoint
 * hash, config, preprocessing, backend, precision, clade's encoder version) plus the image
 * file's content hash or the text itself. Crash-safe (WAL, transactions) and shareable
 * between processes. A handle serves one thread at a time.
 * Every entry carries a CRC-32 of its key and vector: an entry that fails it is a miss (and
 * said so), encoded again. The cache is optional: a file that is not a database is moved
 * aside and a new cache begun, and any later failure (disk full, a lock held too long, a
 * damaged page) warns once on stderr: a failed write leaves the cache read-only, a failed read
 * turns it off, for the rest of the process, whose run goes on encoding what it needs. */
#ifndef CL_CACHE_H
#define CL_CACHE_H
#include <stdint.h>

#include "core/cl_core.h"

/* Bump when encoder numerics change, so old embeddings are not reused. */
#define CL_ENCODER_VERSION "clade-encoder-1"

typedef struct cl_cache cl_cache;

/* Opens (creating) the cache database at path; a file there that is not a database (or a
 * damaged one) is renamed to <path>.damaged-<time> with a warning, and a new one made. */
int cl_cache_open(const char *path, cl_cache **out, cl_error *e);
void cl_cache_close(cl_cache *c);
/* Whether the cache still serves (no failed read turned it off). */
int cl_cache_on(const cl_cache *c);
/* "<dir of results db>/cache.db" into buf. */
char *cl_cache_path_for(const char *results_db, char *buf, size_t n);

/* Content hash (git blob SHA-1 hex) of a file, remembered by path, size and mtime. */
int cl_cache_file_hash(cl_cache *c, const char *path, char out[41], cl_error *e);

/* Look up n embeddings of kind ("image", "image-draft" for draft decoding, or "text") under
 * encoder key `model_key`; keys[i] is an item key (image content hash, or the text). Found
 * rows whose checksum holds are copied into out[i*dim] and hit[i] set to 1; others get
 * hit[i] = 0. A hit refreshes the entry's used_at when older than an hour. Never fails the
 * caller: a failed read turns the cache off (all misses). */
int cl_cache_get(cl_cache *c, const char *model_key, const char *kind, const char *const *keys, int n,
                 int dim, float *out, uint8_t *hit, cl_error *e);
/* Store n embeddings with their checksums (one transaction); a failure leaves the cache
 * read-only. */
int cl_cache_put(cl_cache *c, const char *model_key, const char *kind, const char *const *keys, int n,
                 int dim, const float *vecs, cl_error *e);

typedef struct cl_cache_stats {
  int64_t models, images, texts, bytes, files;
} cl_cache_stats;
int cl_cache_stats_get(cl_cache *c, cl_cache_stats *st, cl_error *e);
/* Drop embeddings not used for `days` days (0: all), and file hashes of files that no
 * longer exist. Returns counts removed. */
int cl_cache_prune(cl_cache *c, double days, int64_t *removed_embeddings, int64_t *removed_files,
                   cl_error *e);
/* Adds the embeddings (and file hashes) of the cache at src that this one lacks, with every
 * column both have, in one transaction (`clade cache merge`); a key already here is kept (the
 * same key is the same content). *added: the embeddings added. */
int cl_cache_merge(cl_cache *c, const char *src, int64_t *added, cl_error *e);

#endif
