// Package cron parses the five-field cron expressions of [[trigger.timer]]
// and computes when they next fire. It follows Vixie cron: minute, hour,
// day of month, month, day of week, with lists, ranges, steps and names; when
// both day fields are restricted, a day matching either one fires.
//
// Times are wall-clock times in the location of the time given to Next
// (runtime.toml's timezone). Across a daylight-saving change it does what
// Vixie cron does: a job whose minute and hour are both fixed ("30 2 * * *")
// runs once on both change days, at the end of a skipped hour in spring and
// at the first of the two repeated ones in autumn; a job with "*" in its
// minute or hour runs at the wall-clock times that exist, so twice in a
// repeated hour. A change of more than three hours is not treated so.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron expression. Each field is a bit set.
type Schedule struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
	// fixed: neither minute nor hour starts with "*" (Vixie's test), so
	// a daylight-saving change neither skips nor repeats it.
	fixed bool
}

// maxDST is the largest zone change treated as daylight saving, as in
// Vixie cron.
const maxDST = 3 * time.Hour

type field struct {
	name     string
	min, max int
	names    []string // index i names value min+i
}

var fields = [5]field{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

var macros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// Parse parses a five-field expression such as "*/5 * * * *" or a macro such
// as "@hourly".
func Parse(expr string) (*Schedule, error) {
	if m, ok := macros[strings.TrimSpace(expr)]; ok {
		expr = m
	}
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return nil, fmt.Errorf("cron %q has %d fields, want 5", expr, len(parts))
	}
	var sets [5]uint64
	for i, p := range parts {
		s, err := parseField(p, fields[i])
		if err != nil {
			return nil, fmt.Errorf("cron %q: %s: %w", expr, fields[i].name, err)
		}
		sets[i] = s
	}
	// Sunday is both 0 and 7.
	if sets[4]&(1<<7) != 0 {
		sets[4] |= 1
	}
	s := &Schedule{minute: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: sets[4],
		domStar: parts[2] == "*" || strings.HasPrefix(parts[2], "*/"), dowStar: parts[4] == "*" || strings.HasPrefix(parts[4], "*/"),
		fixed: !strings.HasPrefix(parts[0], "*") && !strings.HasPrefix(parts[1], "*")}
	if err := s.possible(); err != nil {
		return nil, fmt.Errorf("cron %q never fires: %w", expr, err)
	}
	return s, nil
}

// daysIn is the most days each month has (February's in a leap year).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// possible refuses a schedule whose days of month fall in none of its
// months, such as "0 0 30 2 *". With a restricted day of week too, a day
// matching either fires, so such a schedule always fires.
func (s *Schedule) possible() error {
	if s.domStar || !s.dowStar {
		return nil
	}
	var months []string
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) == 0 {
			continue
		}
		if s.dom&(1<<(daysIn[m]+1)-1) != 0 {
			return nil
		}
		months = append(months, fmt.Sprintf("%s has %d", time.Month(m), daysIn[m]))
	}
	return fmt.Errorf("no month it names has the days it names (%s; check the day of month and month fields)", strings.Join(months, ", "))
}

func parseField(s string, f field) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(s, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad step %q", stepStr)
			}
			step = n
		}
		lo, hi := f.min, f.max
		if rng != "*" {
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, f); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = value(b, f); err != nil {
					return 0, err
				}
			} else if hasStep {
				hi = f.max
			}
			if hi < lo {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func value(s string, f field) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%q is not a value from %d to %d", s, f.min, f.max)
	}
	return v, nil
}

// Next returns the first time after t (to the minute) that the schedule
// fires, in t's location, or the zero time if none comes within five
// years (Parse refuses schedules that never fire).
func (s *Schedule) Next(t time.Time) time.Time {
	for {
		c := s.nextWall(t)
		if c.IsZero() {
			return c
		}
		if s.fixed {
			// Spring: a wall-clock time this schedule names was skipped
			// between t and c; it runs once, when the clock has jumped.
			if j := s.skipped(t, c); !j.IsZero() {
				return j
			}
			// Autumn: c's wall-clock time came once already, an hour
			// (or so) earlier; it ran then.
			if repeated(c) {
				t = c
				continue
			}
		}
		return c
	}
}

// nextWall is the first time after t whose wall-clock time matches.
func (s *Schedule) nextWall(t time.Time) time.Time {
	t = t.Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(5, 0, 0)
	for t.Before(end) {
		if s.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
			continue
		}
		if s.hour&(1<<uint(t.Hour())) == 0 {
			t = t.Truncate(time.Hour).Add(time.Hour)
			continue
		}
		if s.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

// matches reports whether the wall-clock time w (its fields, whatever its
// location) is one the schedule names.
func (s *Schedule) matches(w time.Time) bool {
	return s.month&(1<<uint(w.Month())) != 0 && s.dayMatches(w) &&
		s.hour&(1<<uint(w.Hour())) != 0 && s.minute&(1<<uint(w.Minute())) != 0
}

// skipped returns the first instant after t and before c at which the
// clock jumped forward over a wall-clock time the schedule names, or zero.
func (s *Schedule) skipped(t, c time.Time) time.Time {
	for {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(c) {
			return time.Time{}
		}
		_, before := end.Add(-time.Second).Zone()
		_, after := end.Zone()
		if jump := time.Duration(after-before) * time.Second; jump > 0 && jump <= maxDST {
			// The wall-clock times [from, from+jump) did not happen.
			from := end.In(time.FixedZone("", before))
			for w := from; w.Before(from.Add(jump)); w = w.Add(time.Minute) {
				if s.matches(w) && end.After(t) {
					return end
				}
			}
		}
		t = end
	}
}

// repeated reports whether c's wall-clock time already happened, in the
// hour (or so) that a backward daylight-saving change repeats.
func repeated(c time.Time) bool {
	start, _ := c.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, before := start.Add(-time.Second).Zone()
	_, now := c.Zone()
	back := time.Duration(before-now) * time.Second
	return back > 0 && back <= maxDST && c.Sub(start) < back
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}
