import DenseKit
import DenseKitImages
import FuzzSupport

// Every image the decoder accepts is preprocessed by each preset, as `preprocess` and `run --images` would.
fuzz { bytes in
    guard bytes.first == 0x89, let image = try? ImageDecoder.decode(bytes, maximumPixels: 1 << 20) else { return }
    precondition(image.pixels.count == image.width * image.height * 3)
    for preset in Preprocessing.Preset.allCases {
        _ = try? Preprocessing(preset, size: 32).apply(image)
    }
}
