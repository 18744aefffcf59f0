package httpout

import (
	"strings"
	"testing"
)

func TestWithinCeiling(t *testing.T) {
	c := New(Options{})
	ceiling, err := parseGrant(c, `
[[http.request]]
host = ["*.example.com", "hooks.slack.com"]
scheme = ["https"]
method = ["GET", "POST"]
path = ["/api/", "/services"]
[http.request.headers]
Authorization = "Bearer {secret:slack}"
[[http.request]]
host = ["10.0.0.7"]
scheme = ["http"]
port = [8080]
allow_private = true
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		grant, excess string // "" fits
	}{
		{"host = [\"a.example.com\", \"*.b.example.com\"]\npath = [\"/api/v1/\"]\n[http.request.headers]\nAuthorization = \"Bearer {secret:slack}\"", ""},
		{"host = [\"hooks.slack.com\"]\nmethod = [\"POST\"]\npath = [\"/services/x\"]\n[http.request.headers]\nAuthorization = \"Bearer {secret:slack}\"", ""},
		{"host = [\"10.0.0.7\"]\nscheme = [\"http\"]\nport = [8080]\nallow_private = true", ""},
		{"host = [\"a.example.com\"]\npath = [\"/api/\"]", "fits under no rule"},                                                                  // no secret header: not the ceiling's rule
		{"host = [\"example.com\"]\npath = [\"/api/\"]\n[http.request.headers]\nAuthorization = \"Bearer {secret:slack}\"", "fits under no rule"}, // the family does not cover its apex
		{"host = [\"a.example.com\"]\npath = [\"/\"]\n[http.request.headers]\nAuthorization = \"Bearer {secret:slack}\"", "fits under no rule"},   // wider path
		{"host = [\"a.example.com\"]\npath = [\"/services\"]\nmethod = [\"DELETE\"]\n[http.request.headers]\nAuthorization = \"Bearer {secret:slack}\"", "fits under no rule"},
		{"host = [\"10.0.0.7\"]\nscheme = [\"http\"]\nport = [8081]\nallow_private = true", "fits under no rule"},
		{"host = [\"hooks.slack.com\"]\npath = [\"/services\"]\nallow_private = true\n[http.request.headers]\nAuthorization = \"Bearer {secret:slack}\"", "fits under no rule"},
		{"host = [\"hooks.slack.com\"]\npath = [\"/services\"]\n[http.request.headers]\nAuthorization = \"Bearer {secret:other}\"", "fits under no rule"},
	} {
		g, err := parseGrant(c, "[[http.request]]\n"+tc.grant)
		if err != nil {
			t.Fatal(err)
		}
		ok, excess := g.Within(ceiling)
		if got := strings.Join(excess, "\n"); ok != (tc.excess == "") || !strings.Contains(got, tc.excess) {
			t.Errorf("%s\n  within = %v, %q; want %q", tc.grant, ok, got, tc.excess)
		}
	}
}
