// Two instructions Swift cannot ask for directly, as static inline functions that are inlined
// into the Swift callers (Tensor/SkinnyGemm.swift, Llama/KVCache.swift); and the bfloat16 GEMMs
// (GemmBF16.c, used through Tensor/BF16Gemm.swift).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/// Software prefetch of one cache line: Swift has no prefetch intrinsic.
static inline void coderl_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

typedef _Float16 coderl_half16 __attribute__((ext_vector_type(16)));
typedef float coderl_float16 __attribute__((ext_vector_type(16)));
typedef _Float16 coderl_half8 __attribute__((ext_vector_type(8)));
typedef float coderl_float8 __attribute__((ext_vector_type(8)));

/// Sixteen IEEE halves at `source` to floats at `destination` (one vcvtph2ps where F16C is
/// available). Swift's own conversions compile to that too in small functions, but inside the
/// attention loop they were left as out-of-line calls or per-lane code.
static inline void coderl_half16_to_float(const void *source, float *destination) {
    coderl_half16 h;
    memcpy(&h, source, sizeof h);
    coderl_float16 f = __builtin_convertvector(h, coderl_float16);
    memcpy(destination, &f, sizeof f);
}

/// Eight halves to floats, the same way (the attention path for head sizes other than 64).
static inline void coderl_half8_to_float(const void *source, float *destination) {
    coderl_half8 h;
    memcpy(&h, source, sizeof h);
    coderl_float8 f = __builtin_convertvector(h, coderl_float8);
    memcpy(destination, &f, sizeof f);
}

/// Whether this CPU has AVX512-BF16 (vdpbf16ps), which `coderl_gemm_bf16` needs.
int coderl_bf16_supported(void);

/// C[M, N] = alpha * op(A) · op(B) + beta * C (row-major, leading dimension ldc), where
/// op(A)[M, K] is A or, with transA, A's transpose (A read as K x M), and likewise op(B)[K, N]. The inputs are rounded to bfloat16 (nearest even) as they are packed;
/// products and sums are fp32 (vdpbf16ps), so the result is exactly what fp32 arithmetic gives
/// on the rounded inputs, up to summation order. Call only when `coderl_bf16_supported()`.
/// Each calling thread keeps an 800 KB packing buffer.
void coderl_gemm_bf16(int transA, int transB, long M, long N, long K, float alpha,
                      const float *A, long lda, const float *B, long ldb,
                      float beta, float *C, long ldc);

/// Words (uint32, a bf16 pair each) that `coderl_bf16_pack_rows` writes for W[N, K].
size_t coderl_bf16_packed_words(long N, long K);

/// Packs W[N, K] (row-major; rows are output features) rounded to bfloat16 into panels of 32
/// rows, [panel][k pair][row], for `coderl_gemm_bf16_packed`. Rows r0... of W (r0 a multiple
/// of 32) are packed at `out + (r0 / 32) * coderl_bf16_packed_words(32, K)`, so callers may
/// pack row ranges separately. Call only when `coderl_bf16_supported()`.
void coderl_bf16_pack_rows(const float *W, long N, long K, uint32_t *out);

/// C[M, N] (+)= A[M, K] · W^T for W packed by `coderl_bf16_pack_rows` (W may point at any
/// panel, N counting rows from there); A rounded to bfloat16 as it is packed, fp32 sums. With
/// `accumulate` the product is added to C. Call only when `coderl_bf16_supported()`.
void coderl_gemm_bf16_packed(long M, long N, long K, const float *A, long lda, const uint32_t *W,
                             float *C, long ldc, int accumulate);
