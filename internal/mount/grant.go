package mount

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/host/manifest"
)

// Grant is a plugin's [[mount]] tables: which devices it may mount, with
// which filesystems and extra options, and where its media root appears.
type Grant struct {
	Rules []Rule
	// Target is where the plugin sees its media root: "/media".
	Target string
	// Accepts are the plugins whose shared mounts this plugin takes (a
	// [[mount]] table with from): true where it takes them read-write.
	Accepts map[string]bool
}

// Rule is one [[mount]] table. A mount is allowed when one rule matches
// the resolved device (one of Sources), its fstype and every extra option.
type Rule struct {
	Sources []string // "label:MEDIA*", "uuid:*", "device:/dev/sd*"; globs as path.Match
	FSTypes []string
	Options []string // "sync", or "uid=" (any value), or "uid=1000" (that value)
}

type ruleTOML struct {
	Source  []string `toml:"source"`
	FSType  []string `toml:"fstype"`
	Options []string `toml:"options"`
	Target  string   `toml:"target"`
	From    []string `toml:"from"` // share.go
	Mode    string   `toml:"mode"`
}

var errBadGrant = errors.New("bad [[mount]] grant")

// DefaultTarget is the guest path of the media root when [[mount]] names none.
const DefaultTarget = "/media"

func decodeGrant(s manifest.Section) (*Grant, error) {
	var raw []ruleTOML
	if !s.Decode(&raw) {
		return nil, errBadGrant
	}
	g := &Grant{}
	ok := true
	bad := func(i int, key, hint, format string, args ...any) {
		ok = false
		s.Errorf(fmt.Sprintf("[%d].%s", i+1, key), hint, format, args...)
	}
	for i, r := range raw {
		if len(r.From) > 0 || r.Mode != "" {
			decodeAccept(g, i, r, bad) // share.go
			continue
		}
		if len(r.Source) == 0 {
			bad(i, "source", `list the devices it may mount, such as ["label:MEDIA*", "uuid:*"]`, "no source is granted")
		}
		for _, src := range r.Source {
			kind, pat, _ := strings.Cut(src, ":")
			switch {
			case !slices.Contains(sourceKinds, kind):
				bad(i, "source", `write "label:PATTERN", "uuid:PATTERN", "partlabel:PATTERN", "partuuid:PATTERN" or "device:/dev/PATTERN"`, "source %q has no label:, uuid:, partlabel:, partuuid: or device: prefix", src)
			case pat == "":
				bad(i, "source", `use "*" for any value`, "source %q has an empty pattern", src)
			case kind == "device" && !strings.HasPrefix(pat, "/dev/"):
				bad(i, "source", `device patterns are paths under /dev, such as "device:/dev/sd*"`, "source %q is not under /dev", src)
			default:
				if _, err := path.Match(pat, ""); err != nil {
					bad(i, "source", "fix the glob: * ? and [a-z] are allowed", "source %q: %v", src, err)
				}
			}
		}
		if len(r.FSType) == 0 {
			bad(i, "fstype", `list them, such as ["vfat", "exfat", "ext4"]`, "no fstype is granted")
		}
		for _, fs := range r.FSType {
			if _, known := fsTable[fs]; !known {
				hint := "supported: " + strings.Join(fsNames(), ", ")
				if c := closest(fs, fsNames()); c != "" {
					hint = fmt.Sprintf("did you mean %q? ", c) + hint
				}
				bad(i, "fstype", hint, "unknown fstype %q", fs)
			}
		}
		for _, o := range r.Options {
			key, _, _ := strings.Cut(o, "=")
			if err := checkOptionText(o); err != nil {
				bad(i, "options", "write one option per string", "%v", err)
				continue
			}
			if forcedOff[key] {
				bad(i, "options", "nosuid, nodev and noexec are always forced on mounts from plugins", "option %q can never be granted", o)
				continue
			}
			supported := false
			for _, fs := range r.FSType {
				if fsTable[fs] != nil && fsTable[fs].allows(key) {
					supported = true
				}
			}
			if !supported && len(r.FSType) > 0 {
				bad(i, "options", "remove it, or grant a filesystem that has it", "option %q is not valid for %s", o, strings.Join(r.FSType, ", "))
			}
		}
		target := r.Target
		if target == "" {
			target = DefaultTarget
		}
		switch {
		case !strings.HasPrefix(target, "/") || strings.Count(target, "/") != 1 || target == "/" || target == "/." || target == "/..":
			bad(i, "target", `use a top-level guest directory, such as "/media"`, "target %q is not one absolute path component", r.Target)
		case target == "/data":
			bad(i, "target", `use "/media"`, "target /data is the plugin's storage directory")
		case target == TmpGuestPath:
			bad(i, "target", `use "/media"`, "target /tmp is the plugin's scratch directory ([storage] tmp)")
		case g.Target != "" && g.Target != target:
			bad(i, "target", "every [[mount]] table shares one media root", "target %q differs from %q", target, g.Target)
		}
		g.Target = target
		g.Rules = append(g.Rules, Rule{Sources: r.Source, FSTypes: r.FSType, Options: r.Options})
	}
	if !ok {
		return nil, errBadGrant
	}
	if g.Target == "" {
		g.Target = DefaultTarget
	}
	return g, nil
}

