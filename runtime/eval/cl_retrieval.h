/* cl_retrieval: cross-modal retrieval as CLIBD evaluates it (BIOSCAN-CLIP). Owns: exact
 * top-k keys per query by cosine similarity, and CLIBD's top-k micro and macro accuracy.
 * Ties (equal similarity) go to the lower key index, where faiss's order is undefined. */
#ifndef CL_RETRIEVAL_H
#define CL_RETRIEVAL_H
#include <stdint.h>

#include "../core/cl_core.h"

/* For each of nq query rows (q, [nq, d] row-major), the k keys (keys, [nk, d]) of highest
 * cosine similarity, best first, into out[nq * k] (0-based key indices; -1 past nk). Rows
 * are L2-normalised here (a zero row stays zero, as sklearn's normalize leaves it). Every
 * similarity is one dot product in one fixed order, so equal keys score bit-identically. */
int cl_retrieval_topk(const double *q, int64_t nq, const double *keys, int64_t nk, int64_t d, int k,
                      int64_t *out, cl_error *e);

/* CLIBD's top_k_micro_accuracy and top_k_macro_accuracy for one rank and one k: labels are
 * ids (>= 0, < n_labels) of one label space shared by queries and keys; topk holds kmax key
 * indices per query (as cl_retrieval_topk writes them), of which the first k count. micro:
 * the share of queries whose label is among their top-k keys' labels. macro: that share per
 * query label, summed over labels in order of first appearance among the queries, divided
 * by their number (CLIBD's order of summation). nq 0 is an error. */
int cl_retrieval_accuracy(const int *query_label, int64_t nq, const int *key_label, int64_t nk,
                          const int64_t *topk, int kmax, int k, int n_labels, double *micro,
                          double *macro, cl_error *e);

#endif
