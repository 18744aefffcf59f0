// Package clitest holds tests that use airlock as a plugin author does: the
// airlock binary as a subprocess, in a directory outside the checkout.
package clitest
