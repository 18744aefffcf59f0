package manifest

import "testing"

// TestSecretLooking: the names and values of issue 15 look like secrets;
// the variables a balena device gives its services and common harmless
// ones do not.
func TestSecretLooking(t *testing.T) {
	for _, c := range []struct {
		name, value string
		secret      bool
	}{
		{"SSH_PRIVATE_KEY", "", true}, {"DB_PASS", "", true}, {"GITHUB_PAT", "", true}, {"WIFI_PSK", "", true},
		{"DATABASE_URL", "postgres://app:hunter2@db/app", true}, {"APP_LINK", "https://x/?access_token=abc", true},
		{"CERT", "-----BEGIN EC PRIVATE KEY-----\n", true}, {"db_pass", "", true}, {"dbPassword", "", true},
		{"GHTOKEN", "", true}, {"MY_SECRET_SAUCE", "", true}, {"MQTT_AUTH", "", true}, {"SENTRY_DSN", "", true},
		{"BALENA_SUPERVISOR_API_KEY", "", true}, {"SESSION_ID", "", true},
		{"DATABASE_URL", "postgres://db/app", false}, {"BALENA_API_URL", "https://api.balena-cloud.com", false},
		{"BALENA_DEVICE_UUID", "", false}, {"BALENA_APP_LOCK_PATH", "/tmp/balena/updates.lock", false},
		{"BALENA_SUPERVISOR_ADDRESS", "http://127.0.0.1:48484", false}, {"BALENA_HOST_OS_VERSION", "", false},
		{"LED_PIN", "17", false}, {"PATH", "/usr/bin", false}, {"HOME", "/root", false}, {"KEYBOARD_LAYOUT", "us", false},
		{"SPASS", "", false}, {"COMPASS_HEADING", "", false},
	} {
		if why := SecretLooking(c.name, c.value); (why != "") != c.secret {
			t.Errorf("SecretLooking(%q, %q) = %q, want secret %v", c.name, c.value, why, c.secret)
		}
	}
}
