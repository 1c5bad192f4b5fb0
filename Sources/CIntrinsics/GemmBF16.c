// A bfloat16 GEMM for AVX512-BF16 CPUs (see CIntrinsics.h). GotoBLAS-style: op(B) is packed in
// blocks of KC x NC (L2), op(A) in blocks of MC x KC, and a 6 x 32 register tile accumulates
// vdpbf16ps products, which take two k-steps at once: packed words hold a bf16 pair
// (k, k + 1), low half first.
#include "CIntrinsics.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__x86_64__)
int coderl_bf16_supported(void) { return 0; }
void coderl_gemm_bf16(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                      const float *B, long ldb, float beta, float *C, long ldc) { abort(); }
size_t coderl_bf16_packed_words(long N, long K) { return 0; }
void coderl_bf16_pack_rows(const float *W, long N, long K, uint32_t *out) { abort(); }
void coderl_gemm_bf16_packed(long M, long N, long K, const float *A, long lda, const uint32_t *W,
                             float *C, long ldc, int accumulate) { abort(); }
#else
#include <immintrin.h>

enum { MR = 6, NR = 32, KC = 640, MC = 96, NC = 512 };

int coderl_bf16_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
}

static inline uint32_t bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u) return (u >> 16) | ((u & 0xFFFFu) ? 0x40u : 0);   // inf, nan
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

static inline uint32_t pair(float lo, float hi) { return bf16(lo) | (bf16(hi) << 16); }

#define VECTOR __attribute__((target("avx512f,avx512bf16,avx512vl")))

// 16 packed words from 16 floats at `lo` (low halves) and 16 at `hi` (high halves).
VECTOR static inline __m512i words16(const float *lo, const float *hi) {
    __m256i a = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(lo));
    __m256i b = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(hi));
    return _mm512_or_si512(_mm512_cvtepu16_epi32(a), _mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
}

// 16 packed words of 32 consecutive floats (the pairs are neighbours).
VECTOR static inline void neighbours16(const float *x, uint32_t *words) {
    _mm512_storeu_si512(words, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(x)));
}

// op(A)[i][k]
static inline float elementA(int trans, const float *A, long lda, long i, long k) {
    return trans ? A[k * lda + i] : A[i * lda + k];
}

