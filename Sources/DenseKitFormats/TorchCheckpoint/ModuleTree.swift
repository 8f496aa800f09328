import DenseKitGraph

/// The weights of a pickled `nn.Module` tree, by state_dict key: `torch.save(model)` (each module's
/// `_parameters`, `_buffers` and `_modules`) or TorchScript's `data.pkl` (each module's attributes:
/// tensors and submodules by name). The objects are the unpickler's inert ones: classes are names, and
/// nothing of the module's code is ever run or needed; the structure comes from the weights, as for a
/// state_dict.
package struct ModuleTree {
    /// The root module's class (`torchvision.models.densenet.DenseNet`, `torchxrayvision.models.DenseNet`).
    package var className: String
    /// The tensors by state_dict key, in the tree's order.
    package var weights: [(String, Unpickler.Value)] = []
    /// Tensors of the root module itself (torchxrayvision's `op_threshs`): no layer's weights, skipped.
    package var skipped: [String] = []
    /// Whether a module of the tree is timm's `BlurPool2d` (whose fixed filter a state_dict leaves out).
    package var hasBlurPool = false

    /// The tree under `root`, or nil when `root` is no module object.
    package init?(_ root: Unpickler.Value) throws {
        guard case .object(let className, _) = root else { return nil }
        self.className = className
        try walk(root, path: "")
    }

    /// TorchScript's class names carry `__torch__.` and mangling (`___torch_mangle_35`); shown without them.
    package var displayedClassName: String {
        className.replacingOccurrences(of: "__torch__.", with: "").split(separator: ".")
            .filter { !$0.hasPrefix("___torch_mangle_") }.joined(separator: ".")
    }

    private mutating func walk(_ module: Unpickler.Value, path: String) throws {
        guard case .object(let className, let state) = module else { return }
        if className.hasSuffix(".BlurPool2d") { hasBlurPool = true }
        let subject = ImportSubject.part("module '\(path.isEmpty ? "(root)" : path)' (\(className))")
        guard case .dict(let pairs) = state else {
            throw ImportError.malformed(
                subject, problem: "an object without its state (a module tree that refers back to itself?)")
        }
        let attributes = pairs.compactMap { pair in pair.key.string.map { ($0, pair.value) } }
        func key(_ name: String) -> String { path.isEmpty ? name : path + "." + name }
        func named(_ attribute: String) throws -> [(String, Unpickler.Value)]? {
            guard let value = attributes.first(where: { $0.0 == attribute })?.1 else { return nil }
            guard case .dict(let entries) = value else {
                throw ImportError.mismatch(subject, expected: "'\(attribute)' a dict", found: "another value")
            }
            return entries.compactMap { entry in entry.key.string.map { ($0, entry.value) } }
        }
        if let modules = try named("_modules") {
            // torch.save(model): parameters, persistent buffers, then the submodules, as state_dict() orders them.
            var transient = Set<String>()
            if case .list(let names)? = attributes.first(where: { $0.0 == "_non_persistent_buffers_set" })?.1 {
                transient = Set(names.compactMap(\.string))
            }
            for (name, value) in try named("_parameters") ?? [] { try add(value, key(name), root: path.isEmpty) }
            for (name, value) in try named("_buffers") ?? [] where !transient.contains(name) {
                try add(value, key(name), root: path.isEmpty)
            }
            for (name, value) in modules { try walk(value, path: key(name)) }
        } else {
            // TorchScript: the attributes themselves.
            for (name, value) in attributes {
                switch value {
                case .tensor: try add(value, key(name), root: path.isEmpty)
                case .object: try walk(value, path: key(name))
                default: break
                }
            }
        }
    }

    private mutating func add(_ value: Unpickler.Value, _ key: String, root: Bool) throws {
        switch value {
        case .tensor:
            if root {
                skipped.append(key)
            } else {
                weights.append((key, value))
            }
        case .none: break
        default:
            throw ImportError.mismatch(.key(key), expected: "a tensor (or None)", found: "another value")
        }
    }
}
