#ifndef DENSEKIT_CHDF5_SHIM_H
#define DENSEKIT_CHDF5_SHIM_H

#include <hdf5.h>

// HDF5 spells its predefined types and default property lists as macros that expand to
// global variables behind H5open(); Swift cannot import those, so they are wrapped here.

static inline hid_t dk_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t dk_h5s_all(void) { return H5S_ALL; }
static inline hid_t dk_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t dk_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t dk_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned dk_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hid_t dk_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline size_t dk_h5t_variable(void) { return H5T_VARIABLE; }
// For writing (the Keras writers).
static inline hid_t dk_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t dk_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t dk_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t dk_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline unsigned dk_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
// Used only by the tests, which make broken copies of fixtures.
static inline unsigned dk_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline hid_t dk_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }

#endif
