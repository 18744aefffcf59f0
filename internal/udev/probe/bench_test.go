package probe

import (
	"bytes"
	"os"
	"testing"
)

// BenchmarkProbe measures a probe of real images held in memory, so that
// it counts the parsing and not the disk. A uevent storm probes each new
// block device once, so this is the per-device cost.
func BenchmarkProbe(b *testing.B) {
	for _, name := range []string{"vfat32", "exfat", "ext4", "ntfs", "btrfs"} {
		var c fsCase
		for _, fc := range fsCases {
			if fc.name == name {
				c = fc
			}
		}
		b.Run(name, func(b *testing.B) {
			path := makeImage(b, c)
			data, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			r := bytes.NewReader(data)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := Probe(r, int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
