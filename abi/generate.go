package abi

// The Go SDK is a module of its own with no dependencies, so it carries a
// copy of this package's code (abi/RATIONALE.md says why). Change the code
// here, then run go generate ./abi; TestSDKCopyIsCurrent fails until then.
//
//go:generate sh -c "cp abi.go errno.go record.go wiretable.go ../sdk/go/abi/"
