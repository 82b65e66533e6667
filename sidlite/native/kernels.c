/* sidlite's compiled CPU kernels (loaded by sidlite/native/__init__.py; without them torch does the same
 * work, or, for the shortlist scores, the probe ranks in float32 alone).
 *
 * 1. sidlite_top_k_rows: the k largest entries of each row of a float32 matrix, for the top-k backends.
 * torch.topk costs about 1.4 ns per entry on the rows the list scan makes (a few hundred wide, k = 5);
 * this costs about a third of that. Each row is split into G = n / 16 groups of columns
 * {c, c + G, c + 2G, ...}. Pass 1 takes every group's maximum; those are element-wise maxima of 16
 * contiguous slices, which the compiler vectorises. The k largest entries of the row lie in the k groups
 * of largest maximum (an entry of any other group is beaten by k group maxima, each a different entry),
 * and the k-th largest group maximum is a lower bound on them. Pass 2 looks at those k groups only.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_ROWS 16
#define MAX_GROUPS 4096
#define MAX_K 64

/* Put v (column c) into the descending list (vals, idx) of length k, whose last entry it beats. */
static inline void insert(float v, int64_t c, float *vals, int64_t *idx, int k) {
    int p = k - 1;
    while (p > 0 && vals[p - 1] < v) {
        vals[p] = vals[p - 1];
        idx[p] = idx[p - 1];
        p--;
    }
    vals[p] = v;
    idx[p] = c;
}

static void row_top_k(const float *row, int64_t n, int k, float *vals, int64_t *idx) {
    for (int j = 0; j < k; j++) {
        vals[j] = -INFINITY;
        idx[j] = 0;
    }
    int64_t groups = n / GROUP_ROWS;
    if (groups < k || groups > MAX_GROUPS) { /* short or very long rows: one plain pass */
        for (int64_t c = 0; c < n; c++)
            if (row[c] > vals[k - 1]) insert(row[c], c, vals, idx, k);
        return;
    }
    float group_max[MAX_GROUPS];
    for (int64_t g = 0; g < groups; g++) group_max[g] = row[g];
    for (int b = 1; b < GROUP_ROWS; b++) {
        const float *slice = row + b * groups;
        for (int64_t g = 0; g < groups; g++) group_max[g] = slice[g] > group_max[g] ? slice[g] : group_max[g];
    }
    float best[MAX_K];
    int64_t chosen[MAX_K];
    for (int j = 0; j < k; j++) {
        best[j] = -INFINITY;
        chosen[j] = 0;
    }
    for (int64_t g = 0; g < groups; g++)
        if (group_max[g] > best[k - 1]) insert(group_max[g], g, best, chosen, k);
    float bound = best[k - 1];
    for (int j = 0; j < k; j++)
        for (int b = 0; b < GROUP_ROWS; b++) {
            int64_t c = b * groups + chosen[j];
            if (row[c] >= bound && row[c] > vals[k - 1]) insert(row[c], c, vals, idx, k);
        }
    for (int64_t c = groups * GROUP_ROWS; c < n; c++) /* the columns past the groups */
        if (row[c] > vals[k - 1]) insert(row[c], c, vals, idx, k);
}

/* Row r of scores starts at scores + r * stride and has lengths[r] entries (width when lengths is NULL);
 * its k largest go to out_vals[r * k ...] in descending order, their columns to out_idx (missing: -inf, 0). */
int sidlite_top_k_rows(const float *scores, int64_t rows, int64_t width, int64_t stride, const int64_t *lengths,
                       int k, int threads, float *out_vals, int64_t *out_idx) {
    if (k < 1 || k > MAX_K) return 1;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < rows; r++)
        row_top_k(scores + r * stride, lengths ? lengths[r] : width, k, out_vals + r * k, out_idx + r * k);
    return 0;
}

/* 2. sidlite_fold_windowed: overlap-add windowed patch estimates into an image (band), for the image
 * denoiser: out[ch, r*s + dy, c*s + dx] += window[j] * patches[r*cols + c][j], j = (ch*P + dy)*P + dx,
 * for every patch (r, c) of a (rows, cols) grid at stride s. It reads each estimate once, in its own
 * layout, where the torch path first writes a transposed, windowed copy of all of them. Grid rows go in
 * blocks whose output rows overlap only the neighbouring blocks'; the even blocks run in parallel, then
 * the odd ones, so no two threads add into one pixel and the sums do not depend on the thread count. */
