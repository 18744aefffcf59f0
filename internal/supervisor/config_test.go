package supervisor

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    Config
		err     string // substring; "" means success
		notConf bool   // the error wraps ErrNotConfigured
	}{
		{
			name: "balena names",
			env:  map[string]string{"BALENA_SUPERVISOR_ADDRESS": "http://127.0.0.1:48484", "BALENA_SUPERVISOR_API_KEY": "k", "BALENA_APP_ID": "12"},
			want: Config{Address: "http://127.0.0.1:48484", APIKey: "k", AppID: 12},
		},
		{
			name: "resin fallbacks",
			env:  map[string]string{"RESIN_SUPERVISOR_ADDRESS": "http://10.0.0.1:48484", "RESIN_SUPERVISOR_API_KEY": "r", "RESIN_APP_ID": "3"},
			want: Config{Address: "http://10.0.0.1:48484", APIKey: "r", AppID: 3},
		},
		{
			name: "balena wins over resin",
			env: map[string]string{"BALENA_SUPERVISOR_ADDRESS": "http://b:1", "RESIN_SUPERVISOR_ADDRESS": "http://r:1",
				"BALENA_SUPERVISOR_API_KEY": "b", "RESIN_SUPERVISOR_API_KEY": "r"},
			want: Config{Address: "http://b:1", APIKey: "b"},
		},
		{
			name: "host and port",
			env:  map[string]string{"BALENA_SUPERVISOR_HOST": "127.0.0.1", "BALENA_SUPERVISOR_PORT": "48484", "BALENA_SUPERVISOR_API_KEY": "k"},
			want: Config{Address: "http://127.0.0.1:48484", APIKey: "k"},
		},
		{name: "nothing", env: map[string]string{}, err: "BALENA_SUPERVISOR_ADDRESS is not set", notConf: true},
		{name: "no key", env: map[string]string{"BALENA_SUPERVISOR_ADDRESS": "http://x:1"}, err: "BALENA_SUPERVISOR_API_KEY is not set", notConf: true},
		{name: "bad app id", env: map[string]string{"BALENA_SUPERVISOR_ADDRESS": "http://x:1", "BALENA_SUPERVISOR_API_KEY": "k", "BALENA_APP_ID": "twelve"}, err: `BALENA_APP_ID="twelve"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want ~%q", err, tc.err)
				}
				if errors.Is(err, ErrNotConfigured) != tc.notConf {
					t.Fatalf("errors.Is(ErrNotConfigured) = %v", !tc.notConf)
				}
				if key := tc.env["BALENA_SUPERVISOR_API_KEY"]; key != "" && strings.Contains(err.Error(), "="+key) {
					t.Fatalf("key in %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Address != tc.want.Address || got.APIKey != tc.want.APIKey || got.AppID != tc.want.AppID {
				t.Fatalf("got %s key=%q, want %s key=%q", got, got.APIKey, tc.want, tc.want.APIKey)
			}
		})
	}
}
