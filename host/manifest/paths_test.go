package manifest

import (
	"path/filepath"
	"testing"
)

// log.audit is resolved like state_dir: against runtime.toml's directory,
// not the working directory (issue 15); stderr, stdout and off are names.
func TestAuditPathIsRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "etc", "runtime.toml")
	for audit, want := range map[string]string{
		"audit/audit.jsonl":        filepath.Join(dir, "etc", "audit", "audit.jsonl"),
		"../var/audit.jsonl":       filepath.Join(dir, "var", "audit.jsonl"),
		"/data/airlock/audit.json": "/data/airlock/audit.json",
		"stderr":                   "stderr",
		"stdout":                   "stdout",
		"off":                      "off",
	} {
		rt, err := ParseRuntime(conf, []byte("[log]\naudit = \""+audit+"\"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rt.Log.Audit != want {
			t.Errorf("audit = %q: resolved to %q, want %q", audit, rt.Log.Audit, want)
		}
		if audit == "audit/audit.jsonl" && rt.StateDir != filepath.Join(dir, "etc", ".airlock") {
			t.Errorf("state_dir %q is not beside the audit's base %q", rt.StateDir, filepath.Dir(conf))
		}
	}
}
