#ifndef DENSEKIT_CSPNG_SHIM_H
#define DENSEKIT_CSPNG_SHIM_H

// libspng (Debian libspng-dev), used only by Images/PNGDecoder.swift. Chosen over libpng because its
// errors are return codes: libpng reports errors by longjmp, which Swift code cannot be unwound by.
#include <stddef.h>
#include <spng.h>

#endif
