// How the tables and the progress lines print numbers: one and two decimals, ratios as "1.23×",
// and "-" for a value that is not there (NaN: a runtime that did not run, a percentile wrk did
// not report).

func format1(_ value: Double) -> String {
    value.isFinite ? String(Double(Int((value * 10).rounded())) / 10) : "-"
}

func format2(_ value: Double) -> String {
    value.isFinite ? String(Double(Int((value * 100).rounded())) / 100) : "-"
}

/// A ratio as "1.23×"; "-" where a runtime of it did not run.
func formatRatio(_ value: Double) -> String {
    value.isFinite ? format2(value) + "×" : "-"
}

/// A value with at most three significant digits, and k/M suffixes for large ones.
func formatValue(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    let magnitude = abs(value)
    if magnitude >= 1e6 { return trimmed(value / 1e6) + "M" }
    if magnitude >= 1e4 { return trimmed(value / 1e3) + "k" }
    return trimmed(value)
}

/// `value` with three decimals to none, fewer the larger it is, trailing zeros dropped.
private func trimmed(_ value: Double) -> String {
    let magnitude = abs(value)
    let decimals = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    if decimals == 0 { return String(Int(rounded)) }
    var text = String(rounded)
    if text.contains("e") { return String(rounded) }
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
}
