import Foundation
import Glibc

/// A grouped bar chart written as SVG by hand (no dependency): one or more panels stacked
/// vertically, each with groups along the x axis (configurations, benchmarks) and one bar per
/// series (server, runtime) in every group, the value printed above each bar.
struct BarChart {
    struct Panel {
        var title: String
        /// Groups along the x axis.
        var groups: [String]
        /// One bar per series in every group; the legend lists them.
        var series: [String]
        /// `values[group][series]`; NaN draws no bar.
        var values: [[Double]]
        /// `marked[group][series]`: a bar drawn faded, its label starred (the subtitle says why);
        /// empty: none.
        var marked: [[Bool]] = []
        /// A logarithmic axis, for values that span orders of magnitude (the bars then start at
        /// the axis' lowest decade).
        var logarithmic = false
        /// How a value is printed above its bar.
        var label: (Double) -> String = { formatValue($0) }
    }

    var title: String
    var subtitle: String
    var panels: [Panel]

    private static let width = 960.0
    private static let panelHeight = 330.0
    private static let headerHeight = 64.0
    private static let left = 78.0
    private static let right = 24.0
    private static let palette = ["#2f6fb0", "#e07b24", "#3a9a4a", "#c23b3b", "#7d5bb5", "#8c6d3f", "#d16aa8", "#6b6b6b"]

