package security

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

// auditFile reads an audit file's records.
func auditFile(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: a line that is not a whole record: %q: %v", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestFullDiskKeepsTheAudit puts every plugin's /data and the audit file
// on one real 4 MiB file system, as on a small device's data volume, with
// the audit file's directory missing (first boot on an empty volume). One plugin, with a 1 MiB quota, tries to write 2 MiB: it gets
// an error, a bystander's small write still works, and the audit says
// which bound it hit. Then another program fills the disk: the audit file
// goes on in its reserve; past that, the records go to stderr, counted,
// and when there is space again the file says how many went there.
func TestFullDiskKeepsTheAudit(t *testing.T) {
	testenv.NeedRoot(t, "mount a small tmpfs for the plugins' data and the audit")
	testenv.NeedCommand(t, "mount", "mount")
	dir := t.TempDir()
	state := filepath.Join(dir, "state", "data") // the compilation cache stays outside
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "airlock-test-audit", state).CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("mount tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", state).Run() })
	for name, extra := range map[string]string{"filler": "quota = \"1MiB\"", "bystander": ""} {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), name, fmt.Sprintf("name = %q\nversion = \"0.1.0\"\n[storage]\ndata = true\n%s\n", name, extra), counter)
	}
	sock := filepath.Join(dir, "admin.sock")
	// log.audit is relative: to runtime.toml's directory, like state_dir.
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\n[log]\naudit = \"state/data/.audit/audit.jsonl\"\n[admin]\nsocket = %q\n", sock)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(state, ".audit", "audit.jsonl")
	log, logger := testenv.NewLog(t)
	r := hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger})
	log.Wait(2, "INFO started")
	if st, err := os.Stat(filepath.Dir(audit)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("audit directory: %v %v, want made with 0700", err, st)
	}

	r.Host.Deliver("filler", timer.Event("filler", "write:2048", time.Now()))
	log.Wait(1, "write 2048 KiB: ", "plugin=filler")
	if log.Count("write 2048 KiB: ", "I/O error", "plugin=filler") != 1 {
		t.Errorf("the filler's write past its quota did not fail:\n%s", strings.Join(log.Lines(), "\n"))
	}
	r.Host.Deliver("bystander", timer.Event("bystander", "write:16", time.Now()))
	log.Wait(1, "write 16 KiB: <nil>", "plugin=bystander")

	// Another program fills the disk.
	hog := filepath.Join(state, "hog")
	fillDisk(t, hog)
	c := admin.NewClient(sock)
	request := func(i int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Trigger(ctx, admin.TriggerRequest{Plugin: fmt.Sprintf("none%d", i), Kind: "timer"}); err == nil {
			t.Fatal("a trigger for a plugin that is not running was accepted")
		}
	}
	// The audit file's last page takes a few records; then the disk is
	// full for it too, and it gives back its reserve.
	reserve := audit + ".reserve"
	i := 0
	for ; fileExists(reserve); i++ {
		request(i)
		if i > 500 {
			t.Fatal("the audit file never used its reserve on a full disk")
		}
	}
	if n := r.Host.AuditFailures(); n != 0 {
		t.Errorf("%d records failed with the reserve left", n)
	}
	// Past the reserve too.
	fillDisk(t, hog+"2")
	for ; r.Host.AuditFailures() < 3; i++ {
		request(i)
		if i > 1000 {
			t.Fatal("the audit never failed on a full disk")
		}
	}
	lost := r.Host.AuditFailures()
	os.Remove(hog)
	os.Remove(hog + "2")
	request(i)

	recs := auditFile(t, audit)
	var quota, notice, gap, denials int
	for _, rec := range recs {
		switch {
		case rec["capability"] == "storage" && rec["plugin"] == "filler" && strings.Contains(fmt.Sprint(rec["reason"]), "quota of 1MiB"):
			quota++
		case rec["msg"] == "audit notice" && strings.Contains(fmt.Sprint(rec["reason"]), "reserve"):
			notice++
		case rec["msg"] == "audit gap":
			gap++
			if rec["lost"] != float64(lost) {
				t.Errorf("gap record says %v lost, the host counted %d", rec["lost"], lost)
			}
		case rec["capability"] == "admin":
			denials++
		}
	}
	if quota == 0 || notice != 1 || gap != 1 || denials != i+1-int(lost) {
		t.Errorf("audit file: %d quota records (want some), %d reserve notices (want 1), %d gap records (want 1), %d admin records (want %d)",
			quota, notice, gap, denials, i+1-int(lost))
	}
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if f == nil {
		return
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
