package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/admin"
)

// adminFlags are the flags that find a running host's admin socket.
type adminFlags struct {
	config, socket *string
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		config: fs.String("config", defaultConfig(), "the runtime config of the running host (its [admin] socket)"),
		socket: fs.String("socket", "", "the admin socket's path (default: from --config)"),
	}
}

func (a adminFlags) client() (*admin.Client, error) {
	if *a.socket != "" {
		return admin.NewClient(*a.socket), nil
	}
	rt, err := manifest.LoadRuntime(*a.config, host.RuntimeSections(builtin.Capabilities()))
	if err != nil {
		return nil, err
	}
	if rt.Admin.Socket == "off" {
		return nil, fmt.Errorf("the admin socket is off in %s ([admin] socket = \"off\")", *a.config)
	}
	return admin.NewClient(rt.Admin.Socket), nil
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [--config runtime.toml] [--socket PATH] [--json]", stderr)
	af := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseN(fs, args, 0, stdout); err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printReport(stdout, rep)
	return nil
}

func printReport(w io.Writer, rep admin.Report) {
	reload := "off"
	if rep.Reload {
		reload = "on"
	}
	fmt.Fprintf(w, "airlock host pid %d, device %s, reload %s", rep.PID, rep.Device, reload)
	if rep.Metrics != "" {
		fmt.Fprintf(w, ", metrics on %s", rep.Metrics)
	}
	fmt.Fprintf(w, "\n\n")
	if len(rep.Plugins) == 0 {
		fmt.Fprintln(w, "no plugins running")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PLUGIN\tVERSION\tSTATE\tRESTARTS\tQUEUE\tDROPPED\tGRANTS\tTRIGGERS")
		for _, p := range rep.Plugins {
			grants := strings.Join(p.Grants, ",")
			if grants == "" {
				grants = "-"
			}
			trig := strings.Join(p.Triggers, ",")
			if trig == "" {
				trig = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d\t%d\t%s\t%s\n", p.Name, p.Version, p.State, p.Restarts, p.Queue, p.QueueCap, p.Dropped, grants, trig)
		}
		tw.Flush()
		first := true
		for _, p := range rep.Plugins {
			if p.LastError == "" {
				continue
			}
			if first {
				fmt.Fprintf(w, "\nlast errors:\n")
				first = false
			}
			fmt.Fprintf(w, "  %s: %s\n", p.Name, p.LastError)
		}
		printLosses(w, rep.Plugins)
	}
	if len(rep.Failed) > 0 {
		fmt.Fprintf(w, "\nnot loaded:\n")
		for _, f := range rep.Failed {
			fmt.Fprintf(w, "  %s:\n", f.Dir)
			for _, line := range strings.Split(f.Error, "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	if len(rep.Waiting) > 0 {
		fmt.Fprintf(w, "\nbundles not pulled yet:\n")
		for _, b := range rep.Waiting {
			fmt.Fprintf(w, "  %s:\n    %s\n", b.Ref, b.Status())
			if b.Error != "" {
				for i, line := range strings.Split(b.Error, "\n") {
					if i == 0 {
						line = "last error: " + line
					}
					fmt.Fprintf(w, "    %s\n", line)
				}
			}
			if b.Earlier != "" {
				fmt.Fprintf(w, "    meanwhile the cached %s runs\n", b.Earlier)
			}
		}
	}
	for _, src := range rep.Sources {
		if src.Overflows > 0 {
			fmt.Fprintf(w, "\n%s source overflowed %d times and lost %d events before any plugin's queue (see [udev] receive_buffer)\n", src.Source, src.Overflows, src.Lost)
		}
	}
	if rep.AuditFailures > 0 {
		fmt.Fprintf(w, "\naudit records not written to the audit log: %d (they went to stderr; check the disk and log.audit in runtime.toml)\n", rep.AuditFailures)
	}
}

// triggerSynopsis lists the event kinds of the built-in capabilities, as
// each describes its arguments.
func triggerSynopsis() string {
	var b strings.Builder
	b.WriteString("trigger [--config runtime.toml] [--socket PATH] <plugin> <event>\n\nEvents:\n")
	for _, s := range host.Synthesizers(builtin.Capabilities()) {
		h := s.SynthHelp()
		what := strings.ReplaceAll(h.What, "\n", "\n"+strings.Repeat(" ", 45))
		use := s.SynthKind() + " " + h.Usage
		if len(use) > 42 {
			use += "\n" + strings.Repeat(" ", 45)
		}
		fmt.Fprintf(&b, "  %-43s%s\n", use, what)
	}
	b.WriteString(`
The event goes through the plugin's queue like a real one, marked
AIRLOCK_SYNTH=trigger, and the request is written to the audit log.`)
	return b.String()
}

func cmdTrigger(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("trigger", triggerSynopsis(), stderr)
	af := addAdminFlags(fs)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	req, err := triggerRequest(fs.Args())
	if err != nil {
		return usageError(fs, "%v", err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := c.Trigger(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queued %s for %s\n", rep.Event, req.Plugin)
	return nil
}

// triggerRequest reads <plugin> <kind> and the kind's arguments, which its
// synthesizer describes: the host checks them against the plugin.
func triggerRequest(args []string) (admin.TriggerRequest, error) {
	if len(args) < 2 {
		return admin.TriggerRequest{}, fmt.Errorf("name a plugin and an event")
	}
	r := admin.TriggerRequest{Plugin: args[0], Kind: args[1]}
	s, err := capability.FindSynth(host.Synthesizers(builtin.Capabilities()), r.Kind)
	if err != nil {
		return r, err
	}
	r.Args, err = capability.SynthArgs(r.Kind, s.SynthHelp(), args[2:])
	return r, err
}

// printLosses lists, for each plugin that lost or coalesced events, the
// counts by kind: DROPPED in the table is their sum.
func printLosses(w io.Writer, plugins []admin.PluginReport) {
	byKind := func(m map[string]uint64) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
		return strings.Join(parts, " ")
	}
	first := true
	for _, p := range plugins {
		if p.Dropped == 0 && p.Coalesced == 0 {
			continue
		}
		if first {
			fmt.Fprintf(w, "\nevents lost (dropped: never delivered; coalesced: replaced by a newer one):\n")
			first = false
		}
		fmt.Fprintf(w, "  %s: dropped %d", p.Name, p.Dropped)
		if p.Dropped > 0 {
			fmt.Fprintf(w, " (%s; %d over limits.events_per_second)", byKind(p.DroppedByKind), p.RateLimited)
		}
		fmt.Fprintf(w, ", coalesced %d", p.Coalesced)
		if p.Coalesced > 0 {
			fmt.Fprintf(w, " (%s)", byKind(p.CoalescedByKind))
		}
		fmt.Fprintln(w)
	}
}