void sidlite_fold_windowed(const float *patches, int64_t rows, int64_t cols, int64_t channels, int64_t P,
                           int64_t stride, const float *window, float *out, int64_t channel_stride,
                           int64_t row_stride, int threads) {
    int64_t block = (P + stride - 1) / stride; /* blocks of this many grid rows: b and b + 2 never overlap */
    if (block < 8) block = 8;
    int64_t blocks = (rows + block - 1) / block, dim = channels * P * P;
    for (int parity = 0; parity < 2; parity++) {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t b = parity; b < blocks; b += 2) {
            int64_t last = (b + 1) * block < rows ? (b + 1) * block : rows;
            for (int64_t r = b * block; r < last; r++)
                for (int64_t c = 0; c < cols; c++) {
                    const float *patch = patches + (r * cols + c) * dim;
                    for (int64_t ch = 0; ch < channels; ch++)
                        for (int64_t dy = 0; dy < P; dy++) {
                            float *restrict o = out + ch * channel_stride + (r * stride + dy) * row_stride + c * stride;
                            const float *restrict p = patch + (ch * P + dy) * P;
                            const float *restrict w = window + (ch * P + dy) * P;
                            for (int64_t dx = 0; dx < P; dx++) o[dx] += w[dx] * p[dx];
                        }
                }
        }
    }
}


/* 3. sidlite_scan_lists: the top-k backend's list scan in one call. Segment s pairs the (query, list)
 * pairs p0 .. p1 - 1 with the table rows [a, b) of one list (segments[4s .. 4s+3] = p0, p1, a, b). Pair p
 * is row r = rows[p] of the result and belongs to query r / nprobe (the result is in query order: each
 * query's nprobe pairs one after another). Its score against row a + c is
 * scale * x[r / nprobe] . table[a + c] + bias[a + c], and its k largest go to out_vals[r*k ...] in
 * descending order, their table rows a + c to out_idx (missing: -inf, row 0).
 * It is each list's matrix product and row_top_k fused, so one C call replaces three torch calls per
 * list, whose fixed cost grew with the number of lists, and the sort back into query order. Work items
 * of up to ITEM_PAIRS pairs of one list are handed out dynamically (a list that every query probes is
 * shared by all threads). An item copies its list, CHUNK members at a time, transposed into a per-thread
 * buffer (dim rows of members, zero padded), then scores QUERY_TILE queries at a time against it: each
 * step broadcasts one coordinate of each query and multiplies two vectors of members, so nothing is
 * summed across vector lanes. A tile's scores, still in cache, are chosen from at once and merged into
 * the pair's k best so far. */
#ifdef __AVX512F__
#define LANES 16
#define QUERY_TILE 12
#else
#define LANES 8
#define QUERY_TILE 6
#endif
#define ITEM_PAIRS 512
#define CHUNK 1024
typedef float lanes_t __attribute__((vector_size(4 * LANES)));

