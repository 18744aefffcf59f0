package gate

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// countRecords counts the lines of every audit file (the live one and
// the rotated ones) and checks that each is whole JSON.
func countRecords(t *testing.T, path string, keep int) (n int, seen map[string]bool) {
	t.Helper()
	seen = map[string]bool{}
	files := []string{path}
	for i := 1; i <= keep; i++ {
		files = append(files, fmt.Sprintf("%s.%d", path, i))
	}
	for _, f := range files {
		fd, err := os.Open(f)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fd)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}") {
				t.Errorf("%s: torn record %q", f, line)
			}
			if seen[line] {
				t.Errorf("%s: record written twice: %s", f, line)
			}
			seen[line] = true
			n++
		}
		fd.Close()
	}
	return n, seen
}

// Writers on many goroutines, the file rotating under them many times:
// every record written is in exactly one of the files, whole.
func TestRotationLosesNoRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	const writers, each = 8, 2000
	const keep = 200 // more than the rotations (about 50), to count every record
	s, err := OpenSink(SinkConfig{Dest: path, MaxSize: 64 << 10, Keep: keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(s, nil))
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				log.Info("audit", "writer", w, "seq", i, "pad", strings.Repeat("x", 100))
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n, _ := countRecords(t, path, keep)
	if n != writers*each {
		t.Errorf("%d records across the files, want %d", n, writers*each)
	}
	if s.Rotations() < 10 || s.Failures() != 0 {
		t.Errorf("rotations = %d (want many), failures = %d", s.Rotations(), s.Failures())
	}
	// Keep bounds the files: with Keep 2, only three remain.
	s2, err := OpenSink(SinkConfig{Dest: filepath.Join(dir, "small.jsonl"), MaxSize: 64 << 10, Keep: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		s2.Write([]byte(`{"msg":"audit","pad":"` + strings.Repeat("y", 100) + `"}` + "\n"))
	}
	s2.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "small.jsonl*"))
	if len(files) != 3 {
		t.Errorf("files = %v, want small.jsonl, .1 and .2", files)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 64<<10 {
			t.Errorf("%s is %d bytes, above the 64 KiB rotation size", f, st.Size())
		}
	}
}

// First boot on an empty volume: the audit file's directory does not
// exist. It is made (0700) and the file (0600); a path that cannot be made
// is an error that names it.
func TestSinkMakesItsDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "airlock", "audit.jsonl")
	s, err := OpenSink(SinkConfig{Dest: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("{}\n"))
	s.Close()
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700 | os.ModeDir, path: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode() != want {
			t.Errorf("%s: %v, mode %v, want %v", p, err, st.Mode(), want)
		}
	}
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	bad := filepath.Join(blocker, "airlock", "audit.jsonl")
	if _, err := OpenSink(SinkConfig{Dest: bad}, nil); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "cannot create its directory") {
		t.Errorf("err = %v, want one naming %s", err, bad)
	}
}
