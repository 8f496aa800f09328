// DenseKit's C interface to TensorFlow Lite's schema: the FlatBuffers verifier and the accessors that flatc 2.0.8
// generated from schemas/tflite/schema.fbs (generated/schema_generated.h), behind plain C structs, so that Swift
// reads a .tflite only through verified tables. Every pointer returned points into the caller's buffer, which must
// outlive it; nothing is allocated.
#ifndef DENSEKIT_TFLITE_SHIM_H
#define DENSEKIT_TFLITE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when `data` is a TensorFlow Lite model that FlatBuffers' verifier accepts (every offset and vector inside
/// the buffer, nesting and table counts within the verifier's limits), 0 otherwise.
int dk_tflite_verify(const uint8_t *data, size_t size);

/// The model's counts (of a verified buffer).
typedef struct {
    uint32_t version;
    uint32_t subgraphs;
    uint32_t operatorCodes;
    uint32_t buffers;
    /// The model's description (absent: NULL).
    const char *description;
    uint32_t descriptionLength;
} DKTFLiteModel;
void dk_tflite_model(const uint8_t *data, DKTFLiteModel *out);

/// An operator code: the builtin operator (the larger of `deprecated_builtin_code` and `builtin_code`, as
/// TensorFlow Lite reads it), -1 when the index is out of range; `custom` is 1 for a custom operator.
typedef struct {
    int32_t builtin;
    int32_t version;
    int32_t custom;
} DKTFLiteOperatorCode;
void dk_tflite_operator_code(const uint8_t *data, uint32_t index, DKTFLiteOperatorCode *out);

typedef struct {
    const int32_t *values;
    uint32_t count;
} DKTFLiteInts;

/// Subgraph `index`: its tensor and operator counts, inputs and outputs (tensor indices).
typedef struct {
    uint32_t tensors;
    uint32_t operators;
    DKTFLiteInts inputs;
    DKTFLiteInts outputs;
    int found;
} DKTFLiteSubgraph;
void dk_tflite_subgraph(const uint8_t *data, uint32_t index, DKTFLiteSubgraph *out);

/// A tensor of a subgraph; `found` 0 when either index is out of range.
typedef struct {
    DKTFLiteInts shape;
    /// The shape with -1 for each dimension that may change (absent: count 0).
    DKTFLiteInts shapeSignature;
    int32_t type;
    uint32_t buffer;
    const char *name;
    uint32_t nameLength;
    /// Quantisation (absent: counts 0).
    const float *scale;
    uint32_t scaleCount;
    const int64_t *zeroPoint;
    uint32_t zeroPointCount;
    int32_t quantizedDimension;
    int sparse;
    int found;
} DKTFLiteTensor;
void dk_tflite_tensor(const uint8_t *data, uint32_t subgraph, uint32_t index, DKTFLiteTensor *out);

/// An operator of a subgraph with the options a DenseNet's operators use (zero where the options do not say).
typedef struct {
    uint32_t opcodeIndex;
    DKTFLiteInts inputs;
    DKTFLiteInts outputs;
    /// The BuiltinOptions union's type (tflite::BuiltinOptions), 0 for none.
    int32_t optionsType;
    int32_t padding;     // 0 SAME, 1 VALID
    int32_t strideW, strideH;
    int32_t filterW, filterH;
    int32_t dilationW, dilationH;
    int32_t activation;  // tflite::ActivationFunctionType
    int32_t axis;        // CONCATENATION
    int32_t keepDims;    // MEAN
    float beta;          // SOFTMAX
    int32_t keepNumDims; // FULLY_CONNECTED
    int32_t weightsFormat;
    int32_t depthMultiplier;
    int32_t mirrorMode;  // MIRROR_PAD: 0 REFLECT, 1 SYMMETRIC
    int found;
} DKTFLiteOperator;
void dk_tflite_operator(const uint8_t *data, uint32_t subgraph, uint32_t index, DKTFLiteOperator *out);

/// Buffer `index`: its bytes inside the flatbuffer (`data`, `size`), or where a model over 2 GB keeps them
/// outside it (`offset`, `externalSize`); `found` 0 when out of range.
typedef struct {
    const uint8_t *data;
    size_t size;
    uint64_t offset;
    uint64_t externalSize;
    int found;
} DKTFLiteBuffer;
void dk_tflite_buffer(const uint8_t *data, uint32_t index, DKTFLiteBuffer *out);

/// A model to serialise with FlatBuffers' builder (one subgraph). The structs are those the reader fills:
/// an operator's `opcodeIndex` indexes `operatorCodes`, its options are written as its builtin operator's
/// options table (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D, CONCATENATION, ADD, MUL, MEAN,
/// REDUCE_MAX, FULLY_CONNECTED, SOFTMAX, PAD, MIRROR_PAD, DEQUANTIZE; none for the others); a tensor's quantisation and
/// sparsity are not written. Buffer 0 must be empty (TensorFlow Lite's sentinel); each buffer's bytes are
/// aligned to 16 in the file.
typedef struct {
    uint32_t version;
    const DKTFLiteOperatorCode *operatorCodes;
    uint32_t operatorCodeCount;
    const DKTFLiteTensor *tensors;
    uint32_t tensorCount;
    const DKTFLiteOperator *operators;
    uint32_t operatorCount;
    DKTFLiteInts inputs;
    DKTFLiteInts outputs;
    const DKTFLiteBuffer *buffers;
    uint32_t bufferCount;
    /// The model's description (NUL-terminated; may be NULL).
    const char *description;
} DKTFLiteModelSpec;

/// The serialised model (identifier "TFL3"), `*size` bytes allocated with malloc (the caller frees them); NULL
/// when the bytes would not fit in a FlatBuffer (2 GB) or memory runs out.
uint8_t *dk_tflite_build(const DKTFLiteModelSpec *spec, size_t *size);

#ifdef __cplusplus
}
#endif

#endif

#ifdef __cplusplus
extern "C" {
#endif

// In-place edits of a verified model's scalar fields, for the tests' lying files (generated from valid ones):
// each returns 1 when the field is stored in the buffer and was changed, 0 otherwise.
int dk_tflite_edit_tensor_buffer(uint8_t *data, uint32_t subgraph, uint32_t tensor, uint32_t buffer);
int dk_tflite_edit_tensor_dim(uint8_t *data, uint32_t subgraph, uint32_t tensor, uint32_t axis, int32_t value);
int dk_tflite_edit_operator_input(uint8_t *data, uint32_t subgraph, uint32_t op, uint32_t position, int32_t tensor);
int dk_tflite_edit_conv_stride(uint8_t *data, uint32_t subgraph, uint32_t op, int32_t strideW, int32_t strideH);
/// Scale `index` or zero point `index` of a tensor's quantisation; the count of its scales (only shortened).
int dk_tflite_edit_tensor_scale(uint8_t *data, uint32_t subgraph, uint32_t tensor, uint32_t index, float value);
int dk_tflite_edit_tensor_zero_point(uint8_t *data, uint32_t subgraph, uint32_t tensor, uint32_t index,
                                     int64_t value);
int dk_tflite_edit_tensor_scale_count(uint8_t *data, uint32_t subgraph, uint32_t tensor, uint32_t count);

#ifdef __cplusplus
}
#endif
