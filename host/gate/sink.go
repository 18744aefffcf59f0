package gate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// SinkConfig says where the audit stream goes.
type SinkConfig struct {
	// Dest is "stderr", "stdout", or an absolute file path.
	Dest string
	// MaxSize is the size at which the file is rotated (0: never). Keep is
	// how many rotated files (Dest.1 the newest ... Dest.Keep) are kept.
	MaxSize int64
	Keep    int
	// Reserve is the space set aside beside the file (Dest.reserve), given
	// back to the file system when the disk is full so that the audit goes
	// on while the operator acts. 0 means none.
	Reserve int64
}

// DefaultReserve is the audit file's reserved space.
const DefaultReserve = 1 << 20

// Sink writes the audit stream to its destination, one record per Write
// (as slog's handlers call it). slog's handlers drop write errors, so a full
// disk (or a closed stderr) would lose records silently; instead the sink
//   - rotates the file at MaxSize under its lock, so no record is split or
//     lost across files;
//   - on a full disk, deletes its reserve file and writes on, with a record
//     saying so;
//   - past that, writes the record to stderr, counts it, says so on the
//     main log (at the first failure, then at most once a minute), and
//     when the file works again, writes a record there with the count and
//     where those records went.
//
// The file is fsynced at rotation and at Close, not per record: a record
// is in the page cache at once, so it survives a crash of the host but not
// a power loss in the seconds before the next rotation or shutdown.
type Sink struct {
	cfg      SinkConfig
	log      *slog.Logger
	fallback io.Writer // nil for none

	mu      sync.Mutex // guards all below, and orders the records
	w       io.Writer
	f       *os.File // nil for stderr and stdout
	size    int64
	lost    uint64 // records sent to the fallback since the file last worked
	warned  time.Time
	failed  atomic.Uint64
	rotated atomic.Uint64
}

// OpenSink opens the audit stream's destination. A file's directory is
// created (0700) if it is missing, and the file (0600) is appended to.
// log receives notices about the sink itself.
func OpenSink(cfg SinkConfig, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{cfg: cfg, log: log}
	switch cfg.Dest {
	case "stderr", "":
		s.cfg.Dest, s.w = "stderr", os.Stderr
		return s, nil
	case "stdout":
		s.w = os.Stdout
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Dest), 0o700); err != nil {
		return nil, fmt.Errorf("audit log %s: cannot create its directory: %w", cfg.Dest, err)
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	s.fallback = os.Stderr
	s.reserve()
	return s, nil
}

