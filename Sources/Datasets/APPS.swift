import Foundation
import Schema

/// APPS (Hendrycks et al., 2021) in its native folder layout: one folder per problem
/// (`question.txt`, `input_output.json`, `metadata.json`, optional `solutions.json`,
/// `starter_code.py`, and CodeRL's `example_input_output.json`), plus CodeRL's merged
/// example-test file for the test split (`coderl_test_example_tests.json`, keyed by id).
public enum APPS {
    /// `directory` is a split folder (`train/`, `test/`, holding `NNNN/` folders) or a root
    /// holding split folders. `split` names the split of a folder whose name does not say
    /// it, or picks one split of a root.
    public static func read(directory: String, split: String? = nil, exampleTestsFile: String? = nil) throws -> DatasetContents {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        guard Files.isDirectory(root) else { throw DatasetFileError(path: directory, reason: "is not a directory") }
        let entries = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        let problemFolders = entries.filter { isProblemID($0) && Files.isDirectory(root + "/" + $0) }
        var splits: [(name: String, path: String)] = []
        if !problemFolders.isEmpty {
            let name = split ?? URL(fileURLWithPath: root).lastPathComponent
            guard ["train", "test"].contains(name) || split != nil else {
                throw DatasetFileError(path: directory, reason: "cannot tell the split from the folder name '\(name)': give --split train or --split test")
            }
            splits = [(name, root)]
        } else {
            for name in ["train", "test"] where Files.isDirectory(root + "/" + name) && (split == nil || split == name) {
                splits.append((name, root + "/" + name))
            }
            guard !splits.isEmpty else {
                throw DatasetFileError(path: directory, reason: "holds neither APPS problem folders (NNNN/) nor train/ or test/ folders")
            }
        }
        // CodeRL's example tests: given, or beside the folders.
        let parent = URL(fileURLWithPath: root).deletingLastPathComponent().path
        let exampleFile = exampleTestsFile ?? [root, parent].map { $0 + "/coderl_test_example_tests.json" }.first(where: Files.exists)
        var merged: JSON?
        if let exampleFile {
            merged = try Files.json(exampleFile, record: "")
            guard case .object? = merged else {
                throw DatasetFileError(path: exampleFile, reason: "expected a JSON object keyed by 4-digit APPS test ids")
            }
        }

        var contents = DatasetContents()
        var notes: [String] = []
        for (name, path) in splits {
            let folders = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                .filter { isProblemID($0) && Files.isDirectory(path + "/" + $0) }
            for id in folders {
                // CodeRL's merged file covers the test split only.
                let fallback = name == "test" ? merged.map { ($0[id], exampleFile!) } : nil
                contents.add { try problem(folder: path + "/" + id, id: id, split: name, mergedExamples: fallback, notes: &notes) }
            }
        }
        contents.notes += notes
        return contents
    }

    /// The imports APPS's harness (testing_util.py) puts in front of every solution, less
    /// `import numpy as np` (numpy is optional here and costs ~100 ms per process).
    public static let prelude = """
        import sys
        import time
        import itertools
        from itertools import accumulate, product, permutations, combinations
        import collections
        from collections import Counter, OrderedDict, deque, defaultdict, ChainMap
        from functools import lru_cache
        import math
        from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2
        import fractions
        from typing import List, Tuple
        import random
        import heapq
        from heapq import *

        """

    /// One APPS test file (`input_output.json`, with or without `fn_name`) as a test suite.
    public static func testSuite(file: String) throws -> TestSuite {
        let json = try Files.json(file, record: "")
        return try suite(json, entryPoint: json["fn_name"]?.stringValue ?? "", file: file, record: "")
    }

    static func isProblemID(_ name: String) -> Bool { name.count == 4 && name.allSatisfy(\.isNumber) }