// Rows i0..<i0+mc, k p0..<p0+kc of op(A), as panels of MR rows: [panel][k pair][row]. Untransposed
// rows go 16 pairs at a time through the vector conversions (rows past M as zeros), transposed
// whole panels one pair at a time; the rest element by element.
VECTOR static void packA(int trans, const float *A, long lda, long M, long i0, long mc, long p0, long kc, uint32_t *out) {
    long pairs = (kc + 1) / 2, whole = kc / 2;   // pairs with both k in range
    for (long r = 0; r < mc; r += MR, out += pairs * MR) {
        long q = 0, real = M - (i0 + r) < MR ? M - (i0 + r) : MR;
        if (!trans) {   // rows past M are zero words
            uint32_t words[16];
            for (; q + 16 <= whole; q += 16)
                for (long row = 0; row < MR; row++) {
                    if (row < real) neighbours16(A + (i0 + r + row) * lda + p0 + 2 * q, words);
                    else memset(words, 0, sizeof words);
                    for (int t = 0; t < 16; t++) out[(q + t) * MR + row] = words[t];
                }
        } else if (real == MR) {
            for (; q < whole; q++) {
                const float *lo = A + (p0 + 2 * q) * lda + i0 + r;
                __m128i a = (__m128i)_mm256_cvtneps_pbh(_mm256_maskz_loadu_ps(0x3F, lo));
                __m128i b = (__m128i)_mm256_cvtneps_pbh(_mm256_maskz_loadu_ps(0x3F, lo + lda));
                __m256i w = _mm256_or_si256(_mm256_cvtepu16_epi32(a), _mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
                _mm256_mask_storeu_epi32(out + q * MR, 0x3F, w);
            }
        }
        for (; q < pairs; q++) {
            long k = p0 + 2 * q;
            for (long row = 0; row < MR; row++) {
                long i = i0 + r + row;
                float lo = 0, hi = 0;
                if (i < M) {
                    lo = elementA(trans, A, lda, i, k);
                    if (k + 1 < p0 + kc) hi = elementA(trans, A, lda, i, k + 1);
                }
                out[q * MR + row] = pair(lo, hi);
            }
        }
    }
}

// k p0..<p0+kc, columns j0..<j0+nc of op(B), as panels of NR columns: [panel][k pair][column].
// Whole panels of real columns go through the vector conversions, the rest element by element.
VECTOR static void packB(int trans, const float *B, long ldb, long p0, long kc, long j0, long nc, long nEnd, uint32_t *out) {
    long pairs = (kc + 1) / 2, whole = kc / 2;
    for (long c0 = 0; c0 < nc; c0 += NR, out += pairs * NR) {
        long j = j0 + c0, q = 0;
        if (j + NR <= nEnd) {
            if (!trans) {
                for (; q < whole; q++) {
                    const float *lo = B + (p0 + 2 * q) * ldb + j;
                    _mm512_storeu_si512(out + q * NR, words16(lo, lo + ldb));
                    _mm512_storeu_si512(out + q * NR + 16, words16(lo + 16, lo + ldb + 16));
                }
            } else {
                uint32_t words[16];
                for (; q + 16 <= whole; q += 16)
                    for (long c = 0; c < NR; c++) {
                        neighbours16(B + (j + c) * ldb + p0 + 2 * q, words);
                        for (int t = 0; t < 16; t++) out[(q + t) * NR + c] = words[t];
                    }
            }
        }
        for (; q < pairs; q++) {
            long k = p0 + 2 * q;
            int second = k + 1 < p0 + kc;
            for (long c = 0; c < NR; c++) {
                long jj = j + c;
                float lo = 0, hi = 0;
                if (jj < nEnd) {
                    if (trans) {
                        lo = B[jj * ldb + k];
                        if (second) hi = B[jj * ldb + k + 1];
                    } else {
                        lo = B[k * ldb + jj];
                        if (second) hi = B[(k + 1) * ldb + jj];
                    }
                }
                out[q * NR + c] = pair(lo, hi);
            }
        }
    }
}

// A tile of R rows (1...MR) x NR columns over `pairs` k pairs: C = alpha * sum + beta * C on
// the first `cols` columns (beta is 1 after the first block of k; 0 never reads C). Few rows
// are bound by reading B, and one accumulator chain per column half would wait on vdpbf16ps's
// latency, so R <= 3 takes two k pairs per step into two sets.
VECTOR static inline __attribute__((always_inline))
void rowsTile(const int R, long pairs, const uint32_t *a, const uint32_t *b, float *C, long ldc, long cols, float alpha, float beta) {
    __m512 c[MR][2], d[MR][2];
    for (int i = 0; i < R; i++) {
        c[i][0] = c[i][1] = _mm512_setzero_ps();
        d[i][0] = d[i][1] = _mm512_setzero_ps();
    }
    long q = 0;
    if (R <= 3)
        for (; q + 2 <= pairs; q += 2) {
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * NR), b1 = (__m512bh)_mm512_loadu_si512(b + q * NR + 16);
            __m512bh b2 = (__m512bh)_mm512_loadu_si512(b + q * NR + NR), b3 = (__m512bh)_mm512_loadu_si512(b + q * NR + NR + 16);
            for (int i = 0; i < R; i++) {
                __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[q * MR + i]);
                __m512bh y = (__m512bh)_mm512_set1_epi32((int)a[q * MR + MR + i]);
                c[i][0] = _mm512_dpbf16_ps(c[i][0], x, b0);
                c[i][1] = _mm512_dpbf16_ps(c[i][1], x, b1);
                d[i][0] = _mm512_dpbf16_ps(d[i][0], y, b2);
                d[i][1] = _mm512_dpbf16_ps(d[i][1], y, b3);
            }
        }
    for (; q < pairs; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * NR), b1 = (__m512bh)_mm512_loadu_si512(b + q * NR + 16);
        for (int i = 0; i < R; i++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[q * MR + i]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], x, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], x, b1);
        }
    }
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    for (int i = 0; i < R; i++) {
        float *row = C + i * ldc;
        __m512 s0 = c[i][0], s1 = c[i][1];
        if (R <= 3) { s0 = _mm512_add_ps(s0, d[i][0]); s1 = _mm512_add_ps(s1, d[i][1]); }
        if (alpha != 1) { s0 = _mm512_mul_ps(s0, _mm512_set1_ps(alpha)); s1 = _mm512_mul_ps(s1, _mm512_set1_ps(alpha)); }
        if (beta != 0) {
            __m512 keep = _mm512_set1_ps(beta);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, row), keep, s0);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, row + 16), keep, s1);
        }
        _mm512_mask_storeu_ps(row, m0, s0);
        _mm512_mask_storeu_ps(row + 16, m1, s1);
    }
}

