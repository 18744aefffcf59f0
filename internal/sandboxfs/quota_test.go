//go:build linux

package sandboxfs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/airlockhq/airlock/internal/sandboxfs"
)

// The bounds the hog runs under: small, so that each attack ends fast.
const (
	quota    = 1 << 20
	maxFiles = 100
	maxOpen  = 64
)

// onDisk is what dir really holds: the blocks its files and directories
// take, as du counts them.
func onDisk(t *testing.T, dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		var st syscall.Stat_t
		if err == nil && p != dir && syscall.Lstat(p, &st) == nil {
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}

// TestQuotaHolds runs testdata/hog, a real wasip1 program, once per attack
// on a /data with a quota, and checks what it got. After each run, the
// sandbox's account must equal a fresh count of the directory: an account
// that drifts (a rename over a file, an unlink of an open one) would let a
// plugin grow past its quota one step at a time.
func TestQuotaHolds(t *testing.T) {
	hog := compileWasip1(t, buildWasip1(t, "hog"))
	opts := sandboxfs.Options{Quota: quota, MaxFiles: maxFiles, MaxOpen: maxOpen}
	type result struct {
		ok bool
		n  int64
		// msg is the error the guest read
		msg string
	}
	run := func(t *testing.T, attack string, prepare func(dir string)) (result, string, []string) {
		dir := t.TempDir()
		if prepare != nil {
			prepare(dir)
		}
		var mu sync.Mutex
		var limits []string
		o := opts
		o.OnLimit = func(what string) { mu.Lock(); limits = append(limits, what); mu.Unlock() }
		fsys := sandboxfs.New(dir, o)
		line := strings.TrimSpace(hog.run(t, fsys, "hog", attack))
		t.Logf("%s", line)
		_, rest, _ := strings.Cut(line, ": ")
		fields := strings.SplitN(rest, " ", 3)
		if len(fields) < 2 {
			t.Fatalf("hog said %q", line)
		}
		res := result{ok: fields[0] == "ok"}
		res.n, _ = strconv.ParseInt(fields[1], 10, 64)
		if len(fields) == 3 {
			res.msg = fields[2]
		}
		// The account equals a fresh count, and the disk holds no more
		// than the quota (plus the blocks a file system spends on
		// directories' entries, bounded by maxFiles).
		bytes, files, ok := sandboxfs.Usage(fsys)
		fb, ff, _ := sandboxfs.Usage(sandboxfs.New(dir, opts))
		if !ok || bytes != fb || files != ff {
			t.Errorf("%s: account says %d bytes in %d entries, a fresh count %d in %d", attack, bytes, files, fb, ff)
		}
		if bytes > quota || files > maxFiles {
			t.Errorf("%s: account at %d bytes in %d entries, past the quota", attack, bytes, files)
		}
		if d := onDisk(t, dir); d > quota+maxFiles*4096 {
			t.Errorf("%s: %d bytes on disk, past the quota of %d", attack, d, quota)
		}
		return res, dir, limits
	}
	refused := func(t *testing.T, res result, limits []string, what string) {
		t.Helper()
		if res.ok || !strings.Contains(res.msg, "I/O error") {
			t.Errorf("want the quota's refusal (EIO), got %+v", res)
		}
		if len(limits) == 0 || limits[0] != what {
			t.Errorf("OnLimit got %v, want %q", limits, what)
		}
	}

	for _, attack := range []string{"write", "append", "unlinkopen"} {
		t.Run(attack, func(t *testing.T) {
			res, _, limits := run(t, attack, nil)
			refused(t, res, limits, "bytes")
			if res.n > quota {
				t.Errorf("wrote %d bytes, quota %d", res.n, quota)
			}
		})
	}
	t.Run("existing content counts", func(t *testing.T) {
		res, _, limits := run(t, "write", func(dir string) {
			os.WriteFile(filepath.Join(dir, "old"), make([]byte, 600<<10), 0o600)
		})
		refused(t, res, limits, "bytes")
		if res.n > quota-600<<10 {
			t.Errorf("wrote %d bytes beside 600 KiB, quota %d", res.n, quota)
		}
	})
	for _, attack := range []string{"pwrite", "truncate"} {
		t.Run(attack, func(t *testing.T) {
			res, _, limits := run(t, attack, nil)
			refused(t, res, limits, "bytes")
		})
	}
	for _, attack := range []string{"files", "dirs", "deep", "smallfiles"} {
		t.Run(attack, func(t *testing.T) {
			res, _, limits := run(t, attack, nil)
			if res.ok || res.n > maxFiles {
				t.Errorf("made %d entries, bound %d: %+v", res.n, maxFiles, res)
			}
			if attack != "smallfiles" {
				refused(t, res, limits, "files")
			}
		})
	}
	t.Run("fds", func(t *testing.T) {
		res, _, limits := run(t, "fds", nil)
		refused(t, res, limits, "open files")
		if res.n >= maxOpen {
			t.Errorf("held %d descriptors open, bound %d", res.n, maxOpen)
		}
	})
	t.Run("longname", func(t *testing.T) {
		res, _, _ := run(t, "longname", nil)
		if res.ok || res.n != 1 || !strings.Contains(strings.ToLower(res.msg), "file name too long") {
			t.Errorf("want 255 bytes accepted and 256 refused with ENAMETOOLONG: %+v", res)
		}
	})
	t.Run("longpath", func(t *testing.T) {
		res, _, _ := run(t, "longpath", nil)
		if res.ok || !strings.Contains(strings.ToLower(res.msg), "file name too long") {
			t.Errorf("want a 5000-byte path refused with ENAMETOOLONG: %+v", res)
		}
	})
	for _, attack := range []string{"storm", "reuse"} {
		t.Run(attack, func(t *testing.T) {
			if res, _, _ := run(t, attack, nil); !res.ok {
				t.Errorf("%+v", res)
			}
		})
	}
}

// A read-only sandbox and one without a quota keep no account.
func TestNoQuotaNoAccount(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []sandboxfs.Options{{}, {ReadOnly: true, Quota: quota}} {
		if _, _, ok := sandboxfs.Usage(sandboxfs.New(dir, o)); ok {
			t.Errorf("%+v keeps an account", o)
		}
	}
	var _ experimentalsys.FS = sandboxfs.New(dir, sandboxfs.Options{})
}
