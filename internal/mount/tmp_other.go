//go:build !linux

package mount

import "errors"

var errNoTmpfs = errors.New("no tmpfs: mounts need Linux")

func mountTmpfs(string, uint64) error { return errNoTmpfs }

func unmountAllUnder(string) []string { return nil }
