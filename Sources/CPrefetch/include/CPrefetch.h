// Software prefetch for the decode kernels (Tensor/SkinnyGemm.swift): Swift has no prefetch
// intrinsic, and a static inline function here is inlined into the Swift caller.
static inline void coderl_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
