package dbus

// Internals for the external tests.
var (
	EncodeBody = encodeBody
	DecodeBody = decodeBody
)
