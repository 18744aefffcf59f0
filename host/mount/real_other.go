//go:build !linux

package mount

import "errors"

func newRealBackend(string) (backend, error) {
	return nil, errors.New("mounts need Linux; use the simulated device (device = \"sim\")")
}
