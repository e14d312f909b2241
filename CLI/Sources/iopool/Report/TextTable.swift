/// The tables every `iopool bench` benchmark prints on stdout: fixed-width columns (a cell wider
/// than its column keeps one space before the next), the last column unpadded, with lines of
/// heading above the column titles and notes below the rows. One place for the layout, so that
/// every benchmark's table lines up the same way.
struct TextTable {
    struct Column {
        var title: String
        /// Characters the column takes, its separating space included; unused for the last column.
        var width: Int
    }

    /// What was measured, how, where: printed above the column titles.
    var heading: [String] = []
    var columns: [Column]
    var rows: [[String]] = []
    /// Printed below the rows (what the columns mean).
    var notes: [String] = []

    init(heading: [String] = [], columns: [(title: String, width: Int)], notes: [String] = []) {
        self.heading = heading
        self.columns = columns.map { Column(title: $0.title, width: $0.width) }
        self.notes = notes
    }

    /// The column titles, as one line.
    var titleLine: String { line(columns.map(\.title)) }

    /// One row's cells (one per column), as one line.
    func line(_ cells: [String]) -> String {
        precondition(cells.count == columns.count, "a row of \(cells.count) cells in a table of \(columns.count) columns")
        return zip(cells, columns).enumerated().map { index, cell in
            index == columns.count - 1 ? cell.0 : Self.pad(cell.0, cell.1.width)
        }.joined()
    }

    mutating func append(_ cells: [String]) {
        rows.append(cells)
    }

    /// The heading, the titles, the rows and the notes, on stdout.
    func print() {
        for line in heading { printLine(line) }
        printLine(titleLine)
        for row in rows { printLine(line(row)) }
        for line in notes { printLine(line) }
    }

    /// `text` padded with spaces to `width`, or followed by one space where it is as wide or wider.
    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
