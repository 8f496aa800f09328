import Foundation

/// Text in the HTML reports: escaped, and shares as whole percents.
enum HTMLText {
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    static func percent(_ value: Double) -> String { String(format: "%.0f%%", value * 100) }
}
