import DenseKit
import Foundation

/// The self-contained HTML page of `densekit diff --report`: an SVG chart of each layer's error
/// (log scale) against the tolerance, the first divergence marked and named, and the table.
struct DiffHTML {
    let result: ModelDiff.Result
    let nameA: String, nameB: String
    /// A dataset diff's images, tabled after the layers.
    let images: [DatasetDiff.Image]
    /// `--sensitivity`'s entries, charted and tabled after the layers.
    let sensitivity: [QuantizationSensitivity.Entry]?

    init(
        result: ModelDiff.Result, nameA: String, nameB: String, images: [DatasetDiff.Image] = [],
        sensitivity: [QuantizationSensitivity.Entry]? = nil
    ) {
        self.result = result
        self.nameA = nameA
        self.nameB = nameB
        self.images = images
        self.sensitivity = sensitivity
    }

    /// One row per image: file, top-1 of each side, agreement, max abs error, cosine, first divergent layer.
    var imageTable: String {
        guard !images.isEmpty else { return "" }
        var rows =
            """
            <h2>Images (\(images.count))</h2>\n<table><tr><th>file</th><th>top-1 A</th><th>top-1 \
            B</th><th>agree</th><th>max abs</th><th>cosine</th><th>first divergence</th></tr>\n
            """
        for i in images {
            let sample = i.sample
            let cells = [
                HTMLText.escape(i.file), "\(sample.top1A)", "\(sample.top1B)", sample.top1Agrees ? "yes" : "no",
                String(format: "%.3g", sample.output.maxAbs), String(format: "%.6f", sample.output.cosine),
                HTMLText.escape(sample.firstDivergence ?? "-"),
            ]
            rows += "<tr\(sample.top1Agrees ? "" : " class=\"bad\"")>" + Self.cells(cells) + "</tr>\n"
        }
        return rows + "</table>"
    }

    var html: String {
        let first = result.firstDivergence
        let verdict =
            first.map { "Diverges first at <b>\(HTMLText.escape($0.name))</b>" } ?? "Within tolerance at every layer"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>densekit diff</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
            h1 { font-size: 20px; margin: 0 0 4px; } .files { color: #555; margin-bottom: 12px; }
            .verdict { font-size: 16px; margin: 8px 0 16px; padding: 8px 12px; border-radius: 4px;
                       background: \(first == nil ? "#e6f4ea" : "#fdecea"); }
            table { border-collapse: collapse; margin-top: 16px; } td, th { padding: 2px 10px; text-align: right; }
            th { border-bottom: 1px solid #999; } td:first-child, th:first-child { text-align: left; }
            tr.bad td { background: #fdecea; } tr.first td { font-weight: bold; }
            </style></head><body>
            <h1>densekit diff</h1>
            <div class="files">A: \(HTMLText.escape(nameA))<br>B: \(HTMLText.escape(nameB))</div>
            <div class="verdict">\(verdict).
            Tolerance: |a &minus; b| &le; \(result.tolerance.absolute) + \(result.tolerance.relative) &times;
            max|b| per layer.
            Output: top-1 agreement \(HTMLText.percent(result.top1Agreement)),
            top-5 agreement \(HTMLText.percent(result.top5Agreement)).</div>
            \(chart)
            \(table)
            \(sensitivity.map { SensitivityHTML(entries: $0).html } ?? "")
            \(imageTable)
            </body></html>
            """
    }

    /// Relative error per layer, log10 scale from 1e-9 to 10.
    var chart: String {
        let layers = result.layers
        let width = 960.0
        let height = 360.0
        let left = 60.0
        let right = 20.0
        let top = 20.0
        let bottom = 70.0
        let plotW = width - left - right
        let plotH = height - top - bottom
        let lo = -9.0
        let hi = 1.0
        /// The chart's vertical position of an error (log scale, clamped to the axis).
        func yPosition(_ error: Float) -> Double {
            let exponent = error > 0 ? max(lo, min(hi, log10(Double(error)))) : lo
            return top + plotH * (hi - exponent) / (hi - lo)
        }
        /// The horizontal position of layer `index`.
        func xPosition(_ index: Int) -> Double { left + plotW * (Double(index) + 0.5) / Double(max(layers.count, 1)) }
        var svg =
            """
            <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" \
            viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n
            """
        svg +=
            """
            <rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" fill=\"#fafafa\" \
            stroke=\"#ccc\"/>\n
            """
        for e in stride(from: Int(lo), through: Int(hi), by: 2) {
            let yy = top + plotH * (hi - Double(e)) / (hi - lo)
            svg += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + plotW)\" y2=\"\(yy)\" stroke=\"#e4e4e4\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(yy + 4)\" font-size=\"11\" text-anchor=\"end\">1e\(e)</text>\n"
        }
        svg +=
            """
            <text x=\"14\" y=\"\(top + plotH / 2)\" font-size=\"12\" transform=\"rotate(-90 14 \
            \(top + plotH / 2))\" text-anchor=\"middle\">max |a-b| / max |b|</text>\n
            """
        // Tolerance line (relative part; the absolute part is negligible at a layer's scale).
        let ty = yPosition(result.tolerance.relative)
        svg +=
            """
            <line x1=\"\(left)\" y1=\"\(ty)\" x2=\"\(left + plotW)\" y2=\"\(ty)\" stroke=\"#d93025\" \
            stroke-dasharray=\"6 4\"/>
            """
        svg +=
            """
            <text x=\"\(left + plotW - 4)\" y=\"\(ty - 5)\" font-size=\"11\" fill=\"#d93025\" \
            text-anchor=\"end\">tolerance \(result.tolerance.relative)</text>\n
            """
        var path = ""
        for (i, l) in layers.enumerated() {
            path += (i == 0 ? "M" : "L") + String(format: "%.1f %.1f ", xPosition(i), yPosition(l.metrics.maxRel))
        }
        svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"#1a73e8\" stroke-width=\"1.5\"/>\n"
        for (i, l) in layers.enumerated() {
            svg +=
                """
                <circle cx=\(String(format: "\"%.1f\"", xPosition(i))) \
                cy=\(String(format: "\"%.1f\"", yPosition(l.metrics.maxRel))) r=\"2.5\" \
                fill=\"\(l.withinTolerance ? "#1a73e8" : "#d93025")\"><title>\(HTMLText.escape(l.name)): \
                \(l.metrics.maxRel)</title></circle>
                """
        }
        if let first = result.firstDivergence, let firstIndex = layers.firstIndex(where: { $0.name == first.name }) {
            let fx = xPosition(firstIndex)
            svg += "<line x1=\"\(fx)\" y1=\"\(top)\" x2=\"\(fx)\" y2=\"\(top + plotH)\" stroke=\"#d93025\"/>"
            let anchor = fx > left + plotW * 0.7 ? "end" : "start"
            svg +=
                """
                <text x=\"\(fx + (anchor == "end" ? -6 : 6))\" y=\"\(top + 16)\" font-size=\"13\" \
                font-weight=\"bold\" fill=\"#d93025\" text-anchor=\"\(anchor)\">first divergence: \
                \(HTMLText.escape(first.name))</text>\n
                """
        }
        // Label the stem, transitions and head on the x axis.
        for (firstIndex, l) in layers.enumerated() where !l.name.contains(".layer") {
            svg +=
                """
                <text x=\(String(format: "\"%.1f\"", xPosition(firstIndex))) \
                y=\"\(top + plotH + 14)\" font-size=\"11\" \
                text-anchor=\"end\" \
                transform=\(String(format: "\"rotate(-45 %.1f %.1f)\"", xPosition(firstIndex), top + plotH + 14))>\
                \(HTMLText.escape(l.name))</text>
                """
        }
        return svg + "\n</svg>"
    }

    var table: String {
        var rows =
            """
            <table><tr><th>layer</th><th>max abs</th><th>max rel</th><th>cosine</th><th>NMSE</th><th>divergent \
            channels</th>\(result.quantized ? "<th>SQNR dB</th><th>saturated</th>" : "")</tr>\n
            """
        let first = result.firstDivergence?.name
        for l in result.layers {
            let cls = l.name == first ? "bad first" : l.withinTolerance ? "" : "bad"
            let channels = l.divergentChannels.map { "\($0.lowerBound)&ndash;\($0.upperBound)" } ?? ""
            var cells = [
                (l.name == first ? "&#9654; " : "") + HTMLText.escape(l.name), sci(l.metrics.maxAbs),
                sci(l.metrics.maxRel),
                String(format: "%.6f", l.metrics.cosine), sci(l.metrics.nmse), channels,
            ]
            if result.quantized {
                cells.append(String(format: "%.1f", l.metrics.sqnr))
                cells.append(l.saturation.map { String(format: "%.2f%%", $0 * 100) } ?? "&ndash;")
            }
            rows += "<tr class=\"\(cls)\">" + Self.cells(cells) + "</tr>\n"
        }
        return rows + "</table>"
    }

    private func sci(_ value: Float) -> String { String(format: "%.2e", value) }

    /// Table cells, each already escaped.
    private static func cells(_ values: [String]) -> String { values.map { "<td>\($0)</td>" }.joined() }
}
