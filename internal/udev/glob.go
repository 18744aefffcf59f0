package udev

import (
	"errors"
	"strings"
)

// glob is a compiled udev-style match value: fnmatch(3) without
// FNM_PATHNAME ("*" crosses "/", as in udev rules), with "|" separating
// alternatives. Plain and prefix patterns, the common cases ("sd*",
// "MEDIA*"), skip the general matcher.
type glob struct {
	src  string
	alts []pattern
}

type pattern struct {
	kind int // litExact, litPrefix or general
	s    string
}

const (
	litExact = iota
	litPrefix
	general
)

func (g *glob) String() string { return g.src }

// compileGlob checks src and compiles it. Errors say what to fix.
func compileGlob(src string) (*glob, error) {
	g := &glob{src: src}
	for _, alt := range strings.Split(src, "|") {
		if alt == "" && strings.Contains(src, "|") {
			return nil, errors.New(`empty alternative around "|"`)
		}
		if err := checkPattern(alt); err != nil {
			return nil, err
		}
		switch i := strings.IndexAny(alt, `*?[\`); {
		case i < 0:
			g.alts = append(g.alts, pattern{litExact, alt})
		case i == len(alt)-1 && alt[i] == '*':
			g.alts = append(g.alts, pattern{litPrefix, alt[:i]})
		default:
			g.alts = append(g.alts, pattern{general, alt})
		}
	}
	return g, nil
}

// checkPattern rejects what fnmatch would silently treat as literal, since
// that is always a typo in a rule.
func checkPattern(p string) error {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 == len(p) {
				return errors.New(`trailing "\" escapes nothing`)
			}
			i++
		case '[':
			n := classLen(p[i:])
			if n == 0 {
				return errors.New(`"[" without a closing "]"`)
			}
			i += n - 1
		}
	}
	return nil
}

// classLen returns the length of the bracket expression at the start of p,
// or 0 if it is not closed. A "]" right after "[" or "[!" is a member.
func classLen(p string) int {
	i := 1
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		i++
	}
	if i < len(p) && p[i] == ']' {
		i++
	}
	for ; i < len(p); i++ {
		if p[i] == ']' {
			return i + 1
		}
	}
	return 0
}

// match reports whether s matches any alternative.
func (g *glob) match(s string) bool {
	for _, a := range g.alts {
		switch a.kind {
		case litExact:
			if s == a.s {
				return true
			}
		case litPrefix:
			if strings.HasPrefix(s, a.s) {
				return true
			}
		default:
			if matchPattern(a.s, s) {
				return true
			}
		}
	}
	return false
}

// matchPattern is fnmatch on bytes with one-star backtracking, which is
// linear enough for the short values of uevents. p was checked by
// checkPattern.
func matchPattern(p, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, -1
	for sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			case '[':
				n := classLen(p[px:])
				if inClass(p[px:px+n], s[sx]) {
					px += n
					sx++
					continue
				}
			case '\\':
				if p[px+1] == s[sx] {
					px += 2
					sx++
					continue
				}
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP+1, starS
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// inClass matches c against a bracket expression such as "[!a-c_]".
func inClass(class string, c byte) bool {
	body := class[1 : len(class)-1]
	negate := false
	if body != "" && (body[0] == '!' || body[0] == '^') {
		negate, body = true, body[1:]
	}
	in := false
	for i := 0; i < len(body); i++ {
		lo := body[i]
		if i+2 < len(body) && body[i+1] == '-' {
			if lo <= c && c <= body[i+2] {
				in = true
			}
			i += 2
			continue
		}
		if lo == c {
			in = true
		}
	}
	return in != negate
}
