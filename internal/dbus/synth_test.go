package dbus

import (
	"bytes"
	"strings"
	"testing"

	godbus "github.com/godbus/dbus/v5"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// TestSynthesizeSignalBody: a synthetic signal carries the arguments its
// body (JSON) gives for its signature, encoded as a real signal's are; a
// body that does not fit the signature is refused with the argument.
func TestSynthesizeSignalBody(t *testing.T) {
	d := New()
	base := []string{"path=/org/freedesktop/timedate1", "interface=org.freedesktop.DBus.Properties", "member=PropertiesChanged"}
	syn, err := d.Synthesize(nil, append(base, "signature=sa{sv}as", `body=["org.freedesktop.timedate1",{"NTPSynchronized":true,"Timezone":"UTC"},["LocalRTC"]]`))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := abi.DecodeRecord(syn.Event.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := rec.Get("signature")
	body, _ := rec.Get("body")
	want, err := encodeBody("sa{sv}as", []any{"org.freedesktop.timedate1",
		map[string]godbus.Variant{"NTPSynchronized": godbus.MakeVariant(true), "Timezone": godbus.MakeVariant("UTC")}, []string{"LocalRTC"}}, DefaultConfig().MaxReply)
	if err != nil {
		t.Fatal(err)
	}
	if sig != "sa{sv}as" || !bytes.Equal([]byte(body), want) {
		t.Errorf("signature %q body %x, want sa{sv}as %x", sig, body, want)
	}
	if s, _ := rec.Get(capability.SynthKey); s != capability.SynthValue {
		t.Errorf("not marked synthetic: %q", s)
	}
	// Every basic type, a struct and a dict with integer keys.
	if _, err := d.Synthesize(nil, append(base, "signature=ybnqiuxtdsog(si)a{ub}", `body=[1,true,-2,3,-4,5,-6,7,0.5,"s","/o","as",["x",1],{"7":false}]`)); err != nil {
		t.Errorf("all types: %v", err)
	}
	for args, msg := range map[string]string{
		`signature=s|body=[1]`:              `argument 0 (s): 1 (JSON float64) is not a D-Bus s`,
		`signature=ss|body=["a"]`:           `body has 1 arguments; signature "ss" has 2`,
		`signature=y|body=[256]`:            `is not a D-Bus y`,
		`signature=s|body=nope`:             `body: write a JSON array of the arguments`,
		`signature=a{sv}|body=[{"k":null}]`: `cannot be a variant`,
		`signature=q(|body=[]`:              `dbus signal arguments:`,
		`sender=:1.5`:                       `dbus property sender: a signal has a path, an interface, a member, a signature and a body`,
	} {
		_, err := d.Synthesize(nil, append(base, strings.Split(args, "|")...))
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", args, err, msg)
		}
	}
}
