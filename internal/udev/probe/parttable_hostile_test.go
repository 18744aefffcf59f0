package probe

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// gptEnt is one GPT entry for gptImage, in sectors.
type gptEnt struct {
	first, last uint64
	name        string
}

// gptImage builds a disk of sectors 512-byte sectors with a protective MBR
// and a GPT whose primary header at LBA 1 and backup at the last LBA both
// point at the entry array at LBA 2. num and esz are the header's entry
// count and size (0: 128 and 128), hsz its header size (0: 92); the CRCs
// are right unless the fields make them impossible to compute.
func gptImage(sectors int64, ents []gptEnt, num, esz, hsz uint32) *sparseImage {
	if num == 0 {
		num = 128
	}
	if esz == 0 {
		esz = 128
	}
	if hsz == 0 {
		hsz = 92
	}
	last := uint64(sectors - 1)
	mbr := make([]byte, 512)
	mbr[446+4] = 0xEE
	binary.LittleEndian.PutUint32(mbr[446+8:], 1)
	binary.LittleEndian.PutUint32(mbr[446+12:], uint32(min(last, 0xFFFFFFFF)))
	mbr[510], mbr[511] = 0x55, 0xAA
	// The array as far as it fits in 16 KiB; its CRC covers num*esz
	// bytes, which for a hostile count is never computed by the reader.
	arr := make([]byte, 128*128)
	for i, e := range ents {
		b := arr[i*128:]
		copy(b[0:16], []byte{0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4})
		b[16] = byte(i + 1)
		binary.LittleEndian.PutUint64(b[32:], e.first)
		binary.LittleEndian.PutUint64(b[40:], e.last)
		for j, r := range e.name {
			binary.LittleEndian.PutUint16(b[56+2*j:], uint16(r))
		}
	}
	arrCRC := crc32.ChecksumIEEE(arr)
	if uint64(num)*uint64(esz) == uint64(len(arr)) {
		arrCRC = crc32.ChecksumIEEE(arr[:num*esz])
	}
	header := func(my uint64) []byte {
		h := make([]byte, 512)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], hsz)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], last-33)
		copy(h[56:72], "0123456789abcdef")
		binary.LittleEndian.PutUint64(h[72:], 2)
		binary.LittleEndian.PutUint32(h[80:], num)
		binary.LittleEndian.PutUint32(h[84:], esz)
		binary.LittleEndian.PutUint32(h[88:], arrCRC)
		if hsz <= 512 {
			binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hsz]))
		}
		return h
	}
	return &sparseImage{size: sectors * 512, chunks: []sparseChunk{
		{0, mbr}, {512, header(1)}, {1024, arr}, {int64(last) * 512, header(last)},
	}}
}

func gptParts(t *testing.T, img *sparseImage) *ptable {
	t.Helper()
	tab, ok, err := readTable(&dev{r: img, size: img.size})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return nil
	}
	return tab
}

// Entries that point past the disk (or past the last usable sector, or
// end before they start) are left out, as blkid does; the good entries
// around them keep their numbers.
func TestGPTEntryPastDisk(t *testing.T) {
	img := gptImage(4096, []gptEnt{{34, 1000, "ok one"}, {2000, 1 << 40, "past"}, {3000, 2999, "backwards"}, {1001, 2000, "ok four"}}, 0, 0, 0)
	tab := gptParts(t, img)
	if tab == nil || tab.typ != "gpt" {
		t.Fatalf("table %+v, want a gpt", tab)
	}
	if len(tab.parts) != 2 || tab.parts[0].Number != 1 || tab.parts[1].Number != 4 || tab.parts[1].Name != "ok four" {
		t.Errorf("parts %+v, want entries 1 and 4 only", tab.parts)
	}
}

// A header claiming 2^32-1 entries (or entries of 2^32-8 bytes) is not
// read: the array would be terabytes. With both headers saying so there
// is no table, and the probe answers ErrUnknown at once.
func TestGPTEntryCountHuge(t *testing.T) {
	for _, c := range []struct{ num, esz uint32 }{{0xFFFFFFFF, 128}, {128, 0xFFFFFFF8}, {1 << 16, 1 << 16}} {
		img := gptImage(4096, []gptEnt{{34, 1000, "x"}}, c.num, c.esz, 0)
		rr := &recordingReader{r: img}
		if tab := gptParts(t, &sparseImage{size: img.size, chunks: img.chunks}); tab != nil {
			t.Errorf("num=%d esz=%d: table %+v, want none", c.num, c.esz, tab)
		}
		if _, err := Probe(rr, img.size); !errors.Is(err, ErrUnknown) {
			t.Errorf("num=%d esz=%d: Probe = %v, want ErrUnknown", c.num, c.esz, err)
		}
		for _, r := range rr.ranges {
			if r[1]-r[0] > maxRead {
				t.Errorf("num=%d esz=%d: read of %d bytes", c.num, c.esz, r[1]-r[0])
			}
		}
	}
}

