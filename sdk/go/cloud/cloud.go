// Package cloud lets an airlock plugin read and change this device's record
// in the balena cloud (its name, tags, variables, its fleet's facts)
// without ever holding the API key: the host makes each request with the
// key the platform gives it. Each function is one operation that
// plugin.toml must grant:
//
//	[cloud]
//	allow = ["device.read", "tags.read", "tags.set:location"]
//
// Importing this package adds the airlock_cloud_v1 import to the module, so
// the host refuses the plugin at load unless its manifest has a [cloud]
// section. Errors are *airlock.HostError values: test them with
// errors.Is(err, abi.Denied), abi.Unavailable, abi.Timeout...
package cloud

import (
	"strconv"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

// Operation names, as plugin.toml grants them and ABI.md §3.5 lists them.
const (
	OpDeviceRead = "device.read"
	OpNameSet    = "name.set"
	OpTagsRead   = "tags.read"
	OpTagSet     = "tags.set"    // granted per key: "tags.set:<key>"
	OpTagDelete  = "tags.delete" // granted per key: "tags.delete:<key>"
	OpEnvRead    = "env.read"
	OpConfigRead = "config.read"
	OpFleetRead  = "fleet.read"
)

// Call runs one cloud operation with a request record and returns the reply
// record. The typed functions below are built on it.
func Call(op string, req abi.Record) (abi.Record, error) {
	b := abi.AppendRecord(nil, req)
	res, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
		return hostCall(op, b, out, cap, n)
	})
	if err != nil {
		return nil, err
	}
	rec, err := abi.DecodeRecord(res)
	if err != nil {
		return nil, &airlock.HostError{Code: abi.Failed, Msg: "cloud " + op + ": unreadable reply: " + err.Error()}
	}
	return rec, nil
}

func field(k, v string) abi.Field { return abi.Field{Key: k, Value: []byte(v)} }

// Device is this device's identity in the cloud.
type Device struct{ UUID, Name string }

// ReadDevice returns this device's uuid and name. Grant: "device.read".
func ReadDevice() (Device, error) {
	r, err := Call(OpDeviceRead, nil)
	if err != nil {
		return Device{}, err
	}
	u, _ := r.Get("uuid")
	n, _ := r.Get("name")
	return Device{UUID: u, Name: n}, nil
}

// SetName renames this device (1 to 128 bytes of text). Grant: "name.set".
func SetName(name string) error {
	_, err := Call(OpNameSet, abi.Record{field("name", name)})
	return err
}

// Tags returns this device's tags, one field per tag, sorted by key.
// Grant: "tags.read".
func Tags() (abi.Record, error) { return Call(OpTagsRead, nil) }

// SetTag creates or updates a tag. Grant: "tags.set:<key>" (or "tags.set:*").
func SetTag(key, value string) error {
	_, err := Call(OpTagSet, abi.Record{field("key", key), field("value", value)})
	return err
}

// DeleteTag deletes a tag and reports whether the device had it.
// Grant: "tags.delete:<key>" (or "tags.delete:*").
func DeleteTag(key string) (bool, error) {
	r, err := Call(OpTagDelete, abi.Record{field("key", key)})
	if err != nil {
		return false, err
	}
	v, _ := r.Get("deleted")
	return v == "true", nil
}

func scope(fleet bool) abi.Record {
	if fleet {
		return abi.Record{field("scope", "fleet")}
	}
	return abi.Record{field("scope", "device")}
}

// Env returns the device's (or, with fleet, its fleet's) environment
// variables as the API stores them. Grant: "env.read".
func Env(fleet bool) (abi.Record, error) { return Call(OpEnvRead, scope(fleet)) }

// Config returns the device's (or its fleet's) configuration variables.
// Grant: "config.read".
func Config(fleet bool) (abi.Record, error) { return Call(OpConfigRead, scope(fleet)) }

// Fleet is this device's fleet.
type Fleet struct {
	ID                     int
	Name, Slug, DeviceType string
	Public                 bool
}

// ReadFleet returns this device's fleet. Grant: "fleet.read".
func ReadFleet() (Fleet, error) {
	r, err := Call(OpFleetRead, nil)
	if err != nil {
		return Fleet{}, err
	}
	var f Fleet
	id, _ := r.Get("id")
	f.ID, _ = strconv.Atoi(id)
	f.Name, _ = r.Get("name")
	f.Slug, _ = r.Get("slug")
	f.DeviceType, _ = r.Get("device_type")
	pub, _ := r.Get("is_public")
	f.Public = pub == "true"
	return f, nil
}
