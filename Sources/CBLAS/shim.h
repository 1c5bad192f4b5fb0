// OpenBLAS's own cblas.h (it declares openblas_set_num_threads and friends); Debian installs
// it under a multiarch folder, and the generic <cblas.h> may point at another BLAS.
#if __has_include(<x86_64-linux-gnu/openblas-pthread/cblas.h>)
#include <x86_64-linux-gnu/openblas-pthread/cblas.h>
#elif __has_include(<aarch64-linux-gnu/openblas-pthread/cblas.h>)
#include <aarch64-linux-gnu/openblas-pthread/cblas.h>
#else
#include <cblas.h>
#endif
