package manifest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a TOML file, positioned for a human: the file, the
// line, the dotted key, what is wrong and, when we know, how to fix it.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted path, "" for the whole file
	Msg  string
	Hint string // what to do next; may be ""
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// Errors is every problem found in one file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}

// doc is one TOML file being decoded strictly: every key must be claimed by
// a decoder, or it is reported as unknown with a suggestion.
type doc struct {
	file  string
	md    toml.MetaData
	top   map[string]toml.Primitive
	lines map[string]int // dotted key -> first line it appears on
	errs  Errors
	// reported holds keys with an error already, so that an unknown table
	// is not reported again key by key.
	reported map[string]bool
}

func parseDoc(file string, data []byte) (*doc, error) {
	d := &doc{file: file, lines: keyLines(data), reported: map[string]bool{}}
	md, err := toml.Decode(string(data), &d.top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: file, Line: pe.Position.Line, Msg: "TOML syntax: " + pe.Message,
				Hint: "see https://toml.io for the syntax"}}
		}
		return nil, Errors{{File: file, Msg: err.Error()}}
	}
	d.md = md
	return d, nil
}

// has reports whether the top-level key is present.
func (d *doc) has(key string) bool { _, ok := d.top[key]; return ok }

// decode decodes the top-level key into v, recording a positioned error.
func (d *doc) decode(key string, v any) bool {
	p, ok := d.top[key]
	if !ok {
		return false
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		return d.decodeFields(key, p, rv.Elem())
	}
	return d.decodePrim(key, p, v)
}

// decodeFields decodes a table into a struct one key at a time, so that
// every bad value in it is reported, whatever order the TOML library visits
// keys in, instead of only the first it meets. Keys without a field stay
// undecoded, for unknown() to report.
func (d *doc) decodeFields(key string, p toml.Primitive, sv reflect.Value) bool {
	var table map[string]toml.Primitive
	if !d.decodePrim(key, p, &table) {
		return false
	}
	ok := true
	var names []string
	for i := 0; i < sv.NumField(); i++ {
		name, _, _ := strings.Cut(sv.Type().Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		if sub, present := table[name]; present {
			ok = d.decodePrim(key+"."+name, sub, sv.Field(i).Addr().Interface()) && ok
		}
	}
	for _, k := range slices.Sorted(maps.Keys(table)) {
		if !slices.Contains(names, k) {
			full := key + "." + k
			d.reported[full] = true
			d.errs = append(d.errs, &Error{File: d.file, Line: d.line(full), Key: full, Msg: "unknown key", Hint: hintFor(k, names)})
		}
	}
	return ok
}

func (d *doc) decodePrim(key string, p toml.Primitive, v any) bool {
	if err := d.md.PrimitiveDecode(p, v); err != nil {
		// The rest of this table stays undecoded; do not call it unknown.
		d.reported[key] = true
		d.errs = append(d.errs, d.convert(key, err))
		return false
	}
	return true
}

// errorf records a problem at a dotted key.
func (d *doc) errorf(key, hint, format string, args ...any) {
	d.reported[key] = true
	d.errs = append(d.errs, &Error{File: d.file, Line: d.line(key), Key: key, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (d *doc) line(key string) int {
	for k := key; k != ""; {
		if l, ok := d.lines[k]; ok {
			return l
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// unknown reports every key that no decoder claimed. known lists the valid
// keys at each table path ("" is the top level), for "did you mean".
func (d *doc) unknown(known map[string][]string) {
	seen := d.reported
	for k := range d.top {
		if !slices.Contains(known[""], k) && !seen[k] {
			seen[k] = true
			d.errs = append(d.errs, &Error{File: d.file, Line: d.line(k), Key: k, Msg: "unknown key", Hint: hintFor(k, known[""])})
		}
	}
	for _, k := range d.md.Undecoded() {
		key := k.String()
		parent := ""
		if len(k) > 1 {
			parent = k[:len(k)-1].String()
		}
		if seen[parent] && d.md.Type(k...) == "" {
			continue
		}
		// Report a whole unknown table once, not each of its keys.
		skip := false
		for i := 1; i < len(k); i++ {
			if seen[k[:i].String()] {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		seen[key] = true
		d.errs = append(d.errs, &Error{File: d.file, Line: d.line(key), Key: key, Msg: "unknown key", Hint: hintFor(k[len(k)-1], known[parent])})
	}
}

var tomlLineErr = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)
var tomlTypes = regexp.MustCompile(`incompatible types: TOML value has type (\S+); destination has type (\S+)`)

// convert turns a BurntSushi decode error into our positioned Error.
func (d *doc) convert(key string, err error) *Error {
	e := &Error{File: d.file, Key: key, Line: d.line(key), Msg: err.Error()}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Msg = pe.Message
		if pe.LastKey != "" {
			e.Key = pe.LastKey
		}
		if pe.Position.Line > 0 {
			e.Line = pe.Position.Line
		}
		// UnmarshalText messages carry their own fix after a colon.
		if m, h, ok := strings.Cut(e.Msg, ": "); ok && strings.HasPrefix(m, "bad ") {
			e.Msg, e.Hint = m, h
		}
		return e
	}
	if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
		if m[1] != "" {
			e.Line, _ = strconv.Atoi(m[1])
		}
		e.Key, e.Msg = m[2], m[3]
		if t := tomlTypes.FindStringSubmatch(m[3]); t != nil {
			e.Msg = fmt.Sprintf("wrong type: the value is %s, but this key takes %s", goTypeName(t[1]), goTypeName(t[2]))
		}
	}
	return e
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "slice"), strings.HasPrefix(t, "array"):
		return "an array"
	case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "struct"):
		return "a table"
	case strings.HasPrefix(t, "float"):
		return "a number"
	}
	return t
}

// keyLines maps each dotted key to the first line that defines it. It is a
// light scan of the text, enough to point a human at the right line; the TOML
// parser has already rejected anything that is not valid TOML.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	arrays := map[string]int{}
	table, entry := "", "" // entry is "name[n]" inside an array of tables
	for i, raw := range strings.Split(string(data), "\n") {
		l := strings.TrimSpace(raw)
		if l == "" || l[0] == '#' {
			continue
		}
		if l[0] == '[' {
			name := strings.Trim(strings.SplitN(l, "]", 2)[0], "[ ")
			if j := strings.Index(l, "]]"); j > 0 && strings.HasPrefix(l, "[[") {
				// An array of tables: entry n is also known as name[n].
				name = unquoteKey(strings.TrimSpace(l[2:j]))
				entry = fmt.Sprintf("%s[%d]", name, arrays[name])
				lines[entry] = i + 1
				arrays[name]++
			} else {
				entry = ""
			}
			table = unquoteKey(name)
			if _, ok := lines[table]; !ok {
				lines[table] = i + 1
			}
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		key := unquoteKey(strings.TrimSpace(k))
		if entry != "" {
			lines[entry+"."+key] = i + 1
		}
		if table != "" {
			key = table + "." + key
		}
		if _, ok := lines[key]; !ok {
			lines[key] = i + 1
		}
	}
	return lines
}

func unquoteKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// Suggest returns the known name closest to k, if it is close enough to be
// a typo: for "did you mean" hints in every capability's messages, so that
// all of them guess the same way.
func Suggest(k string, known []string) string {
	best, bestD := "", 1<<30
	for _, c := range known {
		if d := EditDistance(strings.ToLower(k), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(2, len(best)/3) {
		return best
	}
	return ""
}

// EditDistance is the Levenshtein distance between a and b.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