    static func problem(folder: String, id: String, split: String, mergedExamples: (JSON?, String)?,
                        notes: inout [String]) throws -> ImportedProblem {
        func file(_ name: String) -> String { folder + "/" + name }
        let record = "problem \(split)/\(id)"
        func fail(_ name: String, _ field: String, _ reason: String) -> DatasetError {
            DatasetError(file: file(name), record: record, field: field, reason: reason)
        }
        var problem = Problem()
        problem.id = "apps/\(split)/\(id)"
        problem.source = "apps"
        problem.split = split
        problem.origin = folder
        guard Files.exists(file("question.txt")) else { throw fail("question.txt", "", "is missing") }
        problem.prompt = try Files.text(file("question.txt"))
        if problem.prompt.trimmingSpaces.isEmpty { throw fail("question.txt", "", "is empty") }
        if Files.exists(file("starter_code.py")) { problem.starterCode = try Files.text(file("starter_code.py")) }

        if Files.exists(file("metadata.json")) {
            let meta = RecordReader(file: file("metadata.json"), record: record, json: try Files.json(file("metadata.json"), record: record))
            problem.difficulty = try meta.string("difficulty")
            problem.url = try meta.string("url", required: false)
        }
        if Files.exists(file("solutions.json")) {
            let solutions = RecordReader(file: file("solutions.json"), record: record,
                                         json: .object([("solutions", try Files.json(file("solutions.json"), record: record))]))
            problem.solutions = try solutions.strings("solutions")
        }

        guard Files.exists(file("input_output.json")) else { throw fail("input_output.json", "", "is missing (no hidden tests)") }
        let io = try Files.json(file("input_output.json"), record: record)
        let fnName = RecordReader(file: file("input_output.json"), record: record, json: io)
        let entryPoint = try fnName.string("fn_name", required: false)
        problem.entryPoint = entryPoint
        let hidden = try suite(io, entryPoint: entryPoint, file: file("input_output.json"), record: record)
        guard !hidden.cases.isEmpty else { throw fail("input_output.json", "inputs", "has no test cases") }

        var example: TestSuite?
        var exampleJSON: (JSON, String)?
        if Files.exists(file("example_input_output.json")) {
            exampleJSON = (try Files.json(file("example_input_output.json"), record: record), file("example_input_output.json"))
        } else if let (value, path) = mergedExamples, let value, !value.isNull {
            exampleJSON = (value, path)
        }
        if let (json, path) = exampleJSON {
            do {
                let candidate = try suite(json, entryPoint: entryPoint, file: path, record: record)
                example = candidate.cases.isEmpty ? nil : candidate
            } catch let error as DatasetError where !entryPoint.isEmpty {
                // CodeChain's call-based examples are statement text ("arr = [2,3], k = 5"),
                // not argument lists: they cannot be run, so the problem keeps none.
                notes.append("\(record): example tests left out, they are not runnable calls (\(error.reason))")
            }
        }
        return ImportedProblem(problem: problem, exampleTests: example, hiddenTests: hidden)
    }

    /// `{"inputs": [...], "outputs": [...], "fn_name"?: ...}` as a test suite.
    static func suite(_ json: JSON, entryPoint: String, file: String, record: String) throws -> TestSuite {
        let reader = RecordReader(file: file, record: record, json: json)
        guard case .object = json else { throw reader.fail("", "expected an object with inputs and outputs, found \(json.typeName)") }
        guard let inputs = json["inputs"]?.arrayValue else { throw reader.fail("inputs", "expected a list") }
        guard let outputs = json["outputs"]?.arrayValue else { throw reader.fail("outputs", "expected a list") }
        guard inputs.count == outputs.count else {
            throw reader.fail("outputs", "\(outputs.count) outputs for \(inputs.count) inputs")
        }
        var suite = TestSuite()
        suite.prelude = prelude
        suite.entryPoint = entryPoint
        suite.format = entryPoint.isEmpty ? .stdio : .call
        for (i, (input, output)) in zip(inputs, outputs).enumerated() {
            var test = TestCase()
            if entryPoint.isEmpty {
                test.input = try text(input, reader, "inputs[\(i)]")
                test.expected = try text(output, reader, "outputs[\(i)]")
            } else {
                guard case .array = input else { throw reader.fail("inputs[\(i)]", "expected the list of call arguments, found \(input.typeName)") }
                test.input = input.text
                test.expected = output.text
            }
            suite.cases.append(test)
        }
        return suite
    }

    /// Standard-input tests are text; a few APPS records give a list of lines instead,
    /// which APPS's own harness joins with newlines.
    static func text(_ value: JSON, _ reader: RecordReader, _ field: String) throws -> String {
        switch value {
        case .string(let s): return s
        case .array(let lines) where lines.allSatisfy({ $0.stringValue != nil }):
            return lines.compactMap(\.stringValue).joined(separator: "\n")
        default: throw reader.fail(field, "expected text, found \(value.typeName)")
        }
    }
}
