// DenseKitKernels: the executor's SIMD kernels (GEMM, shifted and phase-plane convolutions, BN-ReLU,
// pooling) and the plain reference kernels they are tested against.
//
// This target is built with -Ounchecked: no bounds checks, no overflow traps, and every
// `precondition` removed. Its kernels index raw pointers by the sizes they are given and trust them.
// Memory safety therefore never depends on an importer being right: the executor (`ExecutionPlan`
// in DenseKit) makes its plan only from a graph that passes `DenseNet.validate()`, sizes every
// buffer from one walk of the layer geometry (`FeatureMapSizes`) before the first run, and caps the
// workspace. Nothing in this target reads a file.
