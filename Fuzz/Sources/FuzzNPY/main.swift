import DenseKit
import FuzzSupport

fuzz { _ = try? NPY.parse($0) }
