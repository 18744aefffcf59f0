// Command guest is the mount tests' plugin: it runs the commands in its
// [config] (on start: "start"; on a udev add of a partition labelled L:
// "add_L"), separated by ";", and logs each result on one line, so that a
// test can read what the host answered.
//
//	mount SOURCE [fstype=T] [target=N] [opt=O]...   unmount N   list
//	read PATH   write PATH TEXT   fill PATH BYTES   hold PATH   crash-once
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

var held []*os.File // files kept open by "hold"

func init() {
	airlock.OnStart(func() error { run("start"); return nil })
	airlock.OnUdev(func(e airlock.UEvent) error {
		if e.Action == "add" {
			run("add_" + e.Label())
		}
		return nil
	})
	airlock.OnMount(func(e airlock.MountEvent) error {
		line := fmt.Sprintf("mount-event action=%s target=%s source=%s device=%s reason=%q", e.Action, e.Target, e.Source, e.Device, e.Reason)
		if e.Owner != "" {
			line += " owner=" + e.Owner
			run("shared_" + e.Action + "_" + e.Target) // a reader's script for a view coming or going
		}
		airlock.Info(line)
		return nil
	})
}

func run(key string) {
	script, _ := airlock.Config(key)
	for _, c := range strings.Split(script, ";") {
		if f := strings.Fields(c); len(f) > 0 {
			airlock.Info(do(f))
		}
	}
}

func errText(err error) string {
	var he *airlock.HostError
	if errors.As(err, &he) {
		return "err=" + he.Code.String() + ": " + he.Msg
	}
	return "err=" + err.Error()
}

func do(f []string) string {
	head := strings.Join(f, " ")
	switch f[0] {
	case "mount":
		o := &airlock.MountOptions{}
		for _, a := range f[2:] {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "fstype":
				o.FSType = v
			case "target":
				o.Target = v
			case "opt":
				o.Options = append(o.Options, v)
			case "share":
				o.Share = append(o.Share, v)
			case "sharerw":
				o.ShareRW = true
			}
		}
		m, err := airlock.Mount.Source(f[1], o)
		if err != nil {
			return head + " " + errText(err)
		}
		line := fmt.Sprintf("%s ok target=%s path=%s device=%s readonly=%v options=%s driver=%s", head, m.Target, m.Path, m.Device, m.ReadOnly, strings.Join(m.Options, ","), m.Driver)
		if m.Note != "" {
			line += fmt.Sprintf(" note=%q", m.Note)
		}
		if m.Shared != "" {
			line += " shared=" + m.Shared
		}
		return line
	case "unmount":
		if err := airlock.Mount.Unmount(f[1]); err != nil {
			return head + " " + errText(err)
		}
		return head + " ok"
	case "list":
		ms, err := airlock.Mount.List()
		if err != nil {
			return head + " " + errText(err)
		}
		var ts, ds []string
		for _, m := range ms {
			t := m.Target
			if m.Owner != "" {
				t += "(from " + m.Owner + ")"
			}
			ts = append(ts, t)
			ds = append(ds, m.Driver)
		}
		return fmt.Sprintf("list n=%d targets=%s drivers=%s", len(ms), strings.Join(ts, ","), strings.Join(ds, ","))
	case "read":
		b, err := os.ReadFile(f[1])
		if err != nil {
			return head + " err=" + err.Error()
		}
		return fmt.Sprintf("%s = %q", head, string(b))
	case "mkdir":
		if err := os.MkdirAll(f[1], 0o755); err != nil {
			return head + " err=" + err.Error()
		}
		return head + " ok"
	case "write":
		// No MkdirAll: a write into a stick that is gone must fail as it
		// would for a real plugin, not make the directory again in the
		// media root (TestLoopYankAfterMount waits for it to go); mkdir
		// makes one on purpose.
		if err := os.WriteFile(f[1], []byte(strings.Join(f[2:], " ")), 0o644); err != nil {
			return head + " err=" + err.Error()
		}
		return head + " ok"
	case "fill": // fill PATH N: write N bytes in 4 KiB chunks, until an error
		n, _ := strconv.Atoi(f[2])
		fh, err := os.Create(f[1])
		if err != nil {
			return head + " err=" + err.Error()
		}
		defer fh.Close()
		chunk, wrote := make([]byte, 4096), 0
		for wrote < n {
			k, err := fh.Write(chunk[:min(len(chunk), n-wrote)])
			wrote += k
			if err != nil {
				return fmt.Sprintf("%s wrote=%d err=%v", head, wrote, err)
			}
		}
		return fmt.Sprintf("%s wrote=%d ok", head, wrote)
	case "hold":
		fh, err := os.Open(f[1])
		if err != nil {
			return head + " err=" + err.Error()
		}
		held = append(held, fh)
		return head + " ok"
	case "crash-once":
		if _, err := os.Stat("/data/crashed"); err != nil {
			os.WriteFile("/data/crashed", nil, 0o644)
			panic("crash-once")
		}
		return "crash-once already crashed"
	}
	return head + " unknown command"
}

func main() {}
