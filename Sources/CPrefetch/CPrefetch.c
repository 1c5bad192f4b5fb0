// The target's code is the header's inline function; SwiftPM needs one source file.
#include "CPrefetch.h"