// Overlapping entries are both reported, as blkid reports them; a
// partition is resolved by its number, so each node gets its own entry.
func TestGPTOverlapping(t *testing.T) {
	img := gptImage(4096, []gptEnt{{34, 2000, "outer"}, {34, 2000, "twin"}, {100, 500, "inner"}}, 0, 0, 0)
	tab := gptParts(t, img)
	if tab == nil || len(tab.parts) != 3 {
		t.Fatalf("table %+v, want 3 entries", tab)
	}
	for _, c := range []struct {
		no   int
		want string
	}{{1, "outer"}, {2, "twin"}, {3, "inner"}} {
		p := tab.parts[c.no-1]
		e, err := partEntry(&Disk{R: img, Size: img.size, Devno: "7:0", Number: c.no, Start: p.Offset, Size512: p.Size})
		if err != nil || e.Name != c.want || e.Number != c.no {
			t.Errorf("partition %d: %+v, %v; want %q", c.no, e, err, c.want)
		}
	}
}

// A primary header whose size field is huge (or too small) is refused;
// the backup at the last sector is read instead, as blkid does. With both
// damaged there is no table.
func TestGPTHeaderSizeHuge(t *testing.T) {
	img := gptImage(4096, []gptEnt{{34, 1000, "backup ok"}}, 0, 0, 0)
	bad := gptImage(4096, nil, 0, 0, 0xFFFFFFFF).chunks[1] // a primary header with hsz 2^32-1
	img.chunks = append(img.chunks, bad)
	tab := gptParts(t, img)
	if tab == nil || len(tab.parts) != 1 || tab.parts[0].Name != "backup ok" {
		t.Fatalf("table %+v, want the backup's one entry", tab)
	}
	both := gptImage(4096, []gptEnt{{34, 1000, "x"}}, 0, 0, 0xFFFFFFFF)
	if tab := gptParts(t, both); tab != nil {
		t.Errorf("both headers damaged: table %+v, want none", tab)
	}
	small := gptImage(4096, []gptEnt{{34, 1000, "x"}}, 0, 0, 12)
	if tab := gptParts(t, small); tab != nil {
		t.Errorf("header size 12: table %+v, want none", tab)
	}
}

// An extended partition whose EBR links to itself: the chain stops (one
// logical partition, not a loop) and the probe ends.
func TestDOSExtendedLoop(t *testing.T) {
	tab := gptParts(t, dosLoopImage())
	if tab == nil || tab.typ != "dos" || tab.id != "cafef00d" {
		t.Fatalf("table %+v, want dos cafef00d", tab)
	}
	if len(tab.parts) != 3 || tab.parts[2].Number != 5 || tab.parts[2].Offset != 4160 || tab.parts[2].UUID != "cafef00d-05" {
		t.Errorf("parts %+v, want 1, 2 and one logical 5 at 4160", tab.parts)
	}
}

// dosLoopImage is an MBR with a primary partition and an extended one
// whose second EBR repeats the first's data partition and links to itself.
func dosLoopImage() *sparseImage {
	mbr := make([]byte, 512)
	put := func(b []byte, i int, typ byte, start, size uint32) {
		e := b[446+16*i:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], size)
	}
	binary.LittleEndian.PutUint32(mbr[440:], 0xCAFEF00D)
	put(mbr, 0, 0x83, 2048, 2048)
	put(mbr, 1, 0x05, 4096, 4096)
	mbr[510], mbr[511] = 0x55, 0xAA
	ebr := make([]byte, 512)
	put(ebr, 0, 0x83, 64, 1000)
	put(ebr, 1, 0x05, 0+1, 100) // the next link: 4096+1, which links back to itself below
	ebr[510], ebr[511] = 0x55, 0xAA
	ebr2 := append([]byte(nil), ebr...)
	put(ebr2, 0, 0x83, 63, 1000) // its data partition at 4096+1+63 = the first one's: a duplicate
	put(ebr2, 1, 0x05, 1, 100)   // and itself as the next link
	return &sparseImage{size: 8192 * 512, chunks: []sparseChunk{{0, mbr}, {4096 * 512, ebr}, {4097 * 512, ebr2}}}
}

// FuzzPartTable probes a fuzzed disk and each partition its table lists,
// in the disk's context: no panic, no read over maxRead, PART_ENTRY_*
// only from an entry that lies where the partition does.
func FuzzPartTable(f *testing.F) {
	f.Add(gptImage(4096, []gptEnt{{34, 1000, "a"}, {1001, 2000, "b"}}, 0, 0, 0).encode())
	f.Add(gptImage(4096, []gptEnt{{34, 1 << 40, "past"}}, 0xFFFFFFFF, 0, 0xFFFFFFFF).encode())
	f.Add(dosLoopImage().encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeSparse(data)
		rr := &recordingReader{r: img}
		_, _ = Probe(rr, img.size)
		tab, ok, err := readTable(&dev{r: rr, size: img.size})
		if err != nil {
			t.Fatalf("readTable: %v (the sparse image never fails a read)", err)
		}
		for _, r := range rr.ranges {
			if r[1]-r[0] > maxRead {
				t.Fatalf("read of %d bytes", r[1]-r[0])
			}
		}
		if !ok {
			return
		}
		for _, p := range tab.parts[:min(len(tab.parts), 8)] {
			e, err := partEntry(&Disk{R: img, Size: img.size, Devno: "1:2", Number: p.Number, Start: p.Offset, Size512: p.Size})
			if err != nil || e.Offset != p.Offset || e.Size != p.Size {
				t.Fatalf("partition %d: %+v, %v", p.Number, e, err)
			}
			_ = Result{Part: e}.Properties()
		}
	})
}
