import ArgumentParser
import Foundation
import Ledger

/// `coderl ledger`: checks of a ledger as a whole.
struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Check a ledger: verify reads and decodes every entry of every table.",
        discussion: """
            Examples:
              coderl ledger verify runs/demo/ledger
            """,
        subcommands: [LedgerVerify.self])
}

/// `coderl ledger verify PATH`. A truncated data file is refused when any command opens it;
/// damage inside its pages is not (LMDB keeps no checksums) and can crash the reader, so the
/// walk runs in a child process and a crash becomes a report naming the table.
struct LedgerVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Read every entry of every table of a ledger in a child process and report what is damaged.",
        discussion: """
            Every value is decoded as its table's record (problems, test suites, rollouts, \
            verdicts, prompts, evaluations) and every key's length is checked. The walk runs in \
            a child process: a damaged page that crashes the reader (SIGSEGV, SIGBUS) is reported \
            with the table being read, and this command exits 1. Exit status: 0 when every entry \
            reads, 1 when something is damaged or the ledger cannot be opened. The ledger is only \
            read.

            Examples:
              coderl ledger verify runs/demo/ledger
            """)

    @Argument(help: "Ledger directory (holds data.mdb).") var path: String
    @Flag(name: .customLong("walk-here"), help: .hidden) var walkHere = false

    func run() throws {
        if walkHere { return try walk() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["ledger", "verify", path, "--walk-here"]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var current: String? = nil
        var damaged = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            switch fields.first {
            case "table": current = fields.count > 1 ? fields[1] : nil
            case "done" where fields.count >= 4:
                let bad = Int(fields[3]) ?? 0
                damaged += bad
                print("  \(fields[1].padding(toLength: 14, withPad: " ", startingAt: 0)) \(fields[2].leftPadded(10)) entries  \(bad == 0 ? "ok" : "\(bad) damaged")")
                current = nil
            case "example" where fields.count >= 3: print("      \(fields[2])")
            default: print(line)
            }
        }
        if process.terminationReason == .uncaughtSignal {
            let signal = process.terminationStatus
            let name = signal == SIGSEGV ? "SIGSEGV" : signal == SIGBUS ? "SIGBUS" : "signal \(signal)"
            throw CLIError("\(path): reading \(current.map { "table '\($0)'" } ?? "the ledger") crashed the reader (\(name)): its pages are damaged there. Restore the ledger from a copy; `mdb_dump -a` may save the tables that read.")
        }
        guard process.terminationStatus == 0 else {
            throw CLIError("\(path): " + errorText.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "Error: ", with: ""))
        }
        if damaged > 0 {
            throw CLIError("\(path): \(damaged) damaged entr\(damaged == 1 ? "y" : "ies")")
        }
        print("\(path): every entry reads")
    }

    /// The child: tab-separated lines (table, done, example) for the parent.
    func walk() throws {
        // Unbuffered: each table's name is out before it is read.
        func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        let ledger = try Ledger.openForReading(path: path)
        let reports = try ledger.walk { table in say("table\t\(table)") }
        for report in reports {
            for example in report.examples { say("example\t\(report.table)\t\(example)") }
            say("done\t\(report.table)\t\(report.entries)\t\(report.damaged)")
        }
    }
}