static inline lanes_t load_lanes(const float *p) {
    lanes_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store_lanes(float *p, lanes_t v) { memcpy(p, &v, sizeof v); }

/* out[i * padded + j] = scale * q[i] . member j + bias[j], for i < QUERY_TILE and j < padded, where
 * member j's coordinate d is yt[d * padded + j] (padded: a multiple of LANES). Members go two vectors at
 * a time, and a last odd vector alone: padded to whole pairs instead, a list of 40 would be scored as 64, not 48. */
static void score_tile(const float *const *q, const float *yt, int64_t padded, int64_t dim, float scale,
                       const float *bias, float *out) {
    int64_t pairs_end = padded / (2 * LANES) * (2 * LANES);
    if (pairs_end < padded) { /* the odd vector */
        lanes_t acc[QUERY_TILE];
        memset(acc, 0, sizeof acc);
        for (int64_t d = 0; d < dim; d++) {
            lanes_t b0 = load_lanes(yt + d * padded + pairs_end);
            for (int i = 0; i < QUERY_TILE; i++) acc[i] += q[i][d] * b0;
        }
        lanes_t bias0 = load_lanes(bias + pairs_end);
        for (int i = 0; i < QUERY_TILE; i++) store_lanes(out + i * padded + pairs_end, acc[i] * scale + bias0);
    }
    for (int64_t j = 0; j < pairs_end; j += 2 * LANES) {
        lanes_t acc[QUERY_TILE][2];
        memset(acc, 0, sizeof acc);
        for (int64_t d = 0; d < dim; d++) {
            lanes_t b0 = load_lanes(yt + d * padded + j), b1 = load_lanes(yt + d * padded + j + LANES);
            for (int i = 0; i < QUERY_TILE; i++) {
                float a = q[i][d];
                acc[i][0] += a * b0;
                acc[i][1] += a * b1;
            }
        }
        lanes_t bias0 = load_lanes(bias + j), bias1 = load_lanes(bias + j + LANES);
        for (int i = 0; i < QUERY_TILE; i++) {
            store_lanes(out + i * padded + j, acc[i][0] * scale + bias0);
            store_lanes(out + i * padded + j + LANES, acc[i][1] * scale + bias1);
        }
    }
}

/* out[q * R + r] = scale * x[q] . table[cand[q * R + r]] + bias[cand[q * R + r]] for q < M and r < R: the exact
 * scores of a shortlist of rows per query (the probe's candidates, chosen by bf16 products). Up to
 * SHORTLIST_GROUP rows at a time: each vector of the query is loaded once for all of them, and their
 * products are independent sums, so the additions do not wait on each other. */
#define SHORTLIST_GROUP 8
void sidlite_score_candidates(const float *x, int64_t M, int64_t dim, const float *table, const float *bias,
                              const int64_t *cand, int64_t R, float scale, int threads, float *out) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t q = 0; q < M; q++) {
        const float *xq = x + q * dim;
        for (int64_t r0 = 0; r0 < R; r0 += SHORTLIST_GROUP) {
            int n = R - r0 < SHORTLIST_GROUP ? (int)(R - r0) : SHORTLIST_GROUP;
            const float *y[SHORTLIST_GROUP];
            for (int i = 0; i < n; i++) y[i] = table + cand[q * R + r0 + i] * dim;
            lanes_t acc[SHORTLIST_GROUP];
            memset(acc, 0, sizeof acc);
            int64_t d = 0;
            for (; d + LANES <= dim; d += LANES) {
                lanes_t xv = load_lanes(xq + d);
                for (int i = 0; i < n; i++) acc[i] += xv * load_lanes(y[i] + d);
            }
            for (int i = 0; i < n; i++) {
                float lanes[LANES];
                store_lanes(lanes, acc[i]);
                for (int w = LANES / 2; w > 0; w /= 2) /* pairwise halving: a short dependency chain */
                    for (int l = 0; l < w; l++) lanes[l] += lanes[l + w];
                float dot = lanes[0];
                for (int64_t e = d; e < dim; e++) dot += xq[e] * y[i][e];
                out[q * R + r0 + i] = scale * dot + bias[cand[q * R + r0 + i]];
            }
        }
    }
}

/* row_top_k for a scored tile row of ``padded`` entries (a multiple of LANES; entries past the list are
 * -inf), k <= LANES: the same argument with the LANES groups {l, l + LANES, l + 2 LANES, ...}, whose
 * maxima are element-wise maxima of whole vectors. Branches on the data cost a misprediction each, so
 * there are few: each group maximum's rank among the LANES (ties broken by lane) picks the k groups and
 * the bound (their smallest maximum), the entries of those groups at or above the bound are appended to
 * a short list without a test (the count just grows by the comparison), and only that list, about k
 * entries, is sorted. It holds at most k * padded / LANES <= padded entries. */
static void tile_row_top_k(const float *row, int64_t padded, int k, float *vals, int64_t *idx) {
    float group_max[LANES], bound = -INFINITY;
    int rank[LANES];
    memcpy(group_max, row, sizeof group_max);
    for (int64_t j = LANES; j < padded; j += LANES)
        for (int l = 0; l < LANES; l++) group_max[l] = row[j + l] > group_max[l] ? row[j + l] : group_max[l];
    for (int l = 0; l < LANES; l++) rank[l] = 0;
    for (int m = 0; m < LANES; m++)
        for (int l = 0; l < LANES; l++)
            rank[l] += (group_max[m] > group_max[l]) | ((group_max[m] == group_max[l]) & (m < l));
    for (int l = 0; l < LANES; l++) bound = rank[l] == k - 1 ? group_max[l] : bound;
    float found[CHUNK + 2 * LANES];
    int64_t column[CHUNK + 2 * LANES], count = 0;
    for (int l = 0; l < LANES; l++) {
        if (rank[l] >= k) continue;
        for (int64_t c = l; c < padded; c += LANES) {
            found[count] = row[c];
            column[count] = c;
            count += row[c] >= bound;
        }
    }
    for (int j = 0; j < k; j++) {
        vals[j] = -INFINITY;
        idx[j] = 0;
    }
    for (int64_t i = 0; i < count; i++) /* -inf (padding) never enters */
        if (found[i] > vals[k - 1]) insert(found[i], column[i], vals, idx, k);
}

