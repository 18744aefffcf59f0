package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Replace(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Fatalf("after Replace: %q, %v; want \"new\"", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 whatever the umask and the old file's", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want only f (no temporary file left)", len(ents))
	}
}

// TestReplaceDoesNotFollowSymlinks: a symlink planted at path is replaced
// by the file; what it pointed to is untouched.
func TestReplaceDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "f")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := Replace(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the symlink's target became %q", b)
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Errorf("path is still a symlink (%v, %v)", st, err)
	}
}

// TestReplaceFailureLeavesNothing: when the file cannot be written, Replace
// says so and leaves the directory as it was.
func TestReplaceFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: the rename fails.
	path := filepath.Join(dir, "f")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Replace(path, []byte("new"), 0o600); err == nil {
		t.Fatal("Replace over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !ents[0].IsDir() {
		t.Errorf("after a failed Replace the directory holds %v, want only the directory f", ents)
	}
	if err := Replace(filepath.Join(dir, "missing", "f"), []byte("new"), 0o600); err == nil {
		t.Error("Replace into a missing directory succeeded")
	}
}

// TestReplaceKeepsTheOwner: root replacing another user's file (signing a
// vendor's bundle) leaves it that user's.
func TestReplaceKeepsTheOwner(t *testing.T) {
	testenv.NeedRoot(t, "give a file to another user")
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := Replace(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if o := st.Sys().(*syscall.Stat_t); o.Uid != 1234 || o.Gid != 5678 {
		t.Errorf("owner %d:%d after Replace, want 1234:5678", o.Uid, o.Gid)
	}
}
