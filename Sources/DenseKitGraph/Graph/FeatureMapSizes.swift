/// The spatial size (height x width) of every stage of a validated DenseNet on an input of one size:
/// the one walk of the layer geometry that validation, the verifier and the executor all use.
public struct FeatureMapSizes: Sendable, Equatable {
    public struct Size: Sendable, Equatable, CustomStringConvertible {
        public var height: Int
        public var width: Int
        public init(_ height: Int, _ width: Int) {
            self.height = height
            self.width = width
        }
        public var area: Int { height * width }
        public var description: String { "\(height)x\(width)" }
    }

    /// The part of a DenseNet that decides its map sizes: the stem's windows and each transition's.
    public struct Geometry: Sendable {
        public struct Window: Sendable {
            package var kernel: Int, stride: Int, pads: [Int]
            package init(kernel: Int, stride: Int, pads: [Int]) {
                self.kernel = kernel
                self.stride = stride
                self.pads = pads
            }
            package func outputSize(_ height: Int, _ width: Int) -> (Int, Int) {
                (
                    windows(height + pads[0] + pads[2], kernel, stride),
                    windows(width + pads[1] + pads[3], kernel, stride)
                )
            }
        }
        package var stemConv: Window
        package var stemPool: Window?
        package var stemBlur: BlurPool2D?
        package var transitions: [(conv: Window, pool: Window)]
        package var blocks: Int

        public init(_ net: DenseNet) {
            func window(_ conv: Conv2D) -> Window { Window(kernel: conv.kernel, stride: conv.stride, pads: conv.pads) }
            func window(_ pool: Pool2D) -> Window { Window(kernel: pool.kernel, stride: pool.stride, pads: pool.pads) }
            stemConv = window(net.stem.conv)
            stemPool = net.stem.pool.map(window)
            stemBlur = net.stem.blur
            transitions = net.transitions.map { (window($0.conv), window($0.pool)) }
            blocks = net.blocks.count
        }
    }

    public var input: Size
    /// The stem conv's output (a deep stem's last conv's), before its pool.
    public var stemConv: Size
    /// The stem's pool's output, before a blur (the stem conv's output without a pool).
    public var stemPooled: Size
    /// Each dense block's maps (the stem's pooled output for block 1, a transition's for the others).
    public var blocks: [Size]
    /// Each transition conv's output, before its pool.
    public var transitionConvs: [Size]
    /// The maps the head pools: the last block's.
    public var head: Size { blocks.last ?? stemConv }

    /// Sizes for an input of `height` x `width`; every stage must keep at least one row and column.
    /// The net must have passed `validate()` (strides >= 1, size-preserving dense convs).
    public init(_ net: DenseNet, height: Int, width: Int) throws {
        try self.init(Geometry(net), height: height, width: width)
    }

    public init(_ geometry: Geometry, height: Int, width: Int) throws {
        let limit = DenseNet.Limits.inputSide
        guard (1...limit).contains(height), (1...limit).contains(width) else {
            throw ImportError.mismatch(
                .part("input"), expected: "height and width from 1 to \(limit)", found: "\(height)x\(width)")
        }
        input = Size(height, width)
        func nonEmpty(_ size: (height: Int, width: Int), _ layer: CanonicalLayer) throws -> Size {
            guard size.height >= 1, size.width >= 1 else {
                throw ImportError.mismatch(
                    .layer(layer), expected: "a map of at least 1x1",
                    found: "\(size.height)x\(size.width) for a \(height)x\(width) input")
            }
            return Size(size.height, size.width)
        }
        stemConv = try nonEmpty(geometry.stemConv.outputSize(height, width), .stem)
        var current = stemConv
        if let pool = geometry.stemPool {
            current = try nonEmpty(pool.outputSize(current.height, current.width), .stem)
        }
        stemPooled = current
        if let blur = geometry.stemBlur {
            // Reflection mirrors rows and columns inside the map: it needs more of them than it pads.
            guard current.height > blur.padding, current.width > blur.padding else {
                throw ImportError.mismatch(
                    .layer(.stem, part: "blur"), expected: "a map of more than \(blur.padding) rows and columns",
                    found: "\(current) for a \(height)x\(width) input")
            }
            current = try nonEmpty(blur.outputSize(current.height, current.width), .stem)
        }
        blocks = []
        transitionConvs = []
        for block in 0..<geometry.blocks {
            blocks.append(current)
            guard block < geometry.transitions.count else { continue }
            let transition = geometry.transitions[block]
            let conv = try nonEmpty(
                transition.conv.outputSize(current.height, current.width), .transition(block + 1))
            transitionConvs.append(conv)
            current = try nonEmpty(transition.pool.outputSize(conv.height, conv.width), .transition(block + 1))
        }
    }
}
