import Foundation

/// Charts drawn as inline SVG for `coderl report` (no scripts, fonts or images from anywhere).
enum SVGChart {
    struct Series {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
    }

    static let width = 560.0, height = 230.0
    static let left = 56.0, right = 12.0, top = 44.0, bottom = 34.0
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    /// Outcome colours, in the order compile error, runtime error, failed test, passed.
    static let outcomeColors = ["#7f7f7f", "#d62728", "#ff7f0e", "#2ca02c"]

    /// Escapes text for HTML and SVG.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab and newline cannot appear in XML.
                if c.value < 0x20 && c != "\n" && c != "\t" { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    static func format(_ v: Double, _ style: String) -> String {
        if style.hasPrefix("%.") { return String(format: style, v) }
        switch style {
        case "%": return String(format: "%.0f%%", v * 100)
        case "int": return String(format: "%.0f", v)
        default:
            let a = abs(v)
            if a != 0 && (a < 0.01 || a >= 10000) { return String(format: "%.1e", v) }
            return a >= 100 ? String(format: "%.0f", v) : String(format: a >= 10 ? "%.1f" : "%.2f", v)
        }
    }

    /// Round tick values covering [lo, hi] and the format that tells them apart; `whole`
    /// keeps the step at 1 or more (steps, versions).
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5, whole: Bool = false) -> (values: [Double], style: String) {
        guard hi > lo else { return ([lo], whole ? "int" : "") }
        let raw = (hi - lo) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        var step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        if whole { step = max(1, step.rounded(.up)) }
        var values: [Double] = []
        var k = (lo / step).rounded(.up)
        while k * step <= hi + step * 1e-9 {
            values.append(k * step == 0 ? 0 : k * step)
            k += 1
        }
        // Enough decimals for the step (2.5 x 10^-2 needs three).
        var decimals = max(0, Int(-floor(log10(step) + 1e-9)))
        let scaled = step * pow(10, Double(decimals))
        if abs(scaled - scaled.rounded()) > 1e-6 { decimals += 1 }
        return (values, whole || decimals == 0 ? "int" : "%.\(decimals)f")
    }

    private static func frame(_ title: String, _ body: String, id: String) -> String {
        """
        <figure class="chart" id="\(escape(id))"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="\(escape(title))">
        <text x="\(left)" y="16" class="title">\(escape(title))</text>
        \(body)</svg></figure>
        """
    }

    private static func empty(_ title: String, id: String, note: String) -> String {
        frame(title, "<text x=\"\(width / 2)\" y=\"\(height / 2)\" text-anchor=\"middle\" class=\"note\">\(escape(note))</text>", id: id)
    }

