// The one file that calls FlatBuffers and the code flatc generated: verification first, then plain reads of
// verified tables into the C structs of tflite_shim.h; and FlatBuffers' builder, which serialises a model the
// writer describes in those structs.
#include "tflite_shim.h"

#include "generated/schema_generated.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace {

const tflite::Model *model(const uint8_t *data) { return tflite::GetModel(data); }

template <typename T>
DKTFLiteInts ints(const flatbuffers::Vector<T> *vector) {
    if (vector == nullptr) return DKTFLiteInts{nullptr, 0};
    return DKTFLiteInts{reinterpret_cast<const int32_t *>(vector->data()), vector->size()};
}

const tflite::SubGraph *subgraph(const uint8_t *data, uint32_t index) {
    auto subgraphs = model(data)->subgraphs();
    if (subgraphs == nullptr || index >= subgraphs->size()) return nullptr;
    return subgraphs->Get(index);
}

}  // namespace

extern "C" int dk_tflite_verify(const uint8_t *data, size_t size) {
    if (data == nullptr || size < 8 || size > FLATBUFFERS_MAX_BUFFER_SIZE) return 0;
    if (!tflite::ModelBufferHasIdentifier(data)) return 0;
    flatbuffers::Verifier verifier(data, size);
    return tflite::VerifyModelBuffer(verifier) ? 1 : 0;
}

extern "C" void dk_tflite_model(const uint8_t *data, DKTFLiteModel *out) {
    auto m = model(data);
    out->version = m->version();
    out->subgraphs = m->subgraphs() ? m->subgraphs()->size() : 0;
    out->operatorCodes = m->operator_codes() ? m->operator_codes()->size() : 0;
    out->buffers = m->buffers() ? m->buffers()->size() : 0;
    out->description = nullptr;
    out->descriptionLength = 0;
    if (auto description = m->description()) {
        out->description = description->c_str();
        out->descriptionLength = description->size();
    }
}

extern "C" void dk_tflite_operator_code(const uint8_t *data, uint32_t index, DKTFLiteOperatorCode *out) {
    *out = DKTFLiteOperatorCode{-1, 0, 0};
    auto codes = model(data)->operator_codes();
    if (codes == nullptr || index >= codes->size()) return;
    auto code = codes->Get(index);
    int32_t deprecated = code->deprecated_builtin_code();
    int32_t builtin = static_cast<int32_t>(code->builtin_code());
    out->builtin = deprecated > builtin ? deprecated : builtin;
    out->version = code->version();
    out->custom = out->builtin == tflite::BuiltinOperator_CUSTOM ? 1 : 0;
}

extern "C" void dk_tflite_subgraph(const uint8_t *data, uint32_t index, DKTFLiteSubgraph *out) {
    *out = DKTFLiteSubgraph{};
    auto graph = subgraph(data, index);
    if (graph == nullptr) return;
    out->tensors = graph->tensors() ? graph->tensors()->size() : 0;
    out->operators = graph->operators() ? graph->operators()->size() : 0;
    out->inputs = ints(graph->inputs());
    out->outputs = ints(graph->outputs());
    out->found = 1;
}

extern "C" void dk_tflite_tensor(const uint8_t *data, uint32_t graphIndex, uint32_t index, DKTFLiteTensor *out) {
    *out = DKTFLiteTensor{};
    auto graph = subgraph(data, graphIndex);
    if (graph == nullptr || graph->tensors() == nullptr || index >= graph->tensors()->size()) return;
    auto tensor = graph->tensors()->Get(index);
    out->shape = ints(tensor->shape());
    out->shapeSignature = ints(tensor->shape_signature());
    out->type = tensor->type();
    out->buffer = tensor->buffer();
    if (auto name = tensor->name()) {
        out->name = name->c_str();
        out->nameLength = name->size();
    }
    if (auto q = tensor->quantization()) {
        if (auto scale = q->scale()) {
            out->scale = scale->data();
            out->scaleCount = scale->size();
        }
        if (auto zero = q->zero_point()) {
            out->zeroPoint = zero->data();
            out->zeroPointCount = zero->size();
        }
        out->quantizedDimension = q->quantized_dimension();
    }
    out->sparse = tensor->sparsity() != nullptr ? 1 : 0;
    out->found = 1;
}

