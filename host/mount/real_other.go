//go:build !linux

package mount

import (
	"errors"

	"github.com/airlockhq/airlock/host/devnode"
)

func newRealBackend(string, *devnode.Nodes) (backend, error) {
	return nil, errors.New("mounts need Linux; use the simulated device (device = \"sim\")")
}
