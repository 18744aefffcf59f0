//go:build !linux

package devnode

import "errors"

// Path needs Linux.
func (n *Nodes) Path(name string, major, minor uint32) (string, func(), error) {
	return "", nil, errors.New("device nodes need Linux")
}

// Clean has nothing to do off Linux.
func (n *Nodes) Clean() error { return nil }
