//go:build !linux

package udev

import (
	"context"
	"errors"
	"log/slog"
)

var errOverflow = errors.New("netlink receive queue overflowed; events were lost")

// Uevents are Linux's; elsewhere only replay works.
type netlinkSource struct{}

func (netlinkSource) String() string { return "netlink (unsupported)" }
func (netlinkSource) open() error {
	return errors.New("netlink uevents need Linux; use source = \"replay\"")
}
func (netlinkSource) close()                                      {}
func (netlinkSource) run(context.Context, func(UEvent)) error     { return nil }
func udevdHere() bool                                             { return false }
func newNetlinkSource(bool, *slog.Logger, int, *lossCount) source { return netlinkSource{} }
func quietProbeError(error) bool                                  { return false }
