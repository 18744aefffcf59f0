//go:build !linux

package mount

import (
	"errors"

	"github.com/airlockhq/airlock/internal/blockdev"
	"github.com/airlockhq/airlock/internal/devnode"
)

func newRealBackend(string, *devnode.Nodes, *blockdev.Table) (backend, error) {
	return nil, errors.New("mounts need Linux; use the simulated device (device = \"sim\")")
}