extern "C" void dk_tflite_operator(const uint8_t *data, uint32_t graphIndex, uint32_t index, DKTFLiteOperator *out) {
    *out = DKTFLiteOperator{};
    auto graph = subgraph(data, graphIndex);
    if (graph == nullptr || graph->operators() == nullptr || index >= graph->operators()->size()) return;
    auto op = graph->operators()->Get(index);
    out->opcodeIndex = op->opcode_index();
    out->inputs = ints(op->inputs());
    out->outputs = ints(op->outputs());
    out->optionsType = op->builtin_options_type();
    out->dilationW = out->dilationH = 1;
    if (auto conv = op->builtin_options_as_Conv2DOptions()) {
        out->padding = conv->padding();
        out->strideW = conv->stride_w();
        out->strideH = conv->stride_h();
        out->activation = conv->fused_activation_function();
        out->dilationW = conv->dilation_w_factor();
        out->dilationH = conv->dilation_h_factor();
    } else if (auto depthwise = op->builtin_options_as_DepthwiseConv2DOptions()) {
        out->padding = depthwise->padding();
        out->strideW = depthwise->stride_w();
        out->strideH = depthwise->stride_h();
        out->activation = depthwise->fused_activation_function();
        out->dilationW = depthwise->dilation_w_factor();
        out->dilationH = depthwise->dilation_h_factor();
        out->depthMultiplier = depthwise->depth_multiplier();
    } else if (auto pool = op->builtin_options_as_Pool2DOptions()) {
        out->padding = pool->padding();
        out->strideW = pool->stride_w();
        out->strideH = pool->stride_h();
        out->filterW = pool->filter_width();
        out->filterH = pool->filter_height();
        out->activation = pool->fused_activation_function();
    } else if (auto concat = op->builtin_options_as_ConcatenationOptions()) {
        out->axis = concat->axis();
        out->activation = concat->fused_activation_function();
    } else if (auto add = op->builtin_options_as_AddOptions()) {
        out->activation = add->fused_activation_function();
    } else if (auto mul = op->builtin_options_as_MulOptions()) {
        out->activation = mul->fused_activation_function();
    } else if (auto reducer = op->builtin_options_as_ReducerOptions()) {
        out->keepDims = reducer->keep_dims() ? 1 : 0;
    } else if (auto softmax = op->builtin_options_as_SoftmaxOptions()) {
        out->beta = softmax->beta();
    } else if (auto dense = op->builtin_options_as_FullyConnectedOptions()) {
        out->activation = dense->fused_activation_function();
        out->keepNumDims = dense->keep_num_dims() ? 1 : 0;
        out->weightsFormat = dense->weights_format();
    } else if (auto mirror = op->builtin_options_as_MirrorPadOptions()) {
        out->mirrorMode = mirror->mode();
    }
    out->found = 1;
}

extern "C" void dk_tflite_buffer(const uint8_t *data, uint32_t index, DKTFLiteBuffer *out) {
    *out = DKTFLiteBuffer{};
    auto buffers = model(data)->buffers();
    if (buffers == nullptr || index >= buffers->size()) return;
    auto buffer = buffers->Get(index);
    if (auto bytes = buffer->data()) {
        out->data = bytes->data();
        out->size = bytes->size();
    }
    out->offset = buffer->offset();
    out->externalSize = buffer->size();
    out->found = 1;
}

