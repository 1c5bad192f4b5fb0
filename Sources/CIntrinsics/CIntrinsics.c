// The target's code is the header's inline functions; SwiftPM needs one source file.
#include "CIntrinsics.h"