func (s *Sink) open() error {
	f, err := os.OpenFile(s.cfg.Dest, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("audit log %s: %w", s.cfg.Dest, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log %s: %w", s.cfg.Dest, err)
	}
	if !st.Mode().IsRegular() {
		// A device (say /dev/full in a test) is written to, never rotated.
		s.cfg.MaxSize = 0
	}
	s.f, s.w, s.size = f, f, st.Size()
	return nil
}

func (s *Sink) reservePath() string { return s.cfg.Dest + ".reserve" }

// reserve sets aside Reserve bytes of real blocks (fallocate) if they are
// not set aside yet. It fails quietly: a disk too full for it is what the
// reserve is for.
func (s *Sink) reserve() {
	if s.cfg.Reserve <= 0 || s.f == nil || !regular(s.f) {
		return
	}
	f, err := os.OpenFile(s.reservePath(), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, s.cfg.Reserve); err != nil {
		f.Close()
		os.Remove(s.reservePath())
	}
}

func regular(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}

// Name is the destination: the file's path, or "stderr" / "stdout".
func (s *Sink) Name() string { return s.cfg.Dest }

// IsFile reports whether the destination is a file (not stderr or stdout).
func (s *Sink) IsFile() bool { return s.cfg.Dest != "stderr" && s.cfg.Dest != "stdout" }

// Failures counts the records the destination did not take.
func (s *Sink) Failures() uint64 { return s.failed.Load() }

// Rotations counts the rotations so far.
func (s *Sink) Rotations() uint64 { return s.rotated.Load() }

// Write writes one record.
func (s *Sink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxSize > 0 && s.size > 0 && s.size+int64(len(b)) > s.cfg.MaxSize {
		if err := s.rotate(); err != nil {
			s.log.Error("audit log rotation failed; writing on to the same file", "path", s.cfg.Dest, "err", err)
		}
	}
	if s.lost > 0 && s.write(gapRecord(s.lost, "stderr")) == nil {
		s.lost = 0
	}
	err := s.write(b)
	if err != nil && errors.Is(err, syscall.ENOSPC) && s.release() {
		s.write(noticeRecord(fmt.Sprintf("the disk is full; released the audit log's %d-byte reserve (%s) to go on writing; free space on the disk", s.cfg.Reserve, s.reservePath())))
		err = s.write(b)
	}
	if err == nil {
		return len(b), nil
	}
	count := s.failed.Add(1)
	where := "audit records are lost until it works again"
	if s.fallback != nil {
		s.fallback.Write(b)
		s.lost++
		where = "audit records go to stderr until it works again"
	}
	if count == 1 || time.Since(s.warned) >= time.Minute {
		s.warned = time.Now()
		s.log.Error("audit log write failed; "+where+" (check the disk, or where the host's output goes, and log.audit in runtime.toml)",
			"path", s.cfg.Dest, "err", err, "failed_writes", count)
	}
	return 0, err
}

// write writes b whole or not at all: a short write (a disk filling up
// mid-record) is cut back, so that the file holds whole records only.
func (s *Sink) write(b []byte) error {
	n, err := s.w.Write(b)
	if err == nil {
		s.size += int64(n)
		return nil
	}
	if n > 0 && s.f != nil {
		s.f.Truncate(s.size)
	}
	return err
}

// release deletes the reserve file; false if there was none.
func (s *Sink) release() bool {
	return s.f != nil && s.cfg.Reserve > 0 && os.Remove(s.reservePath()) == nil
}

// rotate moves Dest to Dest.1 (and Dest.k to Dest.k+1, dropping the one
// past Keep) and opens a new Dest. The caller holds mu, so no record is
// written while the files move.
func (s *Sink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	keep := max(s.cfg.Keep, 1)
	os.Remove(s.rotatedPath(keep))
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(s.rotatedPath(i), s.rotatedPath(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("audit log rotation", "err", err)
		}
	}
	rerr := os.Rename(s.cfg.Dest, s.rotatedPath(1))
	if err := s.open(); err != nil {
		// Nothing to write to: the fallback takes the records.
		s.w = errWriter{err}
		s.f = nil
		return err
	}
	s.rotated.Add(1)
	s.reserve()
	return rerr
}

func (s *Sink) rotatedPath(i int) string { return s.cfg.Dest + "." + strconv.Itoa(i) }

// Close syncs and closes the file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	s.f.Sync()
	err := s.f.Close()
	s.f, s.w = nil, errWriter{os.ErrClosed}
	return err
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

// sinkRecord is the sink's own record, in the stream's JSON shape.
type sinkRecord struct {
	Time   time.Time `json:"time"`
	Level  string    `json:"level"`
	Msg    string    `json:"msg"`
	Stream string    `json:"stream"`
	Lost   uint64    `json:"lost,omitempty"`
	Reason string    `json:"reason"`
}

func (r sinkRecord) bytes() []byte {
	r.Time, r.Level, r.Stream = time.Now(), "ERROR", "audit"
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

func gapRecord(n uint64, where string) []byte {
	return sinkRecord{Msg: "audit gap", Lost: n, Reason: "the audit log could not be written; these records went to " + where + " instead"}.bytes()
}

func noticeRecord(reason string) []byte {
	return sinkRecord{Msg: "audit notice", Reason: reason}.bytes()
}
