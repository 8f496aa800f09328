import DenseKitGraph
import Foundation

/// A `.dnk` file's metadata (schemas/dnk-format.md, "Metadata"), written with Foundation's
/// JSONEncoder and read with its JSONDecoder (what that costs a load: docs/performance.md). The
/// file's checksum does not make the text trustworthy: every value is range-checked where the graph
/// is rebuilt (`CanonicalLayout.rebuild`).
package struct DNKMetadata: Codable {
    package var format = "densekit-native"
    /// "major.minor", as the header says it.
    package var version: String
    package var structure: Structure
    /// Absent only in files that did not come from a conversion.
    package var provenance: StoredProvenance?

    /// The geometry and settings that are not tensors, with the verifier's summary.
    package struct Structure: Codable {
        /// The paper architecture the model matches (null when none), and the closest one.
        package var architecture: String?
        package var closest: String?
        package var growthRate: Int?
        /// Null when there are no transitions.
        package var compression: Double?
        package var bottleneck: Bool?
        package var blocks: [Int]
        package var classes: Int?
        package var stem: Stem
        /// Every canonical conv's stride and pads, by its name (`block1.layer1.conv`).
        package var convs: [String: ConvGeometry]
        /// Every canonical BatchNorm's epsilon, by its name (`block1.layer1.norm`).
        package var epsilons: [String: Double]
        package var transitionPools: [PoolGeometry]
        /// Whether the last activation is softmax: what a 1.0 reader, which knows no `head`, reads.
        package var softmax: Bool?
        /// From 1.1; a 1.0 file's head is a global average pool and one dense layer.
        package var head: HeadDescription?
        package var input: Input
        /// From 5.0, present only in a quantised model.
        package var quantization: QuantizationDescription? = nil

        private enum CodingKeys: String, CodingKey {
            case architecture, closest, growthRate, compression, bottleneck, blocks, classes, stem, convs
            case epsilons, transitionPools, softmax, head, input, quantization
        }

        /// As synthesised, except that `architecture` and `compression` are written as null when
        /// they have no value, as the spec shows them.
        package func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(architecture, forKey: .architecture)
            try container.encode(compression, forKey: .compression)
            try container.encodeIfPresent(closest, forKey: .closest)
            try container.encodeIfPresent(growthRate, forKey: .growthRate)
            try container.encodeIfPresent(bottleneck, forKey: .bottleneck)
            try container.encode(blocks, forKey: .blocks)
            try container.encodeIfPresent(classes, forKey: .classes)
            try container.encode(stem, forKey: .stem)
            try container.encode(convs, forKey: .convs)
            try container.encode(epsilons, forKey: .epsilons)
            try container.encode(transitionPools, forKey: .transitionPools)
            try container.encodeIfPresent(softmax, forKey: .softmax)
            try container.encodeIfPresent(head, forKey: .head)
            try container.encode(input, forKey: .input)
            try container.encodeIfPresent(quantization, forKey: .quantization)
        }
    }

    /// A quantised model's parameters (from 5.0): whose arithmetic it runs with, every integer tensor's scales and
    /// zero points (its codes are the tensor's data), and the activation quantisations of each op, by the op's
    /// canonical name (`block1.layer1.conv`, `transition1.pool`, `head.classifier`).
    package struct QuantizationDescription: Codable {
        package var arithmetic: IntegerArithmetic
        package var tensors: [String: Parameters]
        package var activations: [String: Activations]
    }

    /// One scale and zero point per tensor, or one per index of `axis`.
    package struct Parameters: Codable {
        package var storage: Quantization.Storage
        package var scales: [Float]
        package var zeroPoints: [Int32]
        package var axis: Int?

        package init(_ q: Quantization) {
            (storage, scales, zeroPoints, axis) = (q.storage, q.scales, q.zeroPoints, q.axis)
        }

        package var quantization: Quantization {
            Quantization(storage: storage, scales: scales, zeroPoints: zeroPoints, axis: axis)
        }
    }

    /// What an op reads and gives, and (a TensorFlow Lite BatchNorm) its product before the offset.
    package struct Activations: Codable {
        package var input: Parameters?
        package var output: Parameters?
        package var product: Parameters?
    }

    package struct Stem: Codable {
        package var relu: Bool?
        /// Absent when the stem has no max pool (CIFAR nets).
        package var pool: PoolGeometry?
        /// From 4.0: a deep stem's convs after the first (`stem.deep<i>.conv`), absent for none.
        package var deep: Int? = nil
        /// From 4.0: the blur pool after `pool`, when the stem is anti-aliased.
        package var blur: BlurGeometry? = nil
    }

    package struct BlurGeometry: Codable {
        package var kernel: Int
        package var stride: Int
    }

    package struct ConvGeometry: Codable {
        package var stride: Int
        /// Top, left, bottom, right.
        package var pads: [Int]
    }

    package struct PoolGeometry: Codable {
        package var kind: Pool2D.Kind
        package var kernel: Int
        package var stride: Int
        package var pads: [Int]
        package var countIncludePad: Bool?
    }

    package struct Input: Codable {
        package var name: String?
        package var layout: InputSpec.Layout
        package var channels: Int
        /// Present only where the source fixed them.
        package var height: Int?
        package var width: Int?
        package var batch: Int?
        /// From 3.0: the model's own preprocessing, x * scale + offset per channel.
        package var transform: Transform?
    }

    package struct Transform: Codable {
        package var scale: [Float]
        package var offset: [Float]
        /// Where the source file held it (`Rescaling 'rescaling' (...)`, `node 'Mul_0'`).
        package var origin: [String]
        /// From 6.0: the same steps on the input's codes, as an int8 model computes them.
        package var codes: TransformCodes? = nil
    }

    /// `QuantizedInputTransform`: the input's quantisation, then each step's constant code and parameters and the
    /// quantisation of its result.
    package struct TransformCodes: Codable {
        package var input: Parameters
        package var steps: [Step]

        package struct Step: Codable {
            package var operation: QuantizedInputTransform.Step.Operation
            /// One code for every channel (6.0), or from 7.0 one per input channel in `constants`.
            package var constant: Int32?
            package var constants: [Int32]?
            package var constantParameters: Parameters
            package var output: Parameters
            package var origin: String
        }

        package init(_ transform: QuantizedInputTransform) {
            input = Parameters(transform.input)
            steps = transform.steps.map {
                Step(
                    operation: $0.operation, constant: $0.constants.count == 1 ? $0.constants[0] : nil,
                    constants: $0.constants.count == 1 ? nil : $0.constants,
                    constantParameters: Parameters($0.constantQuantization),
                    output: Parameters($0.output), origin: $0.origin)
            }
        }

        /// The steps; nil when a step has both `constant` and `constants`, or neither.
        package var transform: QuantizedInputTransform? {
            var result: [QuantizedInputTransform.Step] = []
            for step in steps {
                let constants: [Int32]
                switch (step.constant, step.constants) {
                case (let one?, nil): constants = [one]
                case (nil, let perChannel?): constants = perChannel
                default: return nil
                }
                result.append(
                    QuantizedInputTransform.Step(
                        operation: step.operation, constants: constants,
                        constantQuantization: step.constantParameters.quantization, output: step.output.quantization,
                        origin: step.origin))
            }
            return QuantizedInputTransform(input: input.quantization, steps: result)
        }
    }

    /// Where the file came from (all optional: a reader shows what is there).
    package struct StoredProvenance: Codable {
        package var sourceFile: String?
        package var sourceSHA256: String?
        package var sourceFormat: String?
        package var producer: String?
        package var densekitVersion: String?
        package var convertedAt: String?
        package var dtype: String?
    }

    /// The JSON bytes, keys sorted.
    package func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Decodes the metadata; a value of the wrong type or a missing key is a malformed-file error
    /// that names the key path.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws -> DNKMetadata {
        let text = Data(bytes)
        do {
            return try JSONDecoder().decode(DNKMetadata.self, from: text)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            // JSONDecoder does not say where the text stops being JSON; JSONSerialization does.
            var reason = context.debugDescription
            do { _ = try JSONSerialization.jsonObject(with: text) } catch {
                reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? reason
            }
            throw ImportError.malformed(.part("metadata"), problem: "not JSON: \(reason)")
        } catch let error as DecodingError {
            throw ImportError.malformed(.part("metadata"), problem: Self.describe(error))
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        /// `structure.convs.stem.conv.pads[2]: `, or nothing at the top level.
        func path(_ keys: [CodingKey]) -> String {
            let parts = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return parts.isEmpty ? "" : parts.drop { $0 == "." } + ": "
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath))no '\(key.stringValue)'"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath))expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath))expected \(type), found null"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath))\(context.debugDescription)"
        @unknown default:
            return "not the expected JSON"
        }
    }
}

extension DNKMetadata {
    /// Who made the file, as the model's source describes it: `densekit 0.3.0 from onnx (pytorch 2.5.0)`.
    package var producer: String {
        let recorded = provenance
        return
            "densekit \(recorded?.densekitVersion ?? "?") from \(recorded?.sourceFormat ?? "?") "
            + "(\(recorded?.producer ?? "?"))"
    }

    /// The conversion the file came from, when its provenance says.
    package var notes: [String] {
        guard let recorded = provenance, let file = recorded.sourceFile, let sha = recorded.sourceSHA256 else {
            return []
        }
        return ["converted from \(file) (SHA-256 \(sha)) at \(recorded.convertedAt ?? "?")"]
    }
}
