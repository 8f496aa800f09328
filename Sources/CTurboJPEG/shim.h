#ifndef DENSEKIT_CTURBOJPEG_SHIM_H
#define DENSEKIT_CTURBOJPEG_SHIM_H

// libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev), used only by Images/JPEGDecoder.swift.
#include <stddef.h>
#include <turbojpeg.h>

#endif
