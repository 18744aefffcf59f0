package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz input is a sparse image, so that a seed under 8 KiB can still
// hold a superblock at 64 KiB or an MFT record megabytes in:
//
//	u64 device size | { u64 offset | u16 length | length bytes }...
//
// Everything not covered by a chunk reads as zeros.
type sparseImage struct {
	size   int64
	chunks []sparseChunk
}

type sparseChunk struct {
	off  int64
	data []byte
}

// maxFuzzSize keeps decoded sizes sane; offsets past it are dropped.
const maxFuzzSize = 1 << 40

func decodeSparse(b []byte) *sparseImage {
	img := &sparseImage{}
	if len(b) < 8 {
		img.size = int64(len(b)) * 4096
		return img
	}
	img.size = int64(binary.LittleEndian.Uint64(b) % maxFuzzSize)
	for b = b[8:]; len(b) >= 10; {
		off := int64(binary.LittleEndian.Uint64(b) % maxFuzzSize)
		n := int(binary.LittleEndian.Uint16(b[8:]))
		b = b[10:]
		n = min(n, len(b))
		img.chunks = append(img.chunks, sparseChunk{off: off, data: b[:n]})
		b = b[n:]
	}
	return img
}

func (img *sparseImage) encode() []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(img.size))
	for _, c := range img.chunks {
		out = binary.LittleEndian.AppendUint64(out, uint64(c.off))
		out = binary.LittleEndian.AppendUint16(out, uint16(len(c.data)))
		out = append(out, c.data...)
	}
	return out
}

func (img *sparseImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= img.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > img.size-off {
		n = int(img.size - off)
	}
	clear(p[:n])
	for _, c := range img.chunks {
		lo, hi := max(off, c.off), min(off+int64(n), c.off+int64(len(c.data)))
		if lo < hi {
			copy(p[lo-off:hi-off], c.data[lo-c.off:hi-c.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func FuzzProbe(f *testing.F) {
	f.Add([]byte{})
	f.Add((&sparseImage{size: 1 << 20}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeSparse(data)
		res, err := Probe(img, img.size)
		switch {
		case err == nil:
			if (res.Type == "" || res.Usage == "") && res.PTType == "" {
				t.Fatalf("match without type, usage or partition table: %+v", res)
			}
			_ = res.Properties()
		case errors.Is(err, ErrUnknown), errors.Is(err, ErrAmbiguous):
		default:
			// The sparse image never fails a read, so no other error may
			// come out.
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

// recordingReader notes which ranges a probe read.
type recordingReader struct {
	r      io.ReaderAt
	ranges [][2]int64
}

func (rr *recordingReader) ReadAt(p []byte, off int64) (int, error) {
	rr.ranges = append(rr.ranges, [2]int64{off, off + int64(len(p))})
	return rr.r.ReadAt(p, off)
}

// TestWriteFuzzSeeds rebuilds testdata/fuzz/FuzzProbe from real images:
// only the sectors that change the result are kept, as a sparse image.
// Run it with AIRLOCK_PROBE_WRITE_SEEDS=1 after adding a format.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("AIRLOCK_PROBE_WRITE_SEEDS") != "1" {
		t.Skip("set AIRLOCK_PROBE_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzProbe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			path := makeImage(t, c)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			rr := &recordingReader{r: f}
			want, err := Probe(rr, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			img := minimalImage(t, f, st.Size(), rr.ranges, want)
			seed := img.encode()
			if len(seed) >= 8<<10 {
				t.Fatalf("seed is %d bytes, want < 8 KiB", len(seed))
			}
			got, err := Probe(decodeSparse(seed), st.Size())
			if err != nil || got != want {
				t.Fatalf("seed probes to %+v, %v; image to %+v", got, err, want)
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
			if err := os.WriteFile(filepath.Join(dir, c.name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// minimalImage keeps the 512-byte sectors the probe read, drops each one
// whose loss does not change the result, and stores what is left as runs
// of non-zero bytes.
func minimalImage(t *testing.T, f io.ReaderAt, size int64, ranges [][2]int64, want Result) *sparseImage {
	t.Helper()
	sectors := map[int64][]byte{}
	var order []int64
	for _, r := range ranges {
		for s := r[0] &^ 511; s < r[1]; s += 512 {
			if _, ok := sectors[s]; ok {
				continue
			}
			b := make([]byte, 512)
			if n, _ := f.ReadAt(b, s); n == 0 || allZero(b) {
				continue
			}
			sectors[s] = b
			order = append(order, s)
		}
	}
	build := func() *sparseImage {
		img := &sparseImage{size: size}
		for _, s := range order {
			b := sectors[s]
			if b == nil {
				continue
			}
			// Split into non-zero runs; gaps of 16 zero bytes or more
			// are not worth a chunk header.
			for i := 0; i < len(b); {
				if b[i] == 0 {
					i++
					continue
				}
				j, zeros := i, 0
				for ; j < len(b) && zeros < 16; j++ {
					if b[j] == 0 {
						zeros++
					} else {
						zeros = 0
					}
				}
				end := j - zeros
				img.chunks = append(img.chunks, sparseChunk{off: s + int64(i), data: b[i:end]})
				i = j
			}
		}
		return img
	}
	for _, s := range order {
		keep := sectors[s]
		sectors[s] = nil
		if got, err := Probe(build(), size); err != nil || got != want {
			sectors[s] = keep
		}
	}
	img := build()
	if got, err := Probe(img, size); err != nil || !bytes.Equal([]byte(fmt.Sprint(got)), []byte(fmt.Sprint(want))) {
		t.Fatalf("minimal image probes to %+v, %v", got, err)
	}
	return img
}
