/* sidlite's two compiled CPU kernels (loaded by sidlite/native/__init__.py; each has a torch fallback).
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
