/// One image going through a network a canonical layer at a time, for comparing two models layer by layer
/// (`Executor.start`): the SIMD executor's `ImageExecution` computes each layer when asked; a quantised model's
/// `RecordedExecution` hands out the layers the integer executor computed.
public protocol LayerByLayer: AnyObject {
    /// The next canonical layer's activation, or nil after the head; valid until the next call.
    func next() -> LayerActivation?
}

extension ImageExecution: LayerByLayer {}

/// Every canonical layer of one image, computed at once (by `QuantizedExecutor`) and handed out in order.
public final class RecordedExecution: LayerByLayer {
    private struct Layer {
        var observed: QuantizedExecutor.ObservedLayer
        var values: UnsafeMutableBufferPointer<Float>
    }

    private var layers: [Layer] = []
    private var index = 0

    init(recording run: ((QuantizedExecutor.ObservedLayer) -> Void) -> Void) {
        run { observed in
            let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: observed.values.count)
            _ = copy.initialize(from: observed.values)
            layers.append(Layer(observed: observed, values: copy))
        }
    }

    deinit { for layer in layers { layer.values.deallocate() } }

    public func next() -> LayerActivation? {
        guard index < layers.count else { return nil }
        let layer = layers[index]
        index += 1
        return layer.observed.activation(UnsafeBufferPointer(layer.values))
    }
}

extension QuantizedExecutor.ObservedLayer {
    /// The layer as a `LayerActivation` whose values are `values` (this layer's, kept alive by the caller).
    func activation(_ values: UnsafeBufferPointer<Float>) -> LayerActivation {
        LayerActivation(
            name: name, channels: channels, height: height, width: width, values: values, saturation: saturation)
    }
}
