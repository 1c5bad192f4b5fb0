// A bfloat16 GEMM for AVX512-BF16 CPUs (see CIntrinsics.h). GotoBLAS-style: op(B) is packed in
// blocks of KC x NC (L2), op(A) in blocks of MC x KC, and a 6 x 32 register tile accumulates
// vdpbf16ps products, which take two k-steps at once: packed words hold a bf16 pair
// (k, k + 1), low half first.
#include "CIntrinsics.h"
#include <stdint.h>
#include <stdlib.h>

#if !defined(__x86_64__)
int coderl_bf16_supported(void) { return 0; }
void coderl_gemm_bf16(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                      const float *B, long ldb, float beta, float *C, long ldc) { abort(); }
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

// Rows i0..<i0+mc, k p0..<p0+kc of op(A), as panels of MR rows: [panel][k pair][row]. Whole
// panels of real rows go 16 pairs (or, transposed, one pair) at a time through the vector
// conversions; the rest element by element.
VECTOR static void packA(int trans, const float *A, long lda, long M, long i0, long mc, long p0, long kc, uint32_t *out) {
    long pairs = (kc + 1) / 2, whole = kc / 2;   // pairs with both k in range
    for (long r = 0; r < mc; r += MR, out += pairs * MR) {
        long q = 0;
        if (i0 + r + MR <= M) {
            if (!trans) {
                uint32_t words[16];
                for (; q + 16 <= whole; q += 16)
                    for (long row = 0; row < MR; row++) {
                        neighbours16(A + (i0 + r + row) * lda + p0 + 2 * q, words);
                        for (int t = 0; t < 16; t++) out[(q + t) * MR + row] = words[t];
                    }
            } else {
                for (; q < whole; q++) {
                    const float *lo = A + (p0 + 2 * q) * lda + i0 + r;
                    __m128i a = (__m128i)_mm256_cvtneps_pbh(_mm256_maskz_loadu_ps(0x3F, lo));
                    __m128i b = (__m128i)_mm256_cvtneps_pbh(_mm256_maskz_loadu_ps(0x3F, lo + lda));
                    __m256i w = _mm256_or_si256(_mm256_cvtepu16_epi32(a), _mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
                    _mm256_mask_storeu_epi32(out + q * MR, 0x3F, w);
                }
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

__attribute__((target("avx512f,avx512bf16")))
static void tile(long pairs, const uint32_t *a, const uint32_t *b, float *C, long ldc, long rows, long cols, float alpha, float beta) {
    __m512 c[MR][2];
    for (int i = 0; i < MR; i++) { c[i][0] = _mm512_setzero_ps(); c[i][1] = _mm512_setzero_ps(); }
    for (long q = 0; q < pairs; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + q * NR + 16);
        for (int i = 0; i < MR; i++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[q * MR + i]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], x, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], x, b1);
        }
    }
    // C = alpha * sum + beta * C (beta is 1 after the first block of k; 0 never reads C).
    __m512 scale = _mm512_set1_ps(alpha), keep = _mm512_set1_ps(beta);
    if (rows == MR && cols == NR) {
        for (int i = 0; i < MR; i++) {
            float *row = C + i * ldc;
            if (beta == 0) {
                _mm512_storeu_ps(row, _mm512_mul_ps(c[i][0], scale));
                _mm512_storeu_ps(row + 16, _mm512_mul_ps(c[i][1], scale));
            } else {
                _mm512_storeu_ps(row, _mm512_fmadd_ps(c[i][0], scale, _mm512_mul_ps(_mm512_loadu_ps(row), keep)));
                _mm512_storeu_ps(row + 16, _mm512_fmadd_ps(c[i][1], scale, _mm512_mul_ps(_mm512_loadu_ps(row + 16), keep)));
            }
        }
        return;
    }
    float partial[MR][NR];
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(partial[i], c[i][0]);
        _mm512_storeu_ps(partial[i] + 16, c[i][1]);
    }
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++)
            C[i * ldc + j] = alpha * partial[i][j] + (beta == 0 ? 0 : beta * C[i * ldc + j]);
}

static _Thread_local uint32_t *buffer;

void coderl_gemm_bf16(int transA, int transB, long M, long N, long K, float alpha,
                      const float *A, long lda, const float *B, long ldb,
                      float beta, float *C, long ldc) {
    if (N <= 0 || M <= 0) return;
    if (K <= 0 || alpha == 0) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    // Blocks of k as even as possible, at most KC each (K = 576 is one block, 2048 four).
    long blocks = (K + KC - 1) / KC, kcMax = ((K + blocks - 1) / blocks + 1) & ~1L;
    if (!buffer) {
        buffer = aligned_alloc(64, (size_t)(KC / 2) * (MC + NC) * sizeof(uint32_t));
        if (!buffer) abort();
    }
    uint32_t *packedB = buffer, *packedA = buffer + (size_t)(KC / 2) * NC;
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
                        tile(pairs, packedA + (ir / MR) * pairs * MR, b, C + (ic + ir) * ldc + jc + jr, ldc, rows, cols, alpha, blockBeta);
                    }
                }
            }
        }
    }
}
#endif
