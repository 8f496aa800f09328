import DenseKitFormats
import Foundation

/// Turns the signals a crash raises into the contract's one line and exit 2, so that a crash can never
/// print a stack trace or become a hang (Swift's backtracer, which these handlers replace, was seen
/// holding stderr open for minutes after a crash, hanging callers that read it).
///
/// - SIGBUS at an address inside a mapped model file: another process truncated the file while it was
///   read. The line names the file.
/// - Any other SIGBUS, SIGSEGV, SIGILL (a Swift runtime trap), SIGFPE or SIGTRAP: an internal error,
///   said so in one line. With `DENSEKIT_BACKTRACE=1` in the environment these are left to Swift's
///   backtracer, for a developer who wants the stack.
///
/// The handlers allocate nothing and take no lock: they format into a buffer allocated when they are
/// installed and call `write` and `_exit`, which are async-signal-safe.
enum CrashHandling {
    static func install() {
        MappedFiles.prepare()
        _ = LineBuffer.storage
        // A stack of its own for the handler, so that a stack overflow on this thread is reported too.
        var alternate = stack_t()
        alternate.ss_size = 1 << 16
        alternate.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: alternate.ss_size, alignment: 16)
        sigaltstack(&alternate, nil)
        let keepBacktracer = ProcessInfo.processInfo.environment["DENSEKIT_BACKTRACE"] == "1"
        let signals = keepBacktracer ? [SIGBUS] : [SIGBUS, SIGSEGV, SIGILL, SIGFPE, SIGTRAP]
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { received, info, _ in
                CrashHandling.report(received, address: UInt(bitPattern: info?.pointee._sifields._sigfault.si_addr))
            }
            action.sa_flags = SA_SIGINFO | SA_ONSTACK
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }

    /// The default actions back (for the isolated reader's child, whose parent reports its death).
    static func uninstall() {
        for signal in [SIGBUS, SIGSEGV, SIGILL, SIGFPE, SIGTRAP] { Glibc.signal(signal, SIG_DFL) }
    }

    private static func report(_ received: Int32, address: UInt) -> Never {
        var line = LineBuffer()
        line.append("error: ")
        if received == SIGBUS, let path = MappedFiles.path(containing: address) {
            line.appendEscaped(path)
            line.append(": the file changed while it was being read (truncated by another process?)\n")
        } else {
            line.append("densekit stopped on signal ")
            line.append(number: Int(received))
            line.append(", an internal error: please report it with the command and the files it was given\n")
        }
        _ = write(STDERR_FILENO, LineBuffer.storage, line.count)
        _exit(2)
    }
}

/// One line of up to 4 KiB in memory allocated before any handler runs: a handler appends to it
/// without allocating. Control characters in a path are written as `\xNN`, as every error line has them.
private struct LineBuffer {
    nonisolated(unsafe) static let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    static let capacity = 4096
    private(set) var count = 0

    mutating func append(byte: UInt8) {
        guard count < Self.capacity - 1 else { return }
        Self.storage[count] = byte
        count += 1
    }

    /// A string literal: its UTF-8 is static, so reading it allocates nothing.
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { for byte in $0 { append(byte: byte) } }
    }

    mutating func append(number: Int) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0)
        var value = max(number, 0)
        var length = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[length] = UInt8(48 + value % 10)
                value /= 10
                length += 1
            } while value > 0 && length < buffer.count
            for index in stride(from: length - 1, through: 0, by: -1) { append(byte: buffer[index]) }
        }
    }

    mutating func appendEscaped(_ path: UnsafePointer<CChar>) {
        let hex: StaticString = "0123456789ABCDEF"
        var index = 0
        while path[index] != 0 {
            let byte = UInt8(bitPattern: path[index])
            if byte < 0x20 || byte == 0x7F {
                append("\\x")
                hex.withUTF8Buffer { digits in
                    append(byte: digits[Int(byte >> 4)])
                    append(byte: digits[Int(byte & 0xF)])
                }
            } else {
                append(byte: byte)
            }
            index += 1
        }
    }
}