namespace {

tflite::SubGraph *mutableSubgraph(uint8_t *data, uint32_t index) {
    auto subgraphs = tflite::GetMutableModel(data)->mutable_subgraphs();
    if (subgraphs == nullptr || index >= subgraphs->size()) return nullptr;
    return subgraphs->GetMutableObject(index);
}

tflite::Tensor *mutableTensor(uint8_t *data, uint32_t graph, uint32_t index) {
    auto subgraph = mutableSubgraph(data, graph);
    if (subgraph == nullptr || subgraph->tensors() == nullptr || index >= subgraph->tensors()->size()) return nullptr;
    return subgraph->mutable_tensors()->GetMutableObject(index);
}

tflite::Operator *mutableOperator(uint8_t *data, uint32_t graph, uint32_t index) {
    auto subgraph = mutableSubgraph(data, graph);
    if (subgraph == nullptr || subgraph->operators() == nullptr || index >= subgraph->operators()->size()) {
        return nullptr;
    }
    return subgraph->mutable_operators()->GetMutableObject(index);
}

}  // namespace

extern "C" int dk_tflite_edit_tensor_buffer(uint8_t *data, uint32_t graph, uint32_t tensor, uint32_t buffer) {
    auto target = mutableTensor(data, graph, tensor);
    return target != nullptr && target->mutate_buffer(buffer) ? 1 : 0;
}

extern "C" int dk_tflite_edit_tensor_dim(uint8_t *data, uint32_t graph, uint32_t tensor, uint32_t axis,
                                         int32_t value) {
    auto target = mutableTensor(data, graph, tensor);
    if (target == nullptr || target->shape() == nullptr || axis >= target->shape()->size()) return 0;
    target->mutable_shape()->Mutate(axis, value);
    return 1;
}

extern "C" int dk_tflite_edit_operator_input(uint8_t *data, uint32_t graph, uint32_t op, uint32_t position,
                                             int32_t tensor) {
    auto target = mutableOperator(data, graph, op);
    if (target == nullptr || target->inputs() == nullptr || position >= target->inputs()->size()) return 0;
    target->mutable_inputs()->Mutate(position, tensor);
    return 1;
}

extern "C" int dk_tflite_edit_conv_stride(uint8_t *data, uint32_t graph, uint32_t op, int32_t strideW,
                                          int32_t strideH) {
    auto target = mutableOperator(data, graph, op);
    if (target == nullptr) return 0;
    auto options = static_cast<tflite::Conv2DOptions *>(target->mutable_builtin_options());
    if (target->builtin_options_type() != tflite::BuiltinOptions_Conv2DOptions || options == nullptr) return 0;
    return options->mutate_stride_w(strideW) && options->mutate_stride_h(strideH) ? 1 : 0;
}

