/// Software prefetch: asks for a cache line without waiting for it (x86 `prefetcht1`).
///
/// A GEMM panel's B rows, read from planes (each row another channel's plane), are a strided read
/// the hardware prefetchers do not follow, and a plain load issued early only moves the wait: it
/// holds up retirement until its line arrives. Swift has no prefetch function, so this
/// calls LLVM's `llvm.prefetch` intrinsic by name; a prefetch never faults, whatever the address.
@_silgen_name("llvm.prefetch.p0")
private func llvmPrefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ cacheType: Int32)

public enum Prefetch {
    /// Into L2 (`prefetcht1`; some cores fill L1 as well), for data used after the current L1 working set.
    @inline(__always) public static func l2(_ address: UnsafeRawPointer) { llvmPrefetch(address, 0, 2, 1) }

    /// Every cache line of `bytes` bytes from `address`, into L2.
    @inline(__always) public static func l2(_ address: UnsafeRawPointer, bytes: Int) {
        var at = 0
        while at < bytes {
            l2(address + at)
            at += 64
        }
        l2(address + (bytes - 1))
    }
}
