/* e5's self-attention over windows packed end to end, for CPUs with AVX-512: one call per layer.
 *
 * Why: torch's fused attention reaches ~70 GFLOP/s at e5's shape (heads of 32, windows of ~130 tokens) on a
 * 2-core Zen 4, 16% of what its matmuls reach, and took 26% of the encoder's time. This kernel keeps one
 * (window, head) in L1 as float32, computes its scores, softmax and weighted values in registers, and takes
 * every window of a forward pass in one call (no padding, no per-length batches). Built at first use by
 * vectorstore/attention.py with the machine's C compiler (-march=native), run on torch's own OpenMP threads.
 *
 * qkv: [tokens, 3 * heads * 32] (queries, keys, values of every head, as e5's fused QKV matmul writes them);
 * out: [tokens, heads * 32]; window w is rows starts[w] .. starts[w] + lengths[w] - 1 (at most 512).
 * bf16 != 0: both hold bfloat16, else float32. Sums and the softmax are float32; bfloat16 products are paired by
 * VDPBF16PS where the CPU has it (avx512_bf16), as torch's bfloat16 matmuls do.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef __AVX512F__
#error "this kernel needs AVX-512F"
#endif

#define DIM 32      /* e5-small's head width */
#define MAX_LEN 512 /* e5's longest window */
#define ROWS 8      /* queries per register block */

static inline __m512 load16(const void *p, int bf16) {
    if (!bf16) return _mm512_loadu_ps(p);
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

static inline void store16(void *p, __m512 x, int bf16) {
    if (!bf16) {
        _mm512_storeu_ps(p, x);
        return;
    }
    __m512i u = _mm512_castps_si512(x); /* round to nearest even, as torch converts */
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    u = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
}

/* e^(s - top) for scores s <= top, relative error ~2e-7: 2^((s - top) log2 e) split into an integer power
 * (scalef, which flushes very negative powers to zero) and a degree-6 polynomial on [-0.5, 0.5].
 * top_log2e is top * log2 e, so the shift and the change of base are one FMA. */
static inline __m512 exp_shifted(__m512 s, __m512 top_log2e) {
    __m512 t = _mm512_fmsub_ps(s, _mm512_set1_ps(1.44269504088896341f), top_log2e);
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.535336188e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Scores of ROWS queries against a window's keys, blocks of 16 keys: scores [ROWS][MAX_LEN] as float32 and each
 * row's largest score in maxima (the zero keys past the window, masked out of the last block, do not count). */
#ifdef __AVX512BF16__
/* bfloat16 by VDPBF16PS, a pair of products per lane (half the float32 FMAs; the products are exact and the sums
 * float32, as in torch's bfloat16 matmul). keys: [DIM / 2][padded] pairs of bfloat16 (zero past the window),
 * queries: [ROWS][DIM / 2] pairs, unscaled. */
static void pair_keys(const char *qkv, int64_t row_bytes, int64_t k_offset, int64_t len, int64_t padded,
                      uint32_t *keys) {
    for (int64_t j = 0; j < padded; j++) {
        const uint32_t *k = (const uint32_t *)(qkv + j * row_bytes + k_offset);
        for (int d = 0; d < DIM / 2; d++) keys[d * padded + j] = j < len ? k[d] : 0u;
    }
}

/* Values as pairs of rows, [(len + 1) / 2][DIM] of (v[2t][d], v[2t + 1][d]), zero past the window. */
static void pair_values(const char *qkv, int64_t row_bytes, int64_t v_offset, int64_t len, uint32_t *values) {
    for (int64_t t = 0; 2 * t < len; t++) {
        const char *a = qkv + 2 * t * row_bytes + v_offset, *b = a + row_bytes;
        for (int half = 0; half < 2; half++) {
            const __m512i even = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)a + half));
            const __m512i odd = 2 * t + 1 < len ? _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)b + half))
                                                : _mm512_setzero_si512();
            _mm512_store_si512(values + t * DIM + 16 * half, _mm512_or_si512(even, _mm512_slli_epi32(odd, 16)));
        }
    }
}

static void pair_scores(const uint32_t *keys, const uint32_t *queries, int64_t padded, __mmask16 last,
                        float *scores, __m512 *maxima) {
    const __m512 scale = _mm512_set1_ps(0.17677669529663687f); /* 1 / sqrt(DIM) */
    for (int r = 0; r < ROWS; r++) maxima[r] = _mm512_set1_ps(-INFINITY);
    for (int64_t block = 0; block < padded; block += 16) {
        const __mmask16 counted = block == padded - 16 ? last : (__mmask16)0xFFFF;
        __m512 acc[ROWS];
        for (int r = 0; r < ROWS; r++) acc[r] = _mm512_setzero_ps();
        for (int d = 0; d < DIM / 2; d++) {
            const __m512bh k = (__m512bh)_mm512_load_si512(keys + d * padded + block);
            for (int r = 0; r < ROWS; r++)
                acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_set1_epi32((int)queries[r * DIM / 2 + d]), k);
        }
        for (int r = 0; r < ROWS; r++) {
            const __m512 s = _mm512_mul_ps(acc[r], scale);
            maxima[r] = _mm512_mask_max_ps(maxima[r], counted, maxima[r], s);
            _mm512_store_ps(scores + r * MAX_LEN + block, s);
        }
    }
}
#endif