namespace {

flatbuffers::Offset<flatbuffers::Vector<int32_t>> intVector(flatbuffers::FlatBufferBuilder &fbb, DKTFLiteInts ints) {
    return fbb.CreateVector(ints.values, ints.count);
}

tflite::ActivationFunctionType activation(int32_t value) {
    return static_cast<tflite::ActivationFunctionType>(value);
}

tflite::Padding padding(int32_t value) { return static_cast<tflite::Padding>(value); }

/// The options table of `builtin`, from the operator's fields.
std::pair<tflite::BuiltinOptions, flatbuffers::Offset<void>> options(flatbuffers::FlatBufferBuilder &fbb,
                                                                      int32_t builtin, const DKTFLiteOperator &op) {
    using namespace tflite;
    switch (builtin) {
    case BuiltinOperator_CONV_2D:
        return {BuiltinOptions_Conv2DOptions,
                CreateConv2DOptions(fbb, padding(op.padding), op.strideW, op.strideH, activation(op.activation),
                                    op.dilationW, op.dilationH).Union()};
    case BuiltinOperator_DEPTHWISE_CONV_2D:
        return {BuiltinOptions_DepthwiseConv2DOptions,
                CreateDepthwiseConv2DOptions(fbb, padding(op.padding), op.strideW, op.strideH, op.depthMultiplier,
                                             activation(op.activation), op.dilationW, op.dilationH).Union()};
    case BuiltinOperator_AVERAGE_POOL_2D:
    case BuiltinOperator_MAX_POOL_2D:
        return {BuiltinOptions_Pool2DOptions,
                CreatePool2DOptions(fbb, padding(op.padding), op.strideW, op.strideH, op.filterW, op.filterH,
                                    activation(op.activation)).Union()};
    case BuiltinOperator_CONCATENATION:
        return {BuiltinOptions_ConcatenationOptions,
                CreateConcatenationOptions(fbb, op.axis, activation(op.activation)).Union()};
    case BuiltinOperator_ADD:
        return {BuiltinOptions_AddOptions, CreateAddOptions(fbb, activation(op.activation)).Union()};
    case BuiltinOperator_MUL:
        return {BuiltinOptions_MulOptions, CreateMulOptions(fbb, activation(op.activation)).Union()};
    case BuiltinOperator_MEAN:
    case BuiltinOperator_REDUCE_MAX:
        return {BuiltinOptions_ReducerOptions, CreateReducerOptions(fbb, op.keepDims != 0).Union()};
    case BuiltinOperator_FULLY_CONNECTED:
        return {BuiltinOptions_FullyConnectedOptions,
                CreateFullyConnectedOptions(fbb, activation(op.activation),
                                            static_cast<FullyConnectedOptionsWeightsFormat>(op.weightsFormat),
                                            op.keepNumDims != 0).Union()};
    case BuiltinOperator_SOFTMAX:
        return {BuiltinOptions_SoftmaxOptions, CreateSoftmaxOptions(fbb, op.beta).Union()};
    case BuiltinOperator_PAD:
        return {BuiltinOptions_PadOptions, CreatePadOptions(fbb).Union()};
    case BuiltinOperator_MIRROR_PAD:
        return {BuiltinOptions_MirrorPadOptions,
                CreateMirrorPadOptions(fbb, static_cast<MirrorPadMode>(op.mirrorMode)).Union()};
    case BuiltinOperator_DEQUANTIZE:
        return {BuiltinOptions_DequantizeOptions, CreateDequantizeOptions(fbb).Union()};
    default:
        return {BuiltinOptions_NONE, 0};
    }
}

/// An upper bound of the serialised size, to refuse (rather than overflow) a model too large for a FlatBuffer.
bool fits(const DKTFLiteModelSpec &spec) {
    uint64_t total = 1 << 20;
    for (uint32_t i = 0; i < spec.bufferCount; i++) total += spec.buffers[i].size + 64;
    for (uint32_t i = 0; i < spec.tensorCount; i++) {
        const auto &t = spec.tensors[i];
        total += 128 + t.nameLength + 4 * (uint64_t(t.shape.count) + t.shapeSignature.count);
    }
    for (uint32_t i = 0; i < spec.operatorCount; i++) {
        total += 128 + 4 * (uint64_t(spec.operators[i].inputs.count) + spec.operators[i].outputs.count);
    }
    return total < FLATBUFFERS_MAX_BUFFER_SIZE;
}

uint8_t *build(const DKTFLiteModelSpec &spec, size_t *size) {
    using namespace tflite;
    if (!fits(spec)) return nullptr;
    for (uint32_t i = 0; i < spec.operatorCount; i++) {
        if (spec.operators[i].opcodeIndex >= spec.operatorCodeCount) return nullptr;
    }
    flatbuffers::FlatBufferBuilder fbb(1 << 16);
    std::vector<flatbuffers::Offset<Buffer>> buffers;
    for (uint32_t i = 0; i < spec.bufferCount; i++) {
        const auto &buffer = spec.buffers[i];
        flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data = 0;
        if (buffer.size > 0) {
            fbb.ForceVectorAlignment(buffer.size, sizeof(uint8_t), 16);
            data = fbb.CreateVector(buffer.data, buffer.size);
        }
        buffers.push_back(CreateBuffer(fbb, data));
    }
    std::vector<flatbuffers::Offset<Tensor>> tensors;
    for (uint32_t i = 0; i < spec.tensorCount; i++) {
        const auto &t = spec.tensors[i];
        auto shape = intVector(fbb, t.shape);
        auto signature = t.shapeSignature.count > 0 ? intVector(fbb, t.shapeSignature) : 0;
        auto name = fbb.CreateString(t.name != nullptr ? t.name : "", t.nameLength);
        tensors.push_back(CreateTensor(fbb, shape, static_cast<TensorType>(t.type), t.buffer, name, 0, false, 0,
                                       signature));
    }
    std::vector<flatbuffers::Offset<Operator>> operators;
    for (uint32_t i = 0; i < spec.operatorCount; i++) {
        const auto &op = spec.operators[i];
        auto inputs = intVector(fbb, op.inputs);
        auto outputs = intVector(fbb, op.outputs);
        auto table = options(fbb, spec.operatorCodes[op.opcodeIndex].builtin, op);
        operators.push_back(CreateOperator(fbb, op.opcodeIndex, inputs, outputs, table.first, table.second));
    }
    std::vector<flatbuffers::Offset<OperatorCode>> codes;
    for (uint32_t i = 0; i < spec.operatorCodeCount; i++) {
        auto builtin = spec.operatorCodes[i].builtin;
        auto deprecated = static_cast<int8_t>(builtin < BuiltinOperator_PLACEHOLDER_FOR_GREATER_OP_CODES
                                                  ? builtin : BuiltinOperator_PLACEHOLDER_FOR_GREATER_OP_CODES);
        codes.push_back(CreateOperatorCode(fbb, deprecated, 0, spec.operatorCodes[i].version,
                                           static_cast<BuiltinOperator>(builtin)));
    }
    auto graph = CreateSubGraph(fbb, fbb.CreateVector(tensors), intVector(fbb, spec.inputs),
                                intVector(fbb, spec.outputs), fbb.CreateVector(operators), fbb.CreateString("main"));
    std::vector<flatbuffers::Offset<SubGraph>> graphs{graph};
    auto description = spec.description != nullptr ? fbb.CreateString(spec.description) : 0;
    auto model = CreateModel(fbb, spec.version, fbb.CreateVector(codes), fbb.CreateVector(graphs), description,
                             fbb.CreateVector(buffers));
    FinishModelBuffer(fbb, model);
    auto bytes = static_cast<uint8_t *>(std::malloc(fbb.GetSize()));
    if (bytes == nullptr) return nullptr;
    std::memcpy(bytes, fbb.GetBufferPointer(), fbb.GetSize());
    *size = fbb.GetSize();
    return bytes;
}

}  // namespace

