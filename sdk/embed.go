// Package sdk carries the source of the guest SDKs, so that the airlock
// binary can write them into a new plugin's project (airlock new) until
// they are published: the Go SDK (this module), the Rust crate, the
// AssemblyScript package and the C header. It is for the host's tools; a
// plugin imports github.com/airlockhq/airlock/sdk/go instead.
package sdk

import "embed"

// Version is the version of every SDK here: the Go module's, the Rust
// crate's and the npm package's (TestSDKVersions keeps them the same).
const Version = "0.1.0"

// Files holds each SDK as a package of its language: go.mod and go/ (the Go
// module), rust/ (a crate), assemblyscript/ (an npm package) and
// c/airlock.h.
//
//go:embed go.mod go
//go:embed rust/Cargo.toml rust/README.md rust/src
//go:embed assemblyscript/package.json assemblyscript/README.md assemblyscript/asconfig.json assemblyscript/assembly
//go:embed c/airlock.h c/README.md
var Files embed.FS