/* Merge a chunk's k best (columns offset by first) into the pair's k best so far. */
static void merge_top_k(const float *vals, const int64_t *idx, int64_t first, int k, float *best, int64_t *best_idx) {
    for (int j = 0; j < k && vals[j] > best[k - 1]; j++) insert(vals[j], idx[j] + first, best, best_idx, k);
}

/* The first chunk's k best as the pair's: columns offset by first where a candidate was found, else 0. */
static void store_found(const float *vals, const int64_t *idx, int64_t first, int k, float *best, int64_t *best_idx) {
    for (int j = 0; j < k; j++) {
        best[j] = vals[j];
        best_idx[j] = vals[j] > -INFINITY ? idx[j] + first : 0;
    }
}

int sidlite_scan_lists(const float *x, int64_t dim, const int64_t *rows, int64_t nprobe, const float *table,
                       const float *bias, const int64_t *segments, int64_t count, float scale, int k, int threads,
                       float *out_vals, int64_t *out_idx) {
    if (k < 1 || k > MAX_K) return 1;
    int64_t *first_item = malloc((count + 1) * sizeof *first_item); /* work items before segment s */
    if (!first_item) return 2;
    first_item[0] = 0;
    for (int64_t s = 0; s < count; s++)
        first_item[s + 1] = first_item[s] + (segments[4 * s + 1] - segments[4 * s] + ITEM_PAIRS - 1) / ITEM_PAIRS;
    int failed = 0;
    #pragma omp parallel num_threads(threads)
    {
        int64_t widest = CHUNK + 2 * LANES;
        float *yt = malloc(dim * widest * sizeof *yt), *scores = malloc(QUERY_TILE * widest * sizeof *scores);
        float *chunk_bias = malloc(widest * sizeof *chunk_bias);
        int64_t s = 0;
        if (!yt || !scores || !chunk_bias) {
            #pragma omp atomic write
            failed = 2;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < first_item[count]; item++) {
            if (!yt || !scores || !chunk_bias) continue;
            if (item < first_item[s] || item >= first_item[s + 1]) { /* find the item's segment */
                int64_t lo = 0, hi = count - 1;
                while (lo < hi) {
                    int64_t mid = (lo + hi + 1) / 2;
                    if (first_item[mid] <= item) lo = mid; else hi = mid - 1;
                }
                s = lo;
            }
            const int64_t *seg = segments + 4 * s;
            int64_t p0 = seg[0] + (item - first_item[s]) * ITEM_PAIRS;
            int64_t p1 = p0 + ITEM_PAIRS < seg[1] ? p0 + ITEM_PAIRS : seg[1];
            for (int64_t c0 = seg[2]; c0 < seg[3]; c0 += CHUNK) {
                int64_t m = seg[3] - c0 < CHUNK ? seg[3] - c0 : CHUNK;
                int64_t padded = (m + LANES - 1) / LANES * LANES;
                for (int64_t j = 0; j < padded; j++) chunk_bias[j] = j < m ? bias[c0 + j] : -INFINITY; /* never wins */
                for (int64_t j0 = 0; j0 < padded; j0 += LANES) /* LANES members at a time: whole vectors written */
                    for (int64_t d = 0; d < dim; d++) {
                        float column[LANES];
                        for (int l = 0; l < LANES; l++) column[l] = j0 + l < m ? table[(c0 + j0 + l) * dim + d] : 0.0f;
                        memcpy(yt + d * padded + j0, column, sizeof column);
                    }
                for (int64_t p = p0; p < p1; p += QUERY_TILE) {
                    int real = p1 - p < QUERY_TILE ? (int)(p1 - p) : QUERY_TILE;
                    const float *q[QUERY_TILE];
                    for (int i = 0; i < QUERY_TILE; i++) q[i] = x + rows[p + (i < real ? i : 0)] / nprobe * dim;
                    score_tile(q, yt, padded, dim, scale, chunk_bias, scores);
                    for (int i = 0; i < real; i++) {
                        float tile_vals[MAX_K], *best = out_vals + rows[p + i] * k;
                        int64_t tile_idx[MAX_K], *best_idx = out_idx + rows[p + i] * k;
                        if (k <= LANES)
                            tile_row_top_k(scores + i * padded, padded, k, tile_vals, tile_idx);
                        else
                            row_top_k(scores + i * padded, m, k, tile_vals, tile_idx);
                        if (c0 == seg[2]) /* the pair's row is out of cache: written once, not per insert */
                            store_found(tile_vals, tile_idx, c0, k, best, best_idx);
                        else
                            merge_top_k(tile_vals, tile_idx, c0, k, best, best_idx);
                    }
                }
            }
        }
        free(yt);
        free(scores);
        free(chunk_bias);
    }
    free(first_item);
    return failed;
}
