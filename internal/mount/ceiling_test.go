package mount

import (
	"slices"
	"testing"
)

func TestGrantWithin(t *testing.T) {
	ceiling := &Grant{Target: "/media", Rules: []Rule{
		{Sources: []string{"label:MEDIA*", "device:/dev/sd*"}, FSTypes: []string{"vfat", "exfat"}, Options: []string{"ro", "uid="}},
		{Sources: []string{"uuid:*"}, FSTypes: []string{"ext4"}},
	}}
	for _, tc := range []struct {
		name   string
		rules  []Rule
		excess []string
	}{
		{"same", ceiling.Rules, nil},
		{"narrower", []Rule{{Sources: []string{"label:MEDIA1", "label:MEDIA*"}, FSTypes: []string{"vfat"}, Options: []string{"uid=1000", "ro"}}}, nil},
		{"device under a glob", []Rule{{Sources: []string{"device:/dev/sdb1"}, FSTypes: []string{"exfat"}}}, nil},
		{"wider label", []Rule{{Sources: []string{"label:*"}, FSTypes: []string{"vfat"}}}, []string{`rule 1: source "label:*" is outside the ceiling`}},
		{"glob inside a glob is not proved", []Rule{{Sources: []string{"label:MEDIA?"}, FSTypes: []string{"vfat"}}}, []string{`rule 1: source "label:MEDIA?" is outside the ceiling`}},
		{"fstype and option", []Rule{{Sources: []string{"label:MEDIA"}, FSTypes: []string{"ntfs"}, Options: []string{"sync"}}},
			[]string{`rule 1: fstype "ntfs" is outside the ceiling`, `rule 1: option "sync" is outside the ceiling`}},
		{"parts from two rules", []Rule{{Sources: []string{"uuid:1234"}, FSTypes: []string{"vfat"}}},
			[]string{"rule 1: no single ceiling rule grants its sources, fstypes and options together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, excess := (&Grant{Target: "/media", Rules: tc.rules}).Within(ceiling)
			if ok != (len(tc.excess) == 0) || !slices.Equal(excess, tc.excess) {
				t.Errorf("got %v %q, want %q", ok, excess, tc.excess)
			}
		})
	}
}

func TestGrantDescribe(t *testing.T) {
	g := &Grant{Target: "/media", Rules: []Rule{{Sources: []string{"label:MEDIA*", "uuid:*"}, FSTypes: []string{"vfat", "exfat"}, Options: []string{"ro", "sync"}}}}
	want := []string{"may mount devices labelled MEDIA* or with UUID * (vfat, exfat) under /media, always nosuid, nodev and noexec, with the options ro, sync if it asks"}
	if got := g.Describe(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// A vendor's [[mount]] from is bounded as its devices are: each owner
// named in the ceiling, and rw only where the ceiling says rw.
func TestGrantAcceptsWithin(t *testing.T) {
	ceiling := &Grant{Target: "/media", Accepts: map[string]bool{"automount": false, "acme/copier": true}}
	for _, tc := range []struct {
		name    string
		accepts map[string]bool
		excess  []string
	}{
		{"none", nil, nil},
		{"same", ceiling.Accepts, nil},
		{"ro of an rw ceiling", map[string]bool{"acme/copier": false}, nil},
		{"another owner", map[string]bool{"automount": false, "other": false}, []string{`from "other" is outside the ceiling`}},
		{"rw beyond ro", map[string]bool{"automount": true}, []string{`from "automount" with mode rw is outside the ceiling (ro)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, excess := (&Grant{Target: "/media", Accepts: tc.accepts}).Within(ceiling)
			if ok != (len(tc.excess) == 0) || !slices.Equal(excess, tc.excess) {
				t.Errorf("got %v %q, want %q", ok, excess, tc.excess)
			}
		})
	}
	want := []string{"sees mounts that plugin acme/copier shares with it, read-write if the owner offers it so, under /media",
		"sees mounts that plugin automount shares with it, read-only, under /media"}
	if got := ceiling.Describe(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
