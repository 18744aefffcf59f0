package capability

import "github.com/airlockhq/airlock/host/manifest"

// Bounded is a grant, or a set of trigger rules, that can be compared with
// the ceiling its capability decoded from [trust.vendor.ceiling.<name>].
// excess names, in the grant's own words, what lies outside the ceiling.
// Capabilities implement it on their grant types; a grant that does not is
// allowed whole when the ceiling names its capability. The trust policy
// (package bundle, CheckCeiling) holds a vendor's plugin to it.
type Bounded interface {
	Within(ceiling any) (ok bool, excess []string)
}

// CeilingDecoder is a capability whose ceiling has a shape of its own (the
// dbus ceiling names destinations, not whole call rules). Without it the
// ceiling table is decoded as a grant, by DecodeGrant.
type CeilingDecoder interface {
	DecodeCeiling(s manifest.Section) (any, error)
}