    /// Axes, grid and labels for the given domains; returns the SVG and the coordinate maps.
    private static func axes(x: (Double, Double), y: (Double, Double), xLabel: String, yStyle: String)
        -> (String, (Double) -> Double, (Double) -> Double) {
        let plotW = width - left - right, plotH = height - top - bottom
        let sx = { (v: Double) in left + (x.1 > x.0 ? (v - x.0) / (x.1 - x.0) : 0.5) * plotW }
        let sy = { (v: Double) in top + plotH - (y.1 > y.0 ? (v - y.0) / (y.1 - y.0) : 0.5) * plotH }
        var svg = ""
        let yTicks = ticks(y.0, y.1)
        for t in yTicks.values {
            let py = sy(t)
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(py)\" y2=\"\(py)\" class=\"grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(py + 4)\" text-anchor=\"end\" class=\"tick\">\(format(t, yStyle.isEmpty ? yTicks.style : yStyle))</text>"
        }
        for t in ticks(x.0, x.1, count: 6, whole: true).values {
            let px = sx(t)
            svg += "<line x1=\"\(px)\" x2=\"\(px)\" y1=\"\(top + plotH)\" y2=\"\(top + plotH + 4)\" class=\"axis\"/>"
            svg += "<text x=\"\(px)\" y=\"\(top + plotH + 16)\" text-anchor=\"middle\" class=\"tick\">\(format(t, "int"))</text>"
        }
        svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(top + plotH)\" y2=\"\(top + plotH)\" class=\"axis\"/>"
        svg += "<line x1=\"\(left)\" x2=\"\(left)\" y1=\"\(top)\" y2=\"\(top + plotH)\" class=\"axis\"/>"
        svg += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 4)\" text-anchor=\"middle\" class=\"label\">\(escape(xLabel))</text>"
        return (svg, sx, sy)
    }

    /// The legend, on the line under the title.
    private static func legend(_ names: [(String, String)]) -> String {
        var svg = "", x = left
        for (name, color) in names {
            svg += "<rect x=\"\(x)\" y=\"24\" width=\"10\" height=\"10\" fill=\"\(color)\"/><text x=\"\(x + 13)\" y=\"33\" class=\"legend\">\(escape(name))</text>"
            x += Double(name.count) * 6.2 + 26
        }
        return svg
    }

    /// One line per series over a shared x axis. `yRange` fixes the y domain (rates: 0...1).
    static func lines(_ title: String, id: String, series: [Series], xLabel: String, yStyle: String = "",
                      yRange: (Double, Double)? = nil) -> String {
        let all = series.flatMap(\.points).filter { $0.y.isFinite && $0.x.isFinite }
        guard !all.isEmpty else { return empty(title, id: id, note: "no data yet") }
        let xs = all.map(\.x), ys = all.map(\.y)
        var y = yRange ?? (min(0, ys.min()!), ys.max()!)
        if yRange == nil {
            let pad = (y.1 - y.0) * 0.05
            y = (y.0 < 0 ? y.0 - pad : y.0, y.1 + (pad == 0 ? 1 : pad))
        }
        let (grid, sx, sy) = axes(x: (xs.min()!, xs.max()!), y: y, xLabel: xLabel, yStyle: yStyle)
        var body = grid
        for s in series {
            let points = s.points.filter { $0.y.isFinite && $0.x.isFinite }
            guard !points.isEmpty else { continue }
            let path = points.map { String(format: "%.1f,%.1f", sx($0.x), sy($0.y)) }.joined(separator: " ")
            body += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.8\" class=\"series\" data-name=\"\(escape(s.name))\"/>"
            if points.count <= 200 {
                for p in points {
                    body += "<circle cx=\"\(String(format: "%.1f", sx(p.x)))\" cy=\"\(String(format: "%.1f", sy(p.y)))\" r=\"2.6\" fill=\"\(s.color)\"><title>\(escape(s.name)) at \(format(p.x, "int")): \(format(p.y, yStyle == "%" ? "%" : ""))</title></circle>"
                }
            }
        }
        body += legend(series.map { ($0.name, $0.color) })
        return frame(title, body, id: id)
    }

    /// Stacked shares per x (each column sums to 1): the outcome mix per step.
    static func stackedShares(_ title: String, id: String, xs: [Double], stacks: [(name: String, color: String, values: [Double])],
                              xLabel: String) -> String {
        guard !xs.isEmpty else { return empty(title, id: id, note: "no data yet") }
        let lo = xs.min()!, hi = xs.max()!
        let (grid, sx, sy) = axes(x: (lo - 0.5, hi + 0.5), y: (0, 1), xLabel: xLabel, yStyle: "%")
        var body = grid
        let barW = max(1, (width - left - right) / Double(max(1, Int(hi - lo) + 1)) * 0.8)
        for (i, x) in xs.enumerated() {
            let total = stacks.map { $0.values[i] }.reduce(0, +)
            guard total > 0 else { continue }
            var base = 0.0
            for s in stacks {
                let share = s.values[i] / total
                guard share > 0 else { continue }
                let y0 = sy(base), y1 = sy(base + share)
                body += "<rect x=\"\(String(format: "%.1f", sx(x) - barW / 2))\" y=\"\(String(format: "%.1f", y1))\" width=\"\(String(format: "%.1f", barW))\" height=\"\(String(format: "%.1f", y0 - y1))\" fill=\"\(s.color)\"><title>\(escape(s.name)) at \(format(x, "int")): \(format(share, "%")) (\(format(s.values[i], "int")))</title></rect>"
                base += share
            }
        }
        body += legend(stacks.map { ($0.name, $0.color) })
        return frame(title, body, id: id)
    }

    /// Horizontal bars, one per label (evaluation results).
    static func bars(_ title: String, id: String, items: [(label: String, value: Double)], style: String = "%") -> String {
        guard !items.isEmpty else { return empty(title, id: id, note: "no evaluations in this ledger") }
        let rowH = 20.0, labelW = 230.0
        let h = top + Double(items.count) * rowH + 10
        let maxV = max(items.map(\.value).max() ?? 0, style == "%" ? 0.05 : 1e-9)
        var body = ""
        for (i, item) in items.enumerated() {
            let y = top + Double(i) * rowH
            let w = (width - labelW - 70) * max(0, item.value) / maxV
            let label = item.label.count > 36 ? String(item.label.prefix(35)) + "…" : item.label
            body += "<text x=\"\(labelW - 6)\" y=\"\(y + 14)\" text-anchor=\"end\" class=\"tick\">\(escape(label))<title>\(escape(item.label))</title></text>"
            body += "<rect x=\"\(labelW)\" y=\"\(y + 3)\" width=\"\(String(format: "%.1f", w))\" height=\"\(rowH - 6)\" fill=\"#1f77b4\"/>"
            body += "<text x=\"\(labelW + w + 4)\" y=\"\(y + 14)\" class=\"tick\">\(format(item.value, style == "%" ? "%" : ""))</text>"
        }
        return """
            <figure class="chart" id="\(escape(id))"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(width)) \(Int(h))" width="\(Int(width))" height="\(Int(h))" role="img" aria-label="\(escape(title))">
            <text x="\(left)" y="16" class="title">\(escape(title))</text>\(body)</svg></figure>
            """
    }
}
