module github.com/airlockhq/airlock/sdk

// The guest SDKs. The Go SDK (package github.com/airlockhq/airlock/sdk/go)
// has no dependencies: a plugin needs nothing else to build.
go 1.24
