import DenseKit
import Foundation

/// The `--sensitivity` section of `densekit diff --report`: one horizontal bar per layer, worst first, its length the
/// output error the layer causes alone (log scale, 1e-6 to 10), and the ranking as a table.
struct SensitivityHTML {
    let entries: [QuantizationSensitivity.Entry]

    var html: String {
        let ranked = QuantizationSensitivity.ranked(entries)
        let rowHeight = 16.0
        let left = 150.0
        let plotW = 640.0
        let height = rowHeight * Double(ranked.count) + 40
        let (lo, hi) = (-6.0, 1.0)
        func length(_ error: Float) -> Double {
            let exponent = error > 0 ? max(lo, min(hi, log10(Double(error)))) : lo
            return error.isNaN ? plotW : plotW * (exponent - lo) / (hi - lo)
        }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(left + plotW + 20))" height="\(Int(height))" \
            viewBox="0 0 \(Int(left + plotW + 20)) \(Int(height))">\n
            """
        for e in stride(from: Int(lo), through: Int(hi), by: 1) {
            let x = left + plotW * (Double(e) - lo) / (hi - lo)
            svg += "<line x1=\"\(x)\" y1=\"0\" x2=\"\(x)\" y2=\"\(height - 24)\" stroke=\"#e4e4e4\"/>"
            svg += "<text x=\"\(x)\" y=\"\(height - 8)\" font-size=\"11\" text-anchor=\"middle\">1e\(e)</text>\n"
        }
        for (i, entry) in ranked.enumerated() {
            let y = Double(i) * rowHeight + 2
            let color = entry.top1Agreement < 1 ? "#d93025" : "#1a73e8"
            svg += """
                <text x="\(left - 6)" y="\(y + 11)" font-size="11" text-anchor="end">\
                \(HTMLText.escape(entry.layer))</text>\
                <rect x="\(left)" y="\(y)" width="\(String(format: "%.1f", length(entry.output.maxRel)))" \
                height="\(rowHeight - 4)" fill="\(color)"><title>\(HTMLText.escape(entry.layer)): output max rel \
                \(entry.output.maxRel), top-1 agreement \(HTMLText.percent(entry.top1Agreement))</title></rect>\n
                """
        }
        svg += "</svg>"
        var table = """
            <table><tr><th>layer</th><th>output max rel</th><th>cosine</th><th>top-1 agreement</th></tr>\n
            """
        for entry in ranked {
            table += """
                <tr\(entry.top1Agreement < 1 ? " class=\"bad\"" : "")><td>\(HTMLText.escape(entry.layer))</td>\
                <td>\(String(format: "%.2e", entry.output.maxRel))</td>\
                <td>\(String(format: "%.6f", entry.output.cosine))</td>\
                <td>\(HTMLText.percent(entry.top1Agreement))</td></tr>\n
                """
        }
        return """
            <h2>Sensitivity: each layer alone quantised, every other float (worst first)</h2>
            <p>Bar: the output's largest error relative to the float output's scale (log scale); red where the \
            top-1 class changes on some image.</p>
            \(svg)
            \(table)</table>
            """
    }
}