extern "C" uint8_t *dk_tflite_build(const DKTFLiteModelSpec *spec, size_t *size) {
    *size = 0;
    try {
        return build(*spec, size);
    } catch (const std::bad_alloc &) {
        return nullptr;
    }
}

extern "C" int dk_tflite_edit_tensor_scale(uint8_t *data, uint32_t graph, uint32_t tensor, uint32_t index,
                                           float value) {
    auto target = mutableTensor(data, graph, tensor);
    auto q = target == nullptr ? nullptr : target->mutable_quantization();
    auto scale = q == nullptr ? nullptr : q->mutable_scale();
    if (scale == nullptr || index >= scale->size()) return 0;
    scale->Mutate(index, value);
    return 1;
}

extern "C" int dk_tflite_edit_tensor_zero_point(uint8_t *data, uint32_t graph, uint32_t tensor, uint32_t index,
                                                int64_t value) {
    auto target = mutableTensor(data, graph, tensor);
    auto q = target == nullptr ? nullptr : target->mutable_quantization();
    auto zero = q == nullptr ? nullptr : q->mutable_zero_point();
    if (zero == nullptr || index >= zero->size()) return 0;
    zero->Mutate(index, value);
    return 1;
}

extern "C" int dk_tflite_edit_tensor_scale_count(uint8_t *data, uint32_t graph, uint32_t tensor, uint32_t count) {
    auto target = mutableTensor(data, graph, tensor);
    auto q = target == nullptr ? nullptr : target->mutable_quantization();
    auto scale = q == nullptr ? nullptr : q->mutable_scale();
    if (scale == nullptr || count >= scale->size()) return 0;
    // A vector's length is the uint32 before its first element: a shorter one stays inside the buffer.
    flatbuffers::WriteScalar(reinterpret_cast<uint8_t *>(scale), static_cast<flatbuffers::uoffset_t>(count));
    return 1;
}
