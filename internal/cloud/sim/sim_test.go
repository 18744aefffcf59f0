package sim_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/cloud/sim"
)

// The simulator's answers to requests the client never makes: no key, a
// wrong key, an unknown resource, a filter it cannot parse, another
// device's record, a method a resource does not take.
func TestSimulatorAnswers(t *testing.T) {
	s := sim.New(cloud.DefaultSim())
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	key := cloud.DefaultSim().Devices[0].Key
	for _, tc := range []struct {
		method, path, auth, body string
		status                   int
		want                     string
	}{
		{"GET", "/v7/device_tag", "", "", 401, "Unauthorized"},
		{"GET", "/v7/device_tag", "Bearer nope", "", 401, "Unauthorized"},
		{"GET", "/v7/device_tag", "ApiKey " + key, "", 401, "Unauthorized"},
		{"GET", "/v7/nothing", "Bearer " + key, "", 404, "Not Found"},
		{"GET", "/v6/device", "Bearer " + key, "", 404, "Not Found"},
		{"GET", "/v7/device_tag?$filter=device%20ne%20102", "Bearer " + key, "", 400, "Unsupported operator"},
		{"GET", "/v7/device_tag?$filter=tag_key%20eq%20'x", "Bearer " + key, "", 400, "Unterminated string"},
		{"GET", "/v7/device_tag?$filter=device%20eq%20101%20or%20device%20eq%20102", "Bearer " + key, "", 400, "Malformed filter"},
		{"GET", "/v7/device_tag?$orderby=id", "Bearer " + key, "", 400, "Unknown query option"},
		{"GET", "/v7/device_tag?$filter=device%20eq%20102&$select=secret", "Bearer " + key, "", 400, "Unknown field"},
		{"GET", "/v7/device_tag?$filter=device%20eq%20102", "Bearer " + key, "", 200, `{"d":[]}`},
		{"GET", "/v7/device(uuid='ffffffffffffffffffffffffffffffff')", "Bearer " + key, "", 200, `{"d":[]}`},
		{"GET", "/v7/device(uuid='" + cloud.SimUUID + "')?$select=device_name", "Bearer " + key, "", 200, `{"d":[{"device_name":"airlock-sim"}]}`},
		{"PATCH", "/v7/device(102)", "Bearer " + key, `{"device_name":"x"}`, 401, "Unauthorized"},
		{"POST", "/v7/device_tag", "Bearer " + key, `{"device":102,"tag_key":"k","value":"v"}`, 401, "Unauthorized"},
		{"POST", "/v7/device_tag", "Bearer " + key, `{"device":101,"tag_key":"location","value":"v"}`, 409, "Conflict"},
		{"POST", "/v7/device_tag", "Bearer " + key, `{"device":101,"tag_key":"k","value":"v"}`, 201, `"tag_key":"k"`},
		{"DELETE", "/v7/device_environment_variable(1)", "Bearer " + key, "", 405, "Method Not Allowed"},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
	}
	if got := s.Tags(102); len(got) != 1 {
		t.Errorf("the other device's tags changed: %q", got)
	}
}
