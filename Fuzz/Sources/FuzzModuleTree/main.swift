import DenseKit
import DenseKitFormats
import FuzzSupport

// Pickled module trees: torch.save(model) in both formats and TorchScript archives (seeded with the
// whole-module fixtures; the legacy ones put the pickle itself in front of the mutations), read by the
// restricted unpickler into inert objects and walked into a state_dict.
fuzz { bytes in
    guard let net = try? PTHReader.load(data: bytes, path: "fuzz-module.pth") else { return }
    exercise(net)
}
