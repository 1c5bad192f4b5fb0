#!/bin/sh
# Regenerates Sources/Schema/*.pb.swift from Sources/Schema/proto/*.proto.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift built from the same
# swift-protobuf version the package depends on (1.39.0):
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0
#   swift build -c release --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=$PWD/.build/release/protoc-gen-swift scripts/generate-schema.sh
# The generated files are committed, so a normal build needs neither tool.
set -eu
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}
protoc --plugin=protoc-gen-swift="$plugin" \
  --swift_out=Sources/Schema --swift_opt=Visibility=Public \
  -I Sources/Schema/proto Sources/Schema/proto/records.proto Sources/Schema/proto/wire.proto
