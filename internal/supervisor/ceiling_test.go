package supervisor

import (
	"slices"
	"testing"
)

func TestGrantWithin(t *testing.T) {
	for _, tc := range []struct {
		grant, ceiling []string
		excess         []string
	}{
		{[]string{"device.read"}, []string{"device.read", "reboot"}, nil},
		{[]string{}, []string{}, nil},
		{[]string{"reboot"}, []string{"device.read"}, []string{`"reboot" is outside the ceiling ["device.read"]`}},
		{[]string{"service.stop:main"}, []string{"service.stop:*"}, nil},
		{[]string{"service.stop:main"}, []string{"service.stop:main"}, nil},
		{[]string{"service.stop:*"}, []string{"service.stop:main"}, []string{`"service.stop:*" is outside the ceiling ["service.stop:main"]`}},
		{[]string{"service.stop:db"}, []string{"service.restart:db"}, []string{`"service.stop:db" is outside the ceiling ["service.restart:db"]`}},
	} {
		g, err := ParseGrant(tc.grant)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseGrant(tc.ceiling)
		if err != nil {
			t.Fatal(err)
		}
		ok, excess := g.Within(c)
		if ok != (len(tc.excess) == 0) || !slices.Equal(excess, tc.excess) {
			t.Errorf("%v within %v = %v %q, want %q", tc.grant, tc.ceiling, ok, excess, tc.excess)
		}
	}
	if ok, _ := (Grant{}).Within("not a grant"); ok {
		t.Error("a ceiling of another type must refuse")
	}
}

func TestGrantDescribe(t *testing.T) {
	g, _ := ParseGrant([]string{"reboot", "service.stop:main", "service.restart:*"})
	want := []string{
		"may reboot the device (update locks apply unless forced) through the supervisor",
		"may restart any service of the app through the supervisor",
		"may stop the service main through the supervisor",
	}
	if got := g.Describe(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