    func svg() -> String {
        let subtitleLines = wrap(subtitle, width: 135)
        let header = Self.headerHeight + Double(subtitleLines.count - 1) * 15
        let height = header + Double(panels.count) * Self.panelHeight
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(Self.width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(Self.width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Self.left)" y="26" font-size="18" font-weight="bold">\(escape(title))</text>

            """
        for (index, line) in subtitleLines.enumerated() {
            out += "<text x=\"\(Self.left)\" y=\"\(46 + 15 * index)\" font-size=\"12\" fill=\"#555\">\(escape(line))</text>\n"
        }
        for (index, panel) in panels.enumerated() {
            out += render(panel, top: header + Double(index) * Self.panelHeight)
        }
        return out + "</svg>\n"
    }

    private func render(_ panel: Panel, top: Double) -> String {
        let plotTop = top + 62, plotBottom = top + Self.panelHeight - 44
        let plotLeft = Self.left, plotRight = Self.width - Self.right
        let finite = panel.values.joined().filter { $0.isFinite && (!panel.logarithmic || $0 > 0) }
        let axis = Axis(values: finite, logarithmic: panel.logarithmic)
        func y(_ value: Double) -> Double { plotBottom - axis.fraction(value) * (plotBottom - plotTop) }

        var out = "<g>\n<text x=\"\(plotLeft)\" y=\"\(top + 18)\" font-size=\"14\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
        // Legend, on its own line under the title.
        var legendX = plotLeft
        for (index, name) in panel.series.enumerated() {
            out += "<rect x=\"\(fmt(legendX))\" y=\"\(top + 27)\" width=\"12\" height=\"12\" fill=\"\(color(index))\"/>"
            out += "<text x=\"\(fmt(legendX + 16))\" y=\"\(top + 37)\" font-size=\"11\">\(escape(name))</text>\n"
            legendX += 34 + Double(name.count) * 6.2
        }
        // Grid lines and tick labels.
        for tick in axis.ticks {
            let ty = y(tick)
            out += "<line x1=\"\(plotLeft)\" x2=\"\(plotRight)\" y1=\"\(fmt(ty))\" y2=\"\(fmt(ty))\" stroke=\"#e3e3e3\"/>"
            out += "<text x=\"\(plotLeft - 6)\" y=\"\(fmt(ty + 4))\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">\(formatValue(tick))</text>\n"
        }
        out += "<line x1=\"\(plotLeft)\" x2=\"\(plotRight)\" y1=\"\(fmt(plotBottom))\" y2=\"\(fmt(plotBottom))\" stroke=\"#888\"/>\n"
        // Bars.
        let groupWidth = (plotRight - plotLeft) / Double(max(panel.groups.count, 1))
        let barWidth = min(56, groupWidth * 0.8 / Double(max(panel.series.count, 1)))
        for (groupIndex, group) in panel.groups.enumerated() {
            let groupLeft = plotLeft + Double(groupIndex) * groupWidth
            let barsLeft = groupLeft + (groupWidth - barWidth * Double(panel.series.count)) / 2
            for seriesIndex in panel.series.indices {
                let value = panel.values[groupIndex][seriesIndex]
                guard value.isFinite, !panel.logarithmic || value > 0 else { continue }
                let x = barsLeft + Double(seriesIndex) * barWidth
                let barTop = y(value)
                let isMarked = panel.marked.indices.contains(groupIndex) && panel.marked[groupIndex].indices.contains(seriesIndex)
                    && panel.marked[groupIndex][seriesIndex]
                let label = panel.label(value) + (isMarked ? "*" : "")
                out += "<rect x=\"\(fmt(x + 1))\" y=\"\(fmt(barTop))\" width=\"\(fmt(barWidth - 2))\" height=\"\(fmt(max(plotBottom - barTop, 0.5)))\" fill=\"\(color(seriesIndex))\"\(isMarked ? " fill-opacity=\"0.35\"" : "")><title>\(escape(group)) · \(escape(panel.series[seriesIndex])): \(label)</title></rect>"
                out += "<text x=\"\(fmt(x + barWidth / 2))\" y=\"\(fmt(barTop - 4))\" font-size=\"10\" text-anchor=\"middle\">\(escape(label))</text>\n"
            }
            // Shrink a label that would run into its neighbours (about 0.6 em per character).
            let fontSize = min(12, (groupWidth - 6) / (Double(max(group.count, 1)) * 0.6))
            out += "<text x=\"\(fmt(groupLeft + groupWidth / 2))\" y=\"\(fmt(plotBottom + 18))\" font-size=\"\(fmt(fontSize))\" text-anchor=\"middle\">\(escape(group))</text>\n"
        }
        return out + "</g>\n"
    }

    private func color(_ index: Int) -> String { Self.palette[index % Self.palette.count] }

    /// Splits `text` into lines of at most about `width` characters, at spaces.
    private func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        return lines + [line]
    }

    /// The value axis: from zero (linear) or the lowest decade (logarithmic) to a round maximum.
    private struct Axis {
        var ticks: [Double] = []
        var minimum = 0.0
        var maximum = 1.0
        let logarithmic: Bool

        init(values: [Double], logarithmic: Bool) {
            self.logarithmic = logarithmic
            let largest = values.max() ?? 1
            if logarithmic {
                let low = (values.min() ?? 1).log10Floor, high = (largest * 1.6).log10Ceil
                minimum = pow10(low)
                maximum = pow10(max(high, low + 1))
                ticks = (low...max(high, low + 1)).map(pow10)
            } else {
                let step = Self.niceStep(largest * 1.15 / 5)
                maximum = step * (largest * 1.15 / step).rounded(.up)
                if maximum <= 0 { maximum = 1 }
                ticks = stride(from: 0, through: maximum + step / 2, by: max(step, .leastNonzeroMagnitude)).map { $0 }
            }
        }

        func fraction(_ value: Double) -> Double {
            if logarithmic {
                let low = log10(minimum), high = log10(maximum)
                return min(max((log10(max(value, minimum)) - low) / (high - low), 0), 1)
            }
            return min(max(value / maximum, 0), 1)
        }

        static func niceStep(_ raw: Double) -> Double {
            guard raw > 0, raw.isFinite else { return 1 }
            let magnitude = pow10(raw.log10Floor)
            for multiple in [1.0, 2, 2.5, 5, 10] where multiple * magnitude >= raw { return multiple * magnitude }
            return 10 * magnitude
        }
    }
}

private func fmt(_ value: Double) -> String { String((value * 10).rounded() / 10) }

private func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

private func pow10(_ exponent: Int) -> Double {
    var value = 1.0
    if exponent >= 0 { for _ in 0..<exponent { value *= 10 } } else { for _ in 0..<(-exponent) { value /= 10 } }
    return value
}

extension Double {
    fileprivate var log10Floor: Int { Int(Glibc.log10(self).rounded(.down)) }
    fileprivate var log10Ceil: Int { Int(Glibc.log10(self).rounded(.up)) }
}
