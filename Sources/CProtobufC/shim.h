#ifndef DENSEKIT_CPROTOBUFC_SHIM_H
#define DENSEKIT_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif
