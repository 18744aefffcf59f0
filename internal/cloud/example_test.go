package cloud_test

import (
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/plugintest"
)

// The demo plugin on the simulated device, through the real host, the Go
// SDK and the simulator over loopback HTTP.
func TestExampleCloudTags(t *testing.T) {
	h := plugintest.New(t, "../../examples/cloud-tags")
	h.Logs().Wait(1, "cloud device", "name=airlock-sim", "tag.location=lab", "tag.owner=ops", "plugin=cloud-tags")
	h.Audit().Wait(1, "plugin=cloud-tags", "capability=cloud", "op=tags.set:airlock.started", "decision=allow")
	for _, l := range h.Logs().Lines() {
		if l != "" && (strings.Contains(l, "cannot") || strings.Contains(l, "simcloudkey")) {
			t.Errorf("log line: %s", l)
		}
	}
}