/* float32: keys_t [DIM][padded] (transposed, zero past the window), queries [ROWS][DIM], scaled. */
static void float_keys(const char *qkv, int64_t row_bytes, int64_t k_offset, int64_t len, int64_t padded, int bf16,
                       float *keys_t) {
    const int64_t size = bf16 ? 2 : 4;
    float column[DIM];
    for (int64_t j = 0; j < padded; j++) {
        if (j < len) {
            _mm512_storeu_ps(column, load16(qkv + j * row_bytes + k_offset, bf16));
            _mm512_storeu_ps(column + 16, load16(qkv + j * row_bytes + k_offset + 16 * size, bf16));
        }
        for (int d = 0; d < DIM; d++) keys_t[d * padded + j] = j < len ? column[d] : 0.0f;
    }
}

static void float_values(const char *qkv, int64_t row_bytes, int64_t v_offset, int64_t len, int bf16,
                         float *values) {
    const int64_t size = bf16 ? 2 : 4;
    for (int64_t j = 0; j < len; j++) {
        const char *r = qkv + j * row_bytes + v_offset;
        _mm512_store_ps(values + j * DIM, load16(r, bf16));
        _mm512_store_ps(values + j * DIM + 16, load16(r + 16 * size, bf16));
    }
}

static void float_scores(const float *keys_t, const float *queries, int64_t padded, __mmask16 last, float *scores,
                         __m512 *maxima) {
    for (int r = 0; r < ROWS; r++) maxima[r] = _mm512_set1_ps(-INFINITY);
    for (int64_t block = 0; block < padded; block += 16) {
        const __mmask16 counted = block == padded - 16 ? last : (__mmask16)0xFFFF;
        __m512 acc[ROWS];
        for (int r = 0; r < ROWS; r++) acc[r] = _mm512_setzero_ps();
        for (int d = 0; d < DIM; d++) {
            const __m512 k = _mm512_load_ps(keys_t + d * padded + block);
            for (int r = 0; r < ROWS; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(queries[r * DIM + d]), k, acc[r]);
        }
        for (int r = 0; r < ROWS; r++) {
            maxima[r] = _mm512_mask_max_ps(maxima[r], counted, maxima[r], acc[r]);
            _mm512_store_ps(scores + r * MAX_LEN + block, acc[r]);
        }
    }
}

/* Each row's scores -> softmax weights without the division (e^(s - max), zero past the window), in place: as
 * bfloat16 when `paired` (the row's first 2 * padded bytes; as torch's attention rounds its weights), else
 * float32. Returns 1 / (sum of the float32 weights) per row. */
static void softmax_rows(float *scores, const __m512 *maxima, int64_t padded, __mmask16 last, int paired,
                         float *inverse_sum) {
    for (int r = 0; r < ROWS; r++) {
        float *s = scores + r * MAX_LEN;
        const __m512 top_log2e = _mm512_set1_ps(_mm512_reduce_max_ps(maxima[r]) * 1.44269504088896341f);
        __m512 sum = _mm512_setzero_ps();
        for (int64_t block = 0; block < padded; block += 16) {
            __m512 e = exp_shifted(_mm512_load_ps(s + block), top_log2e);
            if (block == padded - 16) e = _mm512_maskz_mov_ps(last, e);
            sum = _mm512_add_ps(sum, e);
#ifdef __AVX512BF16__
            if (paired) { /* bytes 2 * block .. 2 * block + 31: floats already read */
                _mm256_store_si256((__m256i *)((uint16_t *)s + block), (__m256i)_mm512_cvtneps_pbh(e));
                continue;
            }
#endif
            _mm512_store_ps(s + block, e);
        }
        inverse_sum[r] = 1.0f / _mm512_reduce_add_ps(sum);
    }
}

/* One window's one head. keys: DIM x MAX_LEN floats' room, values: [len][DIM], scores: [ROWS][MAX_LEN],
 * queries: [ROWS][DIM] scratch. */
