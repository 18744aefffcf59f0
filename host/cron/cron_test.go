package cron

import (
	"testing"
	"time"
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

func TestImpossible(t *testing.T) {
	s, err := Parse("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Next(time.Now()); !got.IsZero() {
		t.Errorf("Next = %v, want zero", got)
	}
}
