package cron

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones, whatever the machine has installed
)

func TestNext(t *testing.T) {
	base := time.Date(2026, 11, 29, 18, 7, 30, 0, time.UTC) // a Sunday
	cases := []struct {
		expr string
		want string
	}{
		{"* * * * *", "2026-11-29T18:08:00Z"},
		{"*/5 * * * *", "2026-11-29T18:10:00Z"},
		{"0 * * * *", "2026-11-29T19:00:00Z"},
		{"@hourly", "2026-11-29T19:00:00Z"},
		{"30 2 * * *", "2026-11-30T02:30:00Z"},
		{"0 9 * * mon-fri", "2026-11-30T09:00:00Z"},
		{"0 0 1 jan *", "2027-01-01T00:00:00Z"},
		{"0 12 * * 7", "2026-12-06T12:00:00Z"},
		{"0 12 * * 0", "2026-12-06T12:00:00Z"},
		{"0 0 13 * 5", "2026-12-04T00:00:00Z"}, // Friday 4th comes before the 13th
		{"15,45 18 * * *", "2026-11-29T18:15:00Z"},
		{"0 0 29 2 *", "2028-02-29T00:00:00Z"},
	}
	for _, c := range cases {
		s, err := Parse(c.expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.expr, err)
		}
		if got := s.Next(base).Format(time.RFC3339); got != c.want {
			t.Errorf("Next(%q) = %s, want %s", c.expr, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"* * * *":     `cron "* * * *" has 4 fields, want 5`,
		"61 * * * *":  `cron "61 * * * *": minute: "61" is not a value from 0 to 59`,
		"*/0 * * * *": `cron "*/0 * * * *": minute: bad step "0"`,
		"5-1 * * * *": `cron "5-1 * * * *": minute: range "5-1" runs backwards`,
		"* * * foo *": `cron "* * * foo *": month: "foo" is not a value from 1 to 12`,
	}
	for expr, want := range cases {
		if _, err := Parse(expr); err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v, want %s", expr, err, want)
		}
	}
}

// TestImpossible: a schedule that can never fire is refused when the
// manifest is checked, not discovered when it never runs.
func TestImpossible(t *testing.T) {
	cases := map[string]string{
		"0 0 30 2 *":    `cron "0 0 30 2 *" never fires: no month it names has the days it names (February has 29;`,
		"0 0 31 4,6 *":  `(April has 30, June has 30;`,
		"0 0 31 */2 *":  "", // January, March, ...
		"0 0 30 2 mon":  "", // either day field: every Monday in February
		"0 0 29 2 *":    "", // leap years
		"0 0 31 apr *":  "never fires",
		"0 0 30,31 2 *": "never fires",
	}
	for expr, want := range cases {
		_, err := Parse(expr)
		switch {
		case want == "" && err != nil:
			t.Errorf("Parse(%q): %v", expr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("Parse(%q) = %v, want an error with %q", expr, err, want)
		}
	}
}

// fires runs the schedule from start to end as the timer does (each next
// from the last firing) and returns the firings in loc's wall clock.
func fires(t *testing.T, expr string, loc *time.Location, start, end string) []string {
	t.Helper()
	s, err := Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	from, err := time.ParseInLocation("2006-01-02 15:04", start, loc)
	if err != nil {
		t.Fatal(err)
	}
	to, _ := time.ParseInLocation("2006-01-02 15:04", end, loc)
	var out []string
	for n := s.Next(from); !n.IsZero() && n.Before(to); n = s.Next(n) {
		out = append(out, n.Format("01-02 15:04 MST"))
	}
	return out
}

// TestDaylightSaving: what Vixie cron does, in two zones whose clocks
// change at 02:00: a job with a fixed minute and hour runs once on both
// change days, at 03:00 when 02:00-02:59 is skipped and at the first 02:30
// when it comes twice; a job with "*" in its minute or hour runs at the
// wall-clock times that exist.
func TestDaylightSaving(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, expr string
		loc        *time.Location
		start, end string
		want       []string
	}{
		{"spring: skipped 02:30 runs at 03:00", "30 2 * * *", berlin, "2026-03-28 12:00", "2026-03-30 12:00",
			[]string{"03-29 03:00 CEST", "03-30 02:30 CEST"}},
		{"spring: skipped 02:00 runs at 03:00", "0 2 * * *", berlin, "2026-03-28 12:00", "2026-03-30 12:00",
			[]string{"03-29 03:00 CEST", "03-30 02:00 CEST"}},
		{"spring: two skipped times run once", "0,30 2 * * *", berlin, "2026-03-29 00:00", "2026-03-29 12:00",
			[]string{"03-29 03:00 CEST"}},
		{"spring: an unaffected time", "30 1,3 * * *", berlin, "2026-03-29 00:00", "2026-03-29 12:00",
			[]string{"03-29 01:30 CET", "03-29 03:30 CEST"}},
		{"autumn: repeated 02:30 runs once", "30 2 * * *", berlin, "2026-10-24 12:00", "2026-10-26 12:00",
			[]string{"10-25 02:30 CEST", "10-26 02:30 CET"}},
		{"autumn: wildcard hour runs in both", "30 * * * *", berlin, "2026-10-25 01:00", "2026-10-25 04:00",
			[]string{"10-25 01:30 CEST", "10-25 02:30 CEST", "10-25 02:30 CET", "10-25 03:30 CET"}},
		{"spring: wildcard runs are not made up", "*/30 * * * *", berlin, "2026-03-29 01:00", "2026-03-29 04:00",
			[]string{"03-29 01:30 CET", "03-29 03:00 CEST", "03-29 03:30 CEST"}},
		{"New York spring", "30 2 * * *", newYork, "2026-03-07 12:00", "2026-03-09 12:00",
			[]string{"03-08 03:00 EDT", "03-09 02:30 EDT"}},
		{"New York autumn", "30 1 * * *", newYork, "2026-10-31 12:00", "2026-11-02 12:00",
			[]string{"11-01 01:30 EDT", "11-02 01:30 EST"}},
		{"UTC has no change", "30 2 * * *", time.UTC, "2026-03-28 12:00", "2026-03-30 12:00",
			[]string{"03-29 02:30 UTC", "03-30 02:30 UTC"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := fires(t, c.expr, c.loc, c.start, c.end)
			if strings.Join(got, ", ") != strings.Join(c.want, ", ") {
				t.Errorf("%q from %s to %s in %s:\n got  %v\n want %v", c.expr, c.start, c.end, c.loc, got, c.want)
			}
		})
	}
}
