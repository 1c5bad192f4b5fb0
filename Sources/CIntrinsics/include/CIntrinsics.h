// Two instructions Swift cannot ask for directly, as static inline functions that are inlined
// into the Swift callers (Tensor/SkinnyGemm.swift, Llama/KVCache.swift).
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