static void window_head(const char *qkv, char *out, int64_t row_bytes, int64_t out_row_bytes, int64_t head_offset,
                        int64_t heads, int64_t len, int bf16, float *keys, float *values, float *scores,
                        float *queries) {
    const int64_t size = bf16 ? 2 : 4, padded = (len + 15) & ~(int64_t)15;
    const int64_t k_offset = (heads * DIM + head_offset) * size, v_offset = (2 * heads * DIM + head_offset) * size;
#ifdef __AVX512BF16__
    const int paired = bf16;
    if (paired) {
        pair_values(qkv, row_bytes, v_offset, len, (uint32_t *)values);
        pair_keys(qkv, row_bytes, k_offset, len, padded, (uint32_t *)keys);
    }
#else
    const int paired = 0;
#endif
    if (!paired) {
        float_values(qkv, row_bytes, v_offset, len, bf16, values);
        float_keys(qkv, row_bytes, k_offset, len, padded, bf16, keys);
    }
    const __m512 scale = _mm512_set1_ps(0.17677669529663687f); /* 1 / sqrt(DIM) */
    const __mmask16 last = (__mmask16)((1u << (len - (padded - 16))) - 1u);
    for (int64_t first = 0; first < len; first += ROWS) {
        const int rows = len - first < ROWS ? (int)(len - first) : ROWS;
        for (int r = 0; r < ROWS; r++) { /* a short last block repeats its first query */
            const char *q = qkv + (first + (r < rows ? r : 0)) * row_bytes + head_offset * size;
            if (paired) {
                const uint32_t *pairs = (const uint32_t *)q;
                for (int d = 0; d < DIM / 2; d++) ((uint32_t *)queries)[r * DIM / 2 + d] = pairs[d];
            } else {
                _mm512_store_ps(queries + r * DIM, _mm512_mul_ps(load16(q, bf16), scale));
                _mm512_store_ps(queries + r * DIM + 16, _mm512_mul_ps(load16(q + 16 * size, bf16), scale));
            }
        }
        __m512 maxima[ROWS];
#ifdef __AVX512BF16__
        if (paired) pair_scores((const uint32_t *)keys, (const uint32_t *)queries, padded, last, scores, maxima);
#endif
        if (!paired) float_scores(keys, queries, padded, last, scores, maxima);
        float inverse_sum[ROWS];
        softmax_rows(scores, maxima, padded, last, paired, inverse_sum);
        __m512 low[ROWS], high[ROWS];
        for (int r = 0; r < ROWS; r++) low[r] = high[r] = _mm512_setzero_ps();
#ifdef __AVX512BF16__
        if (paired) { /* pairs of weights times pairs of value rows */
            const uint32_t *pairs = (const uint32_t *)values;
            for (int64_t t = 0; 2 * t < len; t++) {
                const __m512bh v0 = (__m512bh)_mm512_load_si512(pairs + t * DIM);
                const __m512bh v1 = (__m512bh)_mm512_load_si512(pairs + t * DIM + 16);
                for (int r = 0; r < ROWS; r++) {
                    const __m512bh p = (__m512bh)_mm512_set1_epi32(((const int *)(scores + r * MAX_LEN))[t]);
                    low[r] = _mm512_dpbf16_ps(low[r], p, v0);
                    high[r] = _mm512_dpbf16_ps(high[r], p, v1);
                }
            }
        }
#endif
        if (!paired) {
            for (int64_t j = 0; j < len; j++) {
                const __m512 v0 = _mm512_load_ps(values + j * DIM), v1 = _mm512_load_ps(values + j * DIM + 16);
                for (int r = 0; r < ROWS; r++) {
                    const __m512 p = _mm512_set1_ps(scores[r * MAX_LEN + j]);
                    low[r] = _mm512_fmadd_ps(p, v0, low[r]);
                    high[r] = _mm512_fmadd_ps(p, v1, high[r]);
                }
            }
        }
        for (int r = 0; r < rows; r++) {
            char *o = out + (first + r) * out_row_bytes + head_offset * size;
            const __m512 inv = _mm512_set1_ps(inverse_sum[r]);
            store16(o, _mm512_mul_ps(low[r], inv), bf16);
            store16(o + 16 * size, _mm512_mul_ps(high[r], inv), bf16);
        }
    }
}

/* Returns 0, or 1 when a window is longer than MAX_LEN (nothing is written then). */
int e5_attention(const void *qkv, void *out, const int64_t *starts, const int64_t *lengths, int64_t windows,
                 int64_t heads, int bf16, int threads) {
    for (int64_t w = 0; w < windows; w++)
        if (lengths[w] < 1 || lengths[w] > MAX_LEN) return 1;
    const int64_t size = bf16 ? 2 : 4, row_bytes = 3 * heads * DIM * size, out_row_bytes = heads * DIM * size;
#pragma omp parallel num_threads(threads)
    {
        float *keys = aligned_alloc(64, sizeof(float) * DIM * MAX_LEN);
        float *values = aligned_alloc(64, sizeof(float) * DIM * MAX_LEN);
        float *scores = aligned_alloc(64, sizeof(float) * ROWS * MAX_LEN);
        float *queries = aligned_alloc(64, sizeof(float) * ROWS * DIM);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < windows * heads; task++) {
            const int64_t w = task / heads, h = task % heads;
            window_head((const char *)qkv + starts[w] * row_bytes, (char *)out + starts[w] * out_row_bytes, row_bytes,
                        out_row_bytes, h * DIM, heads, lengths[w], bf16, keys, values, scores, queries);
        }
        free(keys);
        free(values);
        free(scores);
        free(queries);
    }
    return 0;
}
