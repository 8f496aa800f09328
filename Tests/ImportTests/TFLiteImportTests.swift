import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// TensorFlow Lite files from tf.lite.TFLiteConverter (TensorFlow 2.21) of the tiny tf_keras DenseNet: read as the
/// same canonical graph as the Keras file they came from (outputs against TFLite's interpreter are in
/// `FixtureAccuracyTests`), and the corrupt and lying files made from them, each exit 2 in one line naming the
/// tensor or operator.
@Suite struct TFLiteImportTests {
    @Test(arguments: ["keras2-tiny.tflite", "keras2-tiny-f16.tflite"])
    func aConvertedKerasDenseNetIsTheKerasGraph(_ fixture: String) throws {
        let keras = try ModelLoader.load(path: Fixtures.path("keras2-tiny.h5"))
        let lite = try ModelLoader.load(path: Fixtures.path(fixture))
        #expect(lite.layerNames == keras.layerNames)
        #expect(lite.source.format == .tflite && lite.input.layout == .nhwc)
        #expect(lite.input.height == 64 && lite.input.width == 64 && lite.input.channels == 3)
        #expect(lite.head.summary == keras.head.summary)
        #expect(lite.stem.normFolded && lite.stem.pool == keras.stem.pool)
        #expect(lite.blocks.map(\.layers.count) == [2, 2, 2])
        // The stem filter, OHWI in the file, is Keras's kernel with the stem BN folded into it: compare the
        // unfolded Keras weights through their BN.
        let folded = try #require(keras.foldingBatchNorms().net.stem.conv.weight.values)
        #expect(relativeError(lite.stem.conv.weight.values, folded) <= (fixture.contains("f16") ? 1e-3 : 1e-6))
        if fixture.contains("f16") {
            #expect(lite.stem.conv.weight.storedDType == .f16)
            #expect(lite.source.notes.contains { $0.contains("float16 weights behind DEQUANTIZE") })
        }
    }