// The tile for a panel's `rows` real rows of packed A, compiled for each count.
VECTOR static void tile(long rows, long pairs, const uint32_t *a, const uint32_t *b, float *C, long ldc, long cols, float alpha, float beta) {
    switch (rows) {
    case 1: rowsTile(1, pairs, a, b, C, ldc, cols, alpha, beta); break;
    case 2: rowsTile(2, pairs, a, b, C, ldc, cols, alpha, beta); break;
    case 3: rowsTile(3, pairs, a, b, C, ldc, cols, alpha, beta); break;
    case 4: rowsTile(4, pairs, a, b, C, ldc, cols, alpha, beta); break;
    case 5: rowsTile(5, pairs, a, b, C, ldc, cols, alpha, beta); break;
    default: rowsTile(6, pairs, a, b, C, ldc, cols, alpha, beta); break;
    }
}

// Each calling thread's packing buffer: KC/2 pairs of (MC + NC) rows or columns.
static _Thread_local uint32_t *buffer;

static uint32_t *packingBuffer(void) {
    if (!buffer) {
        buffer = aligned_alloc(64, (size_t)(KC / 2) * (MC + NC) * sizeof(uint32_t));
        if (!buffer) abort();
    }
    return buffer;
}

// The k block for K: blocks as even as possible, at most KC each, and even (K = 576 is one
// block, 2048 four).
static long kBlock(long K) {
    long blocks = (K + KC - 1) / KC;
    return ((K + blocks - 1) / blocks + 1) & ~1L;
}

void coderl_gemm_bf16(int transA, int transB, long M, long N, long K, float alpha,
                      const float *A, long lda, const float *B, long ldb,
                      float beta, float *C, long ldc) {
    if (N <= 0 || M <= 0) return;
    if (K <= 0 || alpha == 0) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    long kcMax = kBlock(K);
    uint32_t *packedB = packingBuffer(), *packedA = packedB + (size_t)(KC / 2) * NC;
    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC;
        for (long pc = 0; pc < K; pc += kcMax) {
            long kc = K - pc < kcMax ? K - pc : kcMax, pairs = (kc + 1) / 2;
            float blockBeta = pc == 0 ? beta : 1;
            packB(transB, B, ldb, pc, kc, jc, nc, N, packedB);
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                packA(transA, A, lda, M, ic, mc, pc, kc, packedA);
                for (long jr = 0; jr < nc; jr += NR) {
                    long cols = nc - jr < NR ? nc - jr : NR;
                    const uint32_t *b = packedB + (jr / NR) * pairs * NR;
                    for (long ir = 0; ir < mc; ir += MR) {
                        long rows = mc - ir < MR ? mc - ir : MR;
                        tile(rows, pairs, packedA + (ir / MR) * pairs * MR, b, C + (ic + ir) * ldc + jc + jr, ldc, cols, alpha, blockBeta);
                    }
                }
            }
        }
    }
}
// --- Weights packed once (inference) ---
//
// A weight matrix W[N, K] (rows are output features, y = W x) packed as op(B) = W^T is exactly
// what packB writes for one block of all K: panels of NR rows of W, [panel][k pair][row]. Packed
// once per weight version, the products of a decode step read bf16 panels straight from memory:
// half the bytes of the fp32 weights and no packing per call.

size_t coderl_bf16_packed_words(long N, long K) { return (size_t)((N + NR - 1) / NR) * (size_t)((K + 1) / 2) * NR; }

void coderl_bf16_pack_rows(const float *W, long N, long K, uint32_t *out) {
    if (N > 0 && K > 0) packB(1, W, K, 0, K, 0, N, N, out);
}

void coderl_gemm_bf16_packed(long M, long N, long K, const float *A, long lda, const uint32_t *W,
                             float *C, long ldc, int accumulate) {
    if (N <= 0 || M <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (long i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    // All of the shared buffer holds packed rows of A: up to MCP rows of one k block.
    enum { MCP = (MC + NC) / MR * MR };
    long pairsK = (K + 1) / 2, kcMax = kBlock(K);
    uint32_t *packedA = packingBuffer();
    for (long pc = 0; pc < K; pc += kcMax) {
        long kc = K - pc < kcMax ? K - pc : kcMax, pairs = (kc + 1) / 2;
        float beta = pc > 0 || accumulate ? 1 : 0;
        for (long ic = 0; ic < M; ic += MCP) {
            long mc = M - ic < MCP ? M - ic : MCP;
            packA(0, A, lda, M, ic, mc, pc, kc, packedA);
            // One panel of W (at most KC/2 x NR words) meets every tile of A's block.
            for (long jr = 0; jr < N; jr += NR) {
                long cols = N - jr < NR ? N - jr : NR;
                const uint32_t *b = W + (jr / NR) * pairsK * NR + (pc / 2) * NR;
                for (long ir = 0; ir < mc; ir += MR)
                    tile(mc - ir < MR ? mc - ir : MR, pairs, packedA + (ir / MR) * pairs * MR, b,
                         C + (ic + ir) * ldc + jr, ldc, cols, 1, beta);
            }
        }
    }
}
#endif
