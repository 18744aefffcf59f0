package mount

import (
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/internal/blockdev"
)

// Device is a block device with a filesystem, as the host's block-device
// table sees it.
type Device = blockdev.Device

// describe names d by its node and what identifies its filesystem.
func describe(d *Device) string {
	var facts []string
	if d.Label != "" {
		facts = append(facts, "label "+d.Label)
	}
	if d.UUID != "" {
		facts = append(facts, "uuid "+d.UUID)
	}
	if d.PartLabel != "" {
		facts = append(facts, "partlabel "+d.PartLabel)
	}
	if d.PartUUID != "" {
		facts = append(facts, "partuuid "+d.PartUUID)
	}
	if len(facts) == 0 {
		return d.Node
	}
	return fmt.Sprintf("%s (%s)", d.Node, strings.Join(facts, ", "))
}

// systemLabels are the device's own partitions on balenaOS. They are never
// mounted for a plugin, whatever its grant says.
var systemLabels = map[string]bool{
	"resin-boot": true, "resin-rootA": true, "resin-rootB": true, "resin-state": true, "resin-data": true,
	"balena-boot": true, "balena-rootA": true, "balena-rootB": true, "balena-state": true, "balena-data": true,
	"flash-boot": true, "flash-rootA": true, "flash-rootB": true, "flash-state": true, "flash-data": true,
}

// selector is a parsed source: label:X, uuid:X, partlabel:X, partuuid:X
// or device:/dev/X.
type selector struct{ kind, value string }

func parseSelector(s string) (selector, error) {
	kind, v, ok := strings.Cut(s, ":")
	if !ok || v == "" {
		return selector{}, fmt.Errorf("source %q: write label:NAME, uuid:UUID, partlabel:NAME, partuuid:UUID or device:/dev/NAME", s)
	}
	switch kind {
	case "label", "uuid", "partlabel", "partuuid":
	case "device":
		if !strings.HasPrefix(v, "/dev/") || strings.Contains(v, "/../") || strings.HasSuffix(v, "/..") {
			return selector{}, fmt.Errorf("source %q: a device is a path under /dev", s)
		}
	default:
		return selector{}, fmt.Errorf("source %q: unknown kind %q (use label:, uuid:, partlabel:, partuuid: or device:)", s, kind)
	}
	if strings.ContainsAny(v, "\x00\n") {
		return selector{}, fmt.Errorf("source %q contains a NUL or a newline", s)
	}
	return selector{kind, v}, nil
}

func (s selector) matches(d *Device) bool {
	switch s.kind {
	case "label":
		return d.Label == s.value
	case "uuid":
		return strings.EqualFold(d.UUID, s.value)
	case "partlabel":
		return d.PartLabel == s.value
	case "partuuid":
		return strings.EqualFold(d.PartUUID, s.value)
	default:
		return d.Node == s.value
	}
}

func (s selector) String() string { return s.kind + ":" + s.value }