// sourceKinds are the prefixes of a source: what a device is (its
// filesystem's label and UUID, its partition entry's name and UUID) or
// where it is.
var sourceKinds = []string{"label", "uuid", "partlabel", "partuuid", "device"}

// matchSource reports whether a grant pattern ("label:MEDIA*") matches the
// device: patterns name what the device is, not how the plugin asked for it.
func matchSource(pattern string, d *Device) bool {
	kind, pat, _ := strings.Cut(pattern, ":")
	var v string
	switch kind {
	case "label":
		v = d.Label
	case "uuid":
		v = d.UUID
	case "partlabel":
		v = d.PartLabel
	case "partuuid":
		v = d.PartUUID
	case "device":
		v = d.Node
	}
	if v == "" {
		return false
	}
	ok, _ := path.Match(pat, v)
	return ok
}

// allowsOption reports whether a granted option admits o: "uid=" admits
// any uid=N, "uid=0" admits only that, and "sync" admits "sync".
func (r *Rule) allowsOption(o string) bool {
	key, _, hasValue := strings.Cut(o, "=")
	for _, g := range r.Options {
		if g == o || hasValue && g == key+"=" {
			return true
		}
	}
	return false
}

// decide finds the rule that allows mounting d as fstype with extra
// options, or says what the manifest lacks.
func (g *Grant) decide(d *Device, fstype string, extra []string) (string, error) {
	var why []string
	for i := range g.Rules {
		r := &g.Rules[i]
		src := slices.IndexFunc(r.Sources, func(p string) bool { return matchSource(p, d) })
		if src < 0 {
			why = append(why, fmt.Sprintf("%s is not in [[mount]] source %s", describe(d), quoteList(r.Sources)))
			continue
		}
		if !slices.Contains(r.FSTypes, fstype) {
			why = append(why, fmt.Sprintf("fstype %s is not in [[mount]] fstype %s", fstype, quoteList(r.FSTypes)))
			continue
		}
		if o := slices.IndexFunc(extra, func(o string) bool { return !r.allowsOption(o) }); o >= 0 {
			why = append(why, fmt.Sprintf("option %q is not in [[mount]] options %s", extra[o], quoteList(r.Options)))
			continue
		}
		return fmt.Sprintf("[[mount]] %d allows %s (source %q, fstype %s)", i+1, describe(d), r.Sources[src], fstype), nil
	}
	if len(why) == 0 {
		why = append(why, "the [[mount]] tables only take shares (from); none has a source")
	}
	slices.Sort(why)
	why = slices.Compact(why)
	return "", errors.New(strings.Join(why, "; "))
}

func quoteList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// closest returns the candidate within edit distance 2 of s, or "".
func closest(s string, candidates []string) string {
	if c := manifest.Suggest(s, candidates); c != "" && manifest.EditDistance(s, c) <= 2 {
		return c
	}
	return ""
}
