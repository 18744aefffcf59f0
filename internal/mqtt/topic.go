package mqtt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// checkTopic says what is wrong with a topic a plugin publishes to, or "":
// a well-formed name (checkName) without wildcards.
func checkTopic(t string, max int) string {
	if why := checkName("topic", t, max); why != "" {
		return why
	}
	if strings.ContainsAny(t, "+#") {
		return "a topic to publish to holds no wildcard ('+' or '#'); those are for filters"
	}
	return ""
}

// checkName says what is wrong with a topic or filter as MQTT 3.1.1 §4.7
// has it (not empty, UTF-8, no NUL) within max bytes, or "".
func checkName(what, s string, max int) string {
	switch {
	case s == "":
		return "the " + what + " is empty"
	case len(s) > max:
		return fmt.Sprintf("the %s is %d bytes, over mqtt.max_topic = %d", what, len(s), max)
	case strings.ContainsRune(s, 0):
		return "the " + what + " holds a NUL byte"
	case !utf8.ValidString(s):
		return "the " + what + " is not UTF-8"
	}
	return ""
}

// checkFilter says what is wrong with a topic filter, or "": '+' must be a
// whole level, '#' a whole last level (MQTT 3.1.1 §4.7.1).
func checkFilter(f string, max int) string {
	if why := checkName("filter", f, max); why != "" {
		return why
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return "'#' must be the last level, as in \"devices/#\""
		case l != "#" && l != "+" && strings.ContainsAny(l, "+#"):
			return fmt.Sprintf("level %q mixes a wildcard with text; '+' and '#' stand alone between slashes", l)
		}
	}
	return ""
}

// covers reports whether every topic that filter f matches is matched by
// filter g: f is g or narrower. A topic is a filter without wildcards, so
// covers(g, topic) is MQTT's match. Wildcards in a first level do not match
// topics that start with '$' ($SYS), as brokers do not.
func covers(g, f string) bool {
	gl, fl := strings.Split(g, "/"), strings.Split(f, "/")
	if (gl[0] == "+" || gl[0] == "#") && strings.HasPrefix(fl[0], "$") {
		return false
	}
	for i := 0; ; i++ {
		if i < len(gl) && gl[i] == "#" {
			return true // "a/#" also matches "a"
		}
		if i == len(gl) || i == len(fl) {
			return len(gl) == len(fl)
		}
		switch {
		case fl[i] == "#":
			return false // wider than any g level but '#'
		case fl[i] == "+":
			if gl[i] != "+" {
				return false
			}
		case gl[i] != "+" && gl[i] != fl[i]:
			return false
		}
	}
}

// coveredBy returns the first of filters that covers f, or "".
func coveredBy(filters []string, f string) string {
	for _, g := range filters {
		if covers(g, f) {
			return g
		}
	}
	return ""
}