    /// tf.lite's conversions of the other tf_keras layouts: a Rescaling or an adapted Normalization before a
    /// nested backbone (MUL and ADD, or SUB and MUL, on the input: the model's input transform), a backbone nested
    /// in a Sequential with a sigmoid head, a max pool (REDUCE_MAX) and no pool: each is its Keras file's graph,
    /// the same input transform, and runs to the interpreter's output (`FixtureAccuracyTests` and
    /// `InputTransformTests` too).
    @Test(arguments: [
        "keras2-tiny-rescaling", "keras2-tiny-normalization-adapted", "keras2-tiny-nested-sigmoid14", "keras2-tiny-max",
        "keras2-tiny-none",
    ])
    func everyKerasLayoutConvertedIsItsKerasGraph(_ stem: String) throws {
        let keras = try ModelLoader.load(path: Fixtures.path(stem + ".h5"))
        let lite = try ModelLoader.load(path: Fixtures.path(stem + ".tflite"))
        #expect(lite.layerNames == keras.layerNames)
        #expect(lite.head.summary == keras.head.summary)
        #expect((lite.inputTransform == nil) == (keras.inputTransform == nil))
        if let transform = lite.inputTransform, let wanted = keras.inputTransform {
            #expect(
                relativeError(transform.scale, wanted.scale) <= 1e-6
                    && relativeError(transform.offset, wanted.offset) <= 1e-6)
        }
        let pixels = stem.contains("rescaling") || stem.contains("normalization")
        let input = try Fixtures.npy(Fixtures.path(pixels ? "input-64-pixels-nhwc.npy" : "input-64-nhwc.npy"))
        let modelInput = try ModelInput(input, layout: nil, for: lite)
        let outputs = try Executor(lite).run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
        let interpreter = try Fixtures.npy(Fixtures.path(stem + "-tflite.out.npy"))
        var wanted = interpreter.values
        if lite.head.pool == nil {  // the interpreter's feature map is NHWC, the executor's NCHW
            let (n, h, w, c) = (interpreter.shape[0], interpreter.shape[1], interpreter.shape[2], interpreter.shape[3])
            for i in 0..<n * h * w * c {
                let (b, y, x, k) = (i / (h * w * c), i / (w * c) % h, i / c % w, i % c)
                wanted[((b * c + k) * h + y) * w + x] = interpreter.values[i]
            }
        }
        #expect(relativeError(outputs, wanted) <= 1e-5, "\(stem): \(relativeError(outputs, wanted))")
    }

    /// onnx2tf's conversions of the torchvision export (the PyTorch user's path to TFLite: a PADV2 of float32's or
    /// float16's lowest value before the max pool, MEAN keeping its axes, a TRANSPOSE of unit axes and a RESHAPE
    /// before the classifier): the ONNX file's graph, running to TFLite's interpreter's output, and the float32
    /// one to onnxruntime's output on the ONNX file.
    @Test(arguments: ["tv-tiny-onnx2tf.tflite", "tv-tiny-onnx2tf-f16.tflite"])
    func onnx2tfsConversionOfATorchvisionExportIsItsGraph(_ fixture: String) throws {
        let onnx = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        let lite = try ModelLoader.load(path: Fixtures.path(fixture))
        #expect(lite.layerNames == onnx.layerNames && lite.head.summary == onnx.head.summary)
        #expect(lite.stem.pool == onnx.stem.pool && lite.input.layout == .nhwc)
        let input = try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: .nchw, for: lite)
        let outputs = try Executor(lite).run(
            input.values, batch: input.batch, height: input.height, width: input.width)
        let interpreter = try Fixtures.npy(Fixtures.path(fixture.replacingOccurrences(of: ".tflite", with: ".out.npy")))
        #expect(relativeError(outputs, interpreter.values) <= 1e-5, "\(relativeError(outputs, interpreter.values))")
        if !fixture.contains("f16") {
            let torch = try Fixtures.npy(Fixtures.path("tv-tiny-legacy-opset17.out.npy"))
            #expect(relativeError(outputs, torch.values) <= 1e-5)
        }
    }

    /// A PADV2 whose value is neither zero nor (before a max pool) the lowest float: exit 2 naming it.
    @Test func aPadV2OfAnotherValueIsRefusedNamingIt() throws {
        var file = try TFLiteFile(try Fixtures.data("tv-tiny-onnx2tf.tflite"))
        let pad = try #require(file.operators.first { $0.builtin == 60 })
        let value = file.tensors[pad.inputs[2]].buffer
        file.buffers[value] = withUnsafeBytes(of: Float(1).bitPattern.littleEndian) { Data($0) }
        let refusal = try Self.refusal(try file.serialized())
        #expect(
            refusal.hasPrefix("PADV2 \(pad.index) (")
                && refusal.hasSuffix(
                    "pads with 1.0 (zero, or -65504 or less before a max pool, is read)"),
            "\(refusal)")
    }

    /// `densekit diff model.h5 model.tflite` compares every canonical layer.
    @Test func diffComparesEveryLayerOfKerasAndTFLite() throws {
        let outcome = try densekit([
            "diff", Fixtures.path("keras2-tiny.h5"), Fixtures.path("keras2-tiny.tflite"), "--input",
            Fixtures.path("input-64-nhwc.npy"), "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let layers = try #require(try outcome.json()["layers"] as? [[String: Any]])
        let keras = try ModelLoader.load(path: Fixtures.path("keras2-tiny.h5"))
        #expect(layers.compactMap { $0["name"] as? String } == keras.layerNames)
        #expect(layers.allSatisfy { (($0["cosine"] as? Double) ?? 0) > 0.99999 })
    }

    // MARK: corrupt and lying files

    /// `densekit inspect` on `bytes`: exit 2 and one line, returned without its "error: <file>: ".
    static func refusal(_ bytes: Data) throws -> String {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try Fixtures.write(bytes, as: "lying.tflite", in: folder)
        let outcome = try densekit(["inspect", path])
        #expect(outcome.status == 2 && outcome.stderr.hasPrefix("error: \(path): "), "\(outcome.stderr)")
        #expect(outcome.stderr.split(separator: "\n").count == 1)
        return String(outcome.stderr.dropFirst("error: \(path): ".count).dropLast())
    }

    static let verifierRefusal =
        "FlatBuffer: the FlatBuffers verifier refuses it (an offset or a vector outside the file, or truncated)"

    @Test func aTruncatedFileIsRefusedByTheVerifier() throws {
        let whole = try Fixtures.data("keras2-tiny.tflite")
        for length in [12, whole.count / 2, whole.count - 1] {
            #expect(try Self.refusal(whole.prefix(length)) == Self.verifierRefusal, "\(length) bytes")
        }
    }

    @Test func aRootOrVtableOffsetOutsideTheBufferIsRefusedByTheVerifier() throws {
        var data = try Fixtures.data("keras2-tiny.tflite")
        data.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(0x7FFF_FFF0).littleEndian, as: UInt32.self) }
        #expect(try Self.refusal(data) == Self.verifierRefusal)
        // The root table's vtable offset (an int32 at the root) pointing before the file.
        var vtable = try Fixtures.data("keras2-tiny.tflite")
        vtable.withUnsafeMutableBytes { raw in
            let root = Int(UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)))
            raw.storeBytes(of: Int32(0x4000_0000).littleEndian, toByteOffset: root, as: Int32.self)
        }
        #expect(try Self.refusal(vtable) == Self.verifierRefusal)
    }

    @Test func aBufferIndexPastTheBuffersIsRefusedNamingTheTensor() throws {
        var name = ""
        let bytes = try TFLiteEditing.edited(Fixtures.path("keras2-tiny.tflite")) { data in
            let filter = TFLiteEditing.inputs(data, operator: 1)[1]  // the stem CONV_2D's filter
            name = TFLiteEditing.name(data, tensor: filter)
            return TFLiteEditing.setBuffer(data, tensor: filter, to: 9999)
        }
        #expect(try Self.refusal(bytes).hasPrefix("tensor '\(name)': expected a buffer index below "))
        #expect(try Self.refusal(bytes).hasSuffix(", found 9999"))
    }

    @Test func aShapeThatContradictsItsBufferIsRefusedNamingTheTensor() throws {
        var name = ""
        let bytes = try TFLiteEditing.edited(Fixtures.path("keras2-tiny.tflite")) { data in
            let filter = TFLiteEditing.inputs(data, operator: 1)[1]
            name = TFLiteEditing.name(data, tensor: filter)
            return TFLiteEditing.setDim(data, tensor: filter, axis: 0, to: 9)
        }
        let refusal = try Self.refusal(bytes)
        #expect(refusal.hasPrefix("tensor '\(name)': expected 5292 bytes for shape [9, 7, 7, 3], found 4704 in buffer"))
    }

    @Test func anOperatorInputIndexOutOfRangeIsRefusedNamingTheOperator() throws {
        let bytes = try TFLiteEditing.edited(Fixtures.path("keras2-tiny.tflite")) { data in
            TFLiteEditing.setInput(data, operator: 1, position: 0, to: 5000)
        }
        let refusal = try Self.refusal(bytes)
        #expect(refusal.contains("CONV_2D 1 (") && refusal.hasSuffix("expected tensor indices below 95, found 5000"))
    }

    @Test func operatorsThatFormACycleAreRefused() throws {
        let bytes = try TFLiteEditing.edited(Fixtures.path("keras2-tiny.tflite")) { data in
            // The stem conv reads the output of a later operator (the first dense layer's bottleneck conv).
            let later = TFLiteEditing.outputs(data, operator: 6)[0]
            return TFLiteEditing.setInput(data, operator: 1, position: 0, to: later)
        }
        let refusal = try Self.refusal(bytes)
        #expect(refusal.contains("cycle"), "\(refusal)")
    }

    /// timm's blur pool as DenseKit writes it (MIRROR_PAD, DEPTHWISE_CONV_2D), then one field changed through
    /// `TFLiteFile` and serialised again.
    static func writtenBlur(_ edit: (inout TFLiteFile) throws -> Void) throws -> Data {
        let net = try ModelLoader.load(path: Fixtures.path("timm-tiny-blur-module.pth"))
        let writer = TFLiteModelWriter()
        let prepared = try writer.prepare(net, dtype: .f32).net
        let provenance = Provenance(sourceFile: "", sourceSHA256: "", sourceFormat: "", producer: "")
        var file = try TFLiteFile(try writer.encode(prepared, dtype: .f32, provenance: provenance))
        try edit(&file)
        return try file.serialized()
    }

    static func blurOperator(_ file: TFLiteFile, _ builtin: Int) throws -> Int {
        try #require(file.operators.firstIndex { $0.builtin == builtin })
    }

    @Test func aBlurPoolThatIsNotOneIsRefusedNamingTheOperator() throws {
        // Unchanged, it reads back with its blur pool.
        let path = try Fixtures.write(try Self.writtenBlur { _ in }, as: "blur.tflite", in: Fixtures.temporaryFolder())
        #expect(try ModelLoader.load(path: path).stem.blur == BlurPool2D(kernel: 3, stride: 2))
        let symmetric = try Self.refusal(
            try Self.writtenBlur { $0.operators[try Self.blurOperator($0, 100)].options.mirrorMode = 1 })
        #expect(
            symmetric == "MIRROR_PAD 5 ('stem.blur.pad'): SYMMETRIC mirror padding (a blur pool reflects)",
            "\(symmetric)")
        let multiplier = try Self.refusal(
            try Self.writtenBlur { $0.operators[try Self.blurOperator($0, 4)].options.depthMultiplier = 2 })
        #expect(
            multiplier
                == "DEPTHWISE_CONV_2D 6 ('stem.blur'): filter 'stem.blur.weight': expected [1, k, k, C] with depth "
                + "multiplier 1 and no dilation, found shape [1, 3, 3, 8], depth multiplier 2", "\(multiplier)")
        // A filter that is not the binomial one: the depthwise conv is not a blur pool.
        let filter = try Self.refusal(
            try Self.writtenBlur { file in
                let op = file.operators[try Self.blurOperator(file, 4)]
                let buffer = file.tensors[op.inputs[1]].buffer
                file.buffers[buffer].withUnsafeMutableBytes { $0.storeBytes(of: Float(0.5), as: Float.self) }
            })
        #expect(
            filter
                == "DEPTHWISE_CONV_2D 6 ('stem.blur'): weight 'stem.blur.weight': expected the binomial blur filter "
                + "(0.25, 0.5, 0.25 squared) in every channel, no bias, found other values", "\(filter)")
    }

    @Test func aConvWithStrideZeroIsRefusedNamingTheOperator() throws {
        let bytes = try TFLiteEditing.edited(Fixtures.path("keras2-tiny.tflite")) { data in
            TFLiteEditing.setConvStride(data, operator: 1, to: 0)
        }
        let refusal = try Self.refusal(bytes)
        #expect(
            refusal.contains("CONV_2D 1 (")
                && refusal.hasSuffix("expected stride_w equal to stride_h, from 1 to 63, found 0 and 0"),
            "\(refusal)")
    }

    // MARK: lying int8 files

    /// tf.lite's full-integer fixture with one field of one tensor's quantisation changed; `pick` chooses the
    /// tensor (from the operators' inputs and outputs) and `edit` changes it. Returns the refusal and the tensor's
    /// name.
    static func int8Refusal(
        _ fixture: String = "keras2-tiny-int8.tflite", tensor pick: (UnsafePointer<UInt8>) -> Int32,
        _ edit: (UnsafeMutablePointer<UInt8>, Int32) -> Bool
    ) throws -> (refusal: String, name: String) {
        var name = ""
        let bytes = try TFLiteEditing.edited(Fixtures.path(fixture)) { data in
            let tensor = pick(data)
            name = TFLiteEditing.name(data, tensor: tensor)
            return edit(data, tensor)
        }
        return (try Self.refusal(bytes), name)
    }

    static func stemOutput(_ data: UnsafePointer<UInt8>) -> Int32 { TFLiteEditing.outputs(data, operator: 1)[0] }
    static func stemFilter(_ data: UnsafePointer<UInt8>) -> Int32 { TFLiteEditing.inputs(data, operator: 1)[1] }

    /// A scale of 0, below 0 or NaN, on an activation, the image or a per-channel weight: exit 2 naming the tensor.
    @Test(arguments: [("output", Float(0), "0.0"), ("image", -0.5, "-0.5"), ("filter", .nan, "nan")])
    func aScaleThatIsNotPositiveIsRefusedNamingTheTensor(_ site: (String, Float, String)) throws {
        let (refusal, name) = try Self.int8Refusal(
            tensor: { data in
                switch site.0 {
                case "output": Self.stemOutput(data)
                case "image": TFLiteEditing.inputs(data, operator: 0)[0]
                default: Self.stemFilter(data)
                }
            }, { TFLiteEditing.setScale($0, tensor: $1, index: site.0 == "filter" ? 3 : 0, to: site.1) })
        #expect(
            refusal == "tensor '\(name)': expected quantisation scales finite and above 0, found scale \(site.2)",
            "\(refusal)")
    }

    @Test func aZeroPointOutsideItsTypeIsRefusedNamingTheTensor() throws {
        let (refusal, name) = try Self.int8Refusal(tensor: Self.stemOutput) {
            TFLiteEditing.setZeroPoint($0, tensor: $1, to: 200)
        }
        #expect(refusal == "tensor '\(name)': expected zero points of int8 (-128...127), found zero point 200")
    }

    /// A uint8 input whose QUANTIZE to int8 does not keep its real values (zero points not 128 apart): TensorFlow
    /// Lite would requantise there, which DenseKit does not run; exit 2 naming the operator.
    @Test func aUint8InputRequantisedToOtherValuesIsRefusedNamingTheOperator() throws {
        let (refusal, _) = try Self.int8Refusal(
            "keras2-tiny-uint8.tflite", tensor: { TFLiteEditing.inputs($0, operator: 0)[0] },
            { TFLiteEditing.setZeroPoint($0, tensor: $1, to: 7) })
        #expect(refusal == "QUANTIZE 0 ('tfl.quantize'): requantises codes to other parameters", "\(refusal)")
    }

    /// A Rescaling on the input's int8 codes (MUL, then ADD, then the stem's PAD) that lies: a NaN scale on the
    /// MUL's constant, or the ADD's result quantised unlike what the PAD (which moves codes) gives the stem. Exit 2
    /// naming the tensor.
    @Test func aLyingRescalingOnTheInputsCodesIsRefusedNamingTheTensor() throws {
        let fixture = "keras2-tiny-rescaling-int8.tflite"
        let (constant, constantName) = try Self.int8Refusal(
            fixture, tensor: { TFLiteEditing.inputs($0, operator: 0)[1] },
            { TFLiteEditing.setScale($0, tensor: $1, to: .nan) })
        #expect(
            constant == "tensor '\(constantName)': expected quantisation scales finite and above 0, found scale nan",
            "\(constant)")
        let (result, resultName) = try Self.int8Refusal(
            fixture, tensor: { TFLiteEditing.outputs($0, operator: 1)[0] },
            { TFLiteEditing.setZeroPoint($0, tensor: $1, to: 7) })
        #expect(
            result.hasPrefix("tensor '\(resultName)': expected the quantisation of PAD 2 (")
                && result.hasSuffix("TensorFlow Lite does not requantise there, found scale 0.007842669, zero point 7"),
            "\(result)")
    }

    @Test func perChannelScalesOfTheWrongLengthAreRefusedNamingTheTensor() throws {
        let (refusal, name) = try Self.int8Refusal(tensor: Self.stemFilter) {
            TFLiteEditing.setScaleCount($0, tensor: $1, to: 7)
        }
        #expect(refusal == "tensor '\(name)': expected one scale per index of axis 0 (8), found 7", "\(refusal)")
    }

    /// TensorFlow Lite's CONCATENATION copies codes: an input whose scale differs from the output's is a file its
    /// converter never writes (the kernel would misread it).
    @Test func aConcatenationInputOnAnotherScaleIsRefusedNamingTheTensor() throws {
        let (refusal, name) = try Self.int8Refusal(tensor: { TFLiteEditing.outputs($0, operator: 7)[0] }) {
            TFLiteEditing.setScale($0, tensor: $1, to: 0.0625)
        }
        #expect(
            refusal.hasPrefix("tensor '\(name)': expected the quantisation of CONCATENATION 8 (")
                && refusal.hasSuffix(
                    "'s output (scale 0.031049984, zero point -64): TensorFlow Lite does not requantise there, "
                        + "found scale 0.0625, zero point -64"),
            "\(refusal)")
    }

    /// The dynamic-range file's int8 stem filter pointed at a float weight's buffer (4 bytes a value).
    @Test func anInt8WeightWithAFloatBufferIsRefusedNamingTheTensor() throws {
        var buffer: UInt32 = 0
        let (refusal, name) = try Self.int8Refusal("keras2-tiny-int8-dynamic.tflite", tensor: Self.stemFilter) {
            buffer = TFLiteEditing.buffer($0, tensor: TFLiteEditing.inputs($0, operator: 6)[1])
            return TFLiteEditing.setBuffer($0, tensor: $1, to: buffer)
        }
        #expect(
            refusal == "tensor '\(name)': expected 1176 bytes for shape [8, 7, 7, 3], found 512 in buffer \(buffer)",
            "\(refusal)")
    }
}
