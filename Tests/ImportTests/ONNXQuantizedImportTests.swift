import CProtobufC
import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import ONNXProto
import TestSupport
import Testing

/// onnxruntime's static int8 quantisations of tv-tiny (QDQ per tensor u8, QDQ per channel s8, QOperator u8: made by
/// `quantize_static` at fixture time) read into the canonical graph with their quantisation; and lying copies of
/// them refused in one line naming the tensor.
@Suite struct ONNXQuantizedImportTests {
    @Test func qdqPerTensorCarriesEachTensorsQuantisation() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-qdq-u8.onnx"))
        #expect(net.isQuantized)
        // The stem conv: its input quantised by the QuantizeLinear on the image, int8 weights per tensor with the
        // scale the file stores (0.00368411), the folded BN's bias as int32, its output uint8 clamping at 0.
        let stem = net.stem.conv
        let input = try #require(stem.inputQuantization)
        #expect(input.storage == .uint8 && input.zeroPoints == [117] && abs(input.scales[0] - 0.03363039) < 1e-8)
        let weight = try #require(stem.weight.quantized)
        #expect(weight.quantization.storage == .int8 && weight.quantization.isPerTensor)
        #expect(abs(weight.quantization.scales[0] - 0.00368411) < 1e-8)
        #expect(weight.codes.count == 8 * 3 * 7 * 7)
        // The float values are the codes dequantised.
        #expect(stem.weight.values[5] == Float(weight.codes[5]) * weight.quantization.scales[0])
        #expect(stem.bias?.quantized?.quantization.storage == .int32)
        // inspect's dtypes: the codes' types (the BN means and variances stay float).
        #expect(net.storedDTypes == ["f32", "int32", "int8"])
        #expect(stem.outputQuantization?.clampsAtZero == true)
        // A dense layer: its input (the concatenation) and its BN-ReLU output quantised, the ReLU the quantiser
        // dropped restored; the head's linear layer reads the pooled features' quantisation.
        let layer = net.blocks[1].layers[1]
        #expect(layer.norm.inputQuantization != nil && layer.norm.outputQuantization?.clampsAtZero == true)
        #expect(layer.bottleneck?.conv.outputQuantization != nil && layer.conv.outputQuantization != nil)
        #expect(net.transitions[0].pool.outputQuantization == net.transitions[0].conv.outputQuantization)
        #expect(net.head.dense[0].linear.inputQuantization != nil)
        #expect(net.head.dense[0].linear.outputQuantization != nil)
        #expect(
            net.source.notes.contains(
                "int8, onnxruntime's QDQ format: activations uint8, weights int8 per tensor; 16 of 16 convs and "
                    + "linear layers on integers; runs with onnxruntime's arithmetic"))
    }

    @Test func qdqPerChannelCarriesOneScalePerOutputChannel() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-qdq-s8-perchannel.onnx"))
        let weight = try #require(net.stem.conv.weight.quantized?.quantization)
        #expect(weight.axis == 0 && weight.scales.count == 8 && abs(weight.scales[1] - 0.00368411) < 1e-8)
        #expect(net.stem.conv.inputQuantization?.storage == .int8)
        #expect(net.stem.conv.inputQuantization?.zeroPoints == [-11])
        #expect(net.stem.conv.outputQuantization?.zeroPoints == [-128])
        #expect(net.head.dense[0].linear.weight.quantized?.quantization.scales.count == 10)
    }

    /// The QOperator file (QLinearConv, QLinearConcat, QLinearAveragePool, QGemm, a max pool of codes, float
    /// BatchNorm-ReLU between a DequantizeLinear and a QuantizeLinear) reads to the same quantisation sites as the
    /// QDQ one quantised with the same data and parameters, with float BatchNorms.
    @Test func qoperatorReadsToTheSameSitesAsQDQ() throws {
        let qdq = try ModelLoader.load(path: Fixtures.path("tv-tiny-qdq-u8.onnx"))
        let qop = try ModelLoader.load(path: Fixtures.path("tv-tiny-qoperator-u8.onnx"))
        let pairs = zip(qdq.weightedOps, qop.weightedOps)
        for (a, b) in pairs {
            #expect(a.conv?.outputQuantization == b.conv?.outputQuantization, "\(a.layer)")
            #expect(a.conv?.weight.quantized == b.conv?.weight.quantized, "\(a.layer)")
            #expect(a.linear?.inputQuantization == b.linear?.inputQuantization, "\(a.layer)")
        }
        #expect(qdq.blocks[2].layers[0].norm.inputQuantization == qop.blocks[2].layers[0].norm.inputQuantization)
        // Its head BN-ReLU is float: the global pool averages floats, as onnxruntime's GlobalAveragePool does.
        #expect(qop.head.norm.outputQuantization == nil && qdq.head.norm.outputQuantization != nil)
        #expect(qop.source.notes.contains { $0.hasPrefix("int8, onnxruntime's QOperator format") })
    }

    // MARK: lying files

    /// `densekit inspect` on `fixture` with one thing changed: exit 2 and one line, returned without the
    /// "error: <file>: " it starts with.
    static func refusal(_ fixture: String, _ edit: (ONNXEditing.Model) throws -> Void) throws -> String {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try Fixtures.write(
            try ONNXEditing.mutated(Fixtures.path(fixture), edit), as: "lying.onnx", in: folder)
        let outcome = try densekit(["inspect", path])
        #expect(outcome.status == 2 && outcome.stderr.hasPrefix("error: \(path): "), "\(outcome.stderr)")
        #expect(outcome.stderr.filter { $0 == "\n" }.count == 1)
        return String(outcome.stderr.dropFirst("error: \(path): ".count))
    }

    /// onnxruntime's QOperator pads codes with their zero point (0); another code would be padding that is not 0.
    @Test func aPadOfCodesWithAValueOtherThanTheirZeroPointIsRefusedNamingIt() throws {
        let refusal = try Self.refusal("keras2-tiny-tf2onnx-qoperator-u8.onnx") { model in
            let node = ONNXEditing.node(model, try ONNXEditing.firstNode(model, "Pad"))
            ONNXEditing.setString(&node.pointee.input[2], "densenet/predictions/BiasAdd:0_zero_point")
        }
        #expect(
            refusal
                == "Pad node 'densenet/zero_padding2d_1/Pad': pads codes with 143, not their zero point 0 (which "
                + "stands for 0)\n")
    }

    /// QLinearAdd and QLinearMul of an activation by itself (a DenseNet adds and multiplies only stored constants:
    /// a classifier's bias, a Keras `Rescaling` on the input's codes): exit 2 naming the node.
    @Test(arguments: [
        ("keras2-tiny-tf2onnx-qoperator-u8.onnx", "QLinearAdd", "densenet/predictions/BiasAdd_quant"),
        ("keras2-tiny-rescaling-tf2onnx-qoperator-u8.onnx", "QLinearMul", "model/rescaling/mul_quant"),
    ])
    func aQLinearAddOrMulOfTwoActivationsIsRefusedNamingIt(_ site: (String, String, String)) throws {
        let refusal = try Self.refusal(site.0) { model in
            let node = ONNXEditing.node(model, try ONNXEditing.firstNode(model, site.1))
            let first = ONNXEditing.name(node.pointee.input[0])
            ONNXEditing.setString(&node.pointee.input[3], first)
        }
        #expect(
            refusal
                == "\(site.1) node '\(site.2)': \(site.1) of two activations (a DenseNet adds and multiplies only "
                + "constants)\n", "\(refusal)")
    }

    /// The constant of a quantised `Rescaling`'s QLinearMul with a scale of 0: exit 2 naming the scale and the node.
    @Test func aZeroScaleOfARescalingsConstantIsRefusedNamingIt() throws {
        let refusal = try Self.refusal("keras2-tiny-rescaling-tf2onnx-qoperator-u8.onnx") {
            try ONNXEditing.setFloats($0, "model/rescaling/Cast/x:0_scale", [0])
        }
        #expect(
            refusal
                == "QLinearMul node 'model/rescaling/mul_quant': scale 'model/rescaling/Cast/x:0_scale': expected "
                + "quantisation scales finite and above 0, found scale 0.0\n", "\(refusal)")
    }

    @Test(arguments: [Float(0), -0.03363039, .nan])
    func aScaleOfZeroBelowZeroOrNaNIsRefusedNamingIt(_ scale: Float) throws {
        let refusal = try Self.refusal("tv-tiny-qdq-u8.onnx") { try ONNXEditing.setFloats($0, "input_scale", [scale]) }
        #expect(
            refusal
                == "QuantizeLinear node 'input_QuantizeLinear': scale 'input_scale': expected quantisation scales "
                + "finite and above 0, found scale \(scale)\n")
    }

    @Test func aZeroPointOutsideItsTypesRangeIsRefusedNamingIt() throws {
        // uint8 stored in int32_data (as ONNX allows), with 300 in it.
        let refusal = try Self.refusal("tv-tiny-qdq-u8.onnx") { model in
            let zero = try ONNXEditing.initializer(model, named: "input_zero_point")
            free(zero.pointee.raw_data.data)
            zero.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil)
            zero.pointee.has_raw_data = 0
            let words = UnsafeMutablePointer<Int32>(OpaquePointer(malloc(4)!))
            words[0] = 300
            zero.pointee.int32_data = words
            zero.pointee.n_int32_data = 1
        }
        #expect(
            refusal
                == "QuantizeLinear node 'input_QuantizeLinear': zero point 'input_zero_point': expected zero points of "
                + "uint8 (0...255), found zero point 300\n")
    }

    @Test func perChannelScalesOfTheWrongLengthAreRefusedNamingThem() throws {
        let refusal = try Self.refusal("tv-tiny-qdq-s8-perchannel.onnx") { model in
            for (name, width) in [("onnx::Conv_161_scale", 4), ("onnx::Conv_161_zero_point", 1)] {
                let tensor = try ONNXEditing.initializer(model, named: name)
                ONNXEditing.setDims(tensor, [7])
                if tensor.pointee.has_raw_data != 0 { tensor.pointee.raw_data.len = 7 * width }
                if tensor.pointee.n_float_data > 0 { tensor.pointee.n_float_data = 7 }
                if tensor.pointee.n_int32_data > 0 { tensor.pointee.n_int32_data = 7 }
            }
        }
        #expect(
            refusal
                == "DequantizeLinear node 'onnx::Conv_161_DequantizeLinear': scale 'onnx::Conv_161_scale': expected "
                + "one scale per index of axis 0 (8), found 7\n")
    }

    @Test func aDequantizeLinearThatDisagreesWithItsQuantizeLinearIsRefused() throws {
        let refusal = try Self.refusal("tv-tiny-qdq-u8.onnx") { model in
            let graph = ONNXEditing.graph(model).pointee
            let index = try #require(
                (0..<graph.n_node).first {
                    ONNXEditing.name(ONNXEditing.node(model, $0).pointee.input[0]) == "input_QuantizeLinear_Output"
                })
            let dequantize = ONNXEditing.node(model, index)
            ONNXEditing.setString(&dequantize.pointee.input[1], "onnx::Conv_161_scale")
        }
        #expect(
            refusal
                == "DequantizeLinear node 'input_DequantizeLinear': expected the scale and zero point "
                + "'input_QuantizeLinear_Output' was quantised with (scale 0.033630393, zero point 117 of uint8), "
                + "found scale 0.0036841084, zero point 117 of uint8\n")
    }

    @Test func anInt8WeightWithAFloatBufferIsRefusedNamingIt() throws {
        let refusal = try Self.refusal("tv-tiny-qdq-u8.onnx") { model in
            try ONNXEditing.initializer(model, named: "onnx::Conv_161_quantized").pointee.data_type = 1
        }
        #expect(
            refusal
                == "tensor 'onnx::Conv_161_quantized': expected 4704 bytes for 1176 values, found 1176\n")
    }

    @Test func codesOutsideTheirTypeAreRefusedNamingTheTensor() throws {
        // An int8 weight stored in int32_data with 200 in it.
        let refusal = try Self.refusal("tv-tiny-qdq-u8.onnx") { model in
            let weight = try ONNXEditing.initializer(model, named: "onnx::Conv_161_quantized")
            let count = Int(weight.pointee.raw_data.len)
            free(weight.pointee.raw_data.data)
            weight.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil)
            weight.pointee.has_raw_data = 0
            let words = UnsafeMutablePointer<Int32>(OpaquePointer(malloc(4 * count)!))
            for i in 0..<count { words[i] = i == 3 ? 200 : 1 }
            weight.pointee.int32_data = words
            weight.pointee.n_int32_data = count
        }
        #expect(refusal == "tensor 'onnx::Conv_161_quantized': expected codes of int8, found 200\n")
    }
}
