package abi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSDKCopyIsCurrent: the Go SDK's copy of this package (sdk/go/abi, in
// the SDK's own module) is this package's code, to the byte.
func TestSDKCopyIsCurrent(t *testing.T) {
	for _, f := range []string{"abi.go", "errno.go", "record.go", "wiretable.go"} {
		here, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		there, err := os.ReadFile(filepath.Join("..", "sdk", "go", "abi", f))
		if err != nil || !bytes.Equal(here, there) {
			t.Errorf("sdk/go/abi/%s is not a copy of abi/%s (%v): run go generate ./abi", f, f, err)
		}
	}
	copies, _ := filepath.Glob(filepath.Join("..", "sdk", "go", "abi", "*.go"))
	if len(copies) != 4 {
		t.Errorf("sdk/go/abi holds %v; want the four files go generate ./abi copies", copies)
	}
}
