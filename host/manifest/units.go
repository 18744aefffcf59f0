package manifest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count written in TOML as a string with a binary unit:
// "512KiB", "16MiB", "1GiB". A bare integer string is bytes.
type Size uint64

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// UnmarshalText parses a size such as "16MiB".
func (s *Size) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(text, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
		if err != nil || n == 0 || n > (1<<40)/u.mult {
			break
		}
		*s = Size(n * u.mult)
		return nil
	}
	if n, err := strconv.ParseUint(text, 10, 64); err == nil && n > 0 {
		*s = Size(n)
		return nil
	}
	return fmt.Errorf("bad size %q: write a positive whole number with a unit, such as \"16MiB\", \"512KiB\" or \"1GiB\"", text)
}

// MarshalText writes the size in its largest exact unit.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Size) String() string {
	for _, u := range sizeUnits {
		if uint64(s) >= u.mult && uint64(s)%u.mult == 0 {
			return strconv.FormatUint(uint64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(uint64(s), 10) + "B"
}

// Duration is a time.Duration written in TOML as a Go duration string: "2s",
// "150ms", "5m".
type Duration time.Duration

// UnmarshalText parses a duration such as "2s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || v <= 0 {
		return fmt.Errorf("bad duration %q: write a positive duration such as \"500ms\", \"2s\" or \"5m\"", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }
