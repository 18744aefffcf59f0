package testenv

import (
	"context"
	"fmt"
	"os"

	"github.com/airlockhq/airlock/internal/isolate"
)

// isolateChild, set by IsolateCompiler, makes a test binary started with
// "--" and the child's flags compile a module, as airlock's binary does
// for airlock run.
const isolateChild = "AIRLOCK_ISOLATE_CHILD"

// IsolateChild, called first in a TestMain, makes the test binary the
// child that IsolateCompiler starts: it compiles and exits.
func IsolateChild() {
	for i, a := range os.Args {
		if a == "--" && os.Getenv(isolateChild) == "1" {
			if err := isolate.Main(os.Args[i+1:], os.Stdin); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
}

// IsolateCompiler is isolate.Compiler with this test binary as the child;
// its TestMain must call IsolateChild.
func IsolateCompiler(l isolate.Limits) func(ctx context.Context, cacheDir string, wasm []byte, closeOnContextDone bool) error {
	os.Setenv(isolateChild, "1")
	return isolate.Compiler(os.Args[0], []string{"-test.run=^$", "--"}, l)
}
