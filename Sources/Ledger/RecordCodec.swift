import Foundation
import Schema
import SwiftProtobuf

/// A protobuf record that carries the schema revision that wrote it.
public protocol VersionedRecord: SwiftProtobuf.Message {
    var schemaVersion: UInt32 { get set }
}

extension Problem: VersionedRecord {}
extension TestSuite: VersionedRecord {}
extension Rollout: VersionedRecord {}
extension RunMetadata: VersionedRecord {}
extension EvalRun: VersionedRecord {}
extension EvalProblemResult: VersionedRecord {}

/// Revision of `Sources/Schema/proto/records.proto` this build writes. Readers accept any
/// record up to it; protobuf keeps unknown fields, so older readers skip newer fields.
public let recordSchemaVersion: UInt32 = 1

enum RecordCodec {
    static func encode<M: SwiftProtobuf.Message>(_ record: M) throws -> [UInt8] {
        try record.serializedBytes()
    }

    static func encodeVersioned<M: VersionedRecord>(_ record: M) throws -> [UInt8] {
        var copy = record
        copy.schemaVersion = recordSchemaVersion
        return try copy.serializedBytes()
    }

    static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: UnsafeRawBufferPointer,
                                                 table: String, key: @autoclosure () -> String) throws -> M {
        do {
            // A no-copy view: the bytes outlive the call, the message copies what it keeps.
            let data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!),
                            count: bytes.count, deallocator: .none)
            return try M(serializedBytes: data)
        } catch {
            throw LedgerError.corruptRecord(table: table, key: key(), reason: "\(error)")
        }
    }

    static func decodeVersioned<M: VersionedRecord>(_ type: M.Type, _ bytes: UnsafeRawBufferPointer,
                                                    table: String, key: @autoclosure () -> String) throws -> M {
        let record = try decode(type, bytes, table: table, key: key())
        if record.schemaVersion > recordSchemaVersion {
            throw LedgerError.newerSchema(table: table, key: key(), found: record.schemaVersion, supported: recordSchemaVersion)
        }
        return record
    }
}
