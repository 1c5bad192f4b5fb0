// The header's inline functions are the target's code, with GemmBF16.c.
#include "CIntrinsics.h"
