package probe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// fsCase makes one real image with a real mkfs and says what must be read
// back. blkid is the oracle for everything, the want fields for what we
// chose (labels, UUIDs and serials we passed to mkfs).
type fsCase struct {
	name  string
	cmd   string // the mkfs binary
	pkg   string // the Debian package that ships it
	size  string // for truncate -s; the image is sparse
	args  []string
	setup func(t testing.TB, img string) // after mkfs, e.g. relabel
	// build replaces "cmd args... img" for tools that take the image
	// elsewhere on their command line.
	build func(t testing.TB, img string)
	want  Result // non-empty fields must match
	// noLabel asserts that there is no label at all.
	noLabel bool
}

var fsCases = []fsCase{
	{name: "vfat12", cmd: "mkfs.vfat", pkg: "dosfstools", size: "2M",
		args: []string{"-F", "12", "-n", "MY DISK", "-i", "1234abcd"},
		want: Result{Type: "vfat", Label: "MY DISK", UUID: "1234-ABCD", Version: "FAT12", Usage: "filesystem"}},
	{name: "vfat16", cmd: "mkfs.vfat", pkg: "dosfstools", size: "20M",
		args: []string{"-F", "16", "-n", "DATA16", "-i", "DEADBEEF"},
		want: Result{Type: "vfat", Label: "DATA16", UUID: "DEAD-BEEF", Version: "FAT16"}},
	{name: "vfat32", cmd: "mkfs.vfat", pkg: "dosfstools", size: "33M",
		args: []string{"-F", "32", "-n", "BIG32", "-i", "0badf00d"},
		want: Result{Type: "vfat", Label: "BIG32", UUID: "0BAD-F00D", Version: "FAT32"}},
	{name: "vfat-nolabel", cmd: "mkfs.vfat", pkg: "dosfstools", size: "16M",
		args: []string{"-F", "16", "-i", "00c0ffee"},
		want: Result{Type: "vfat", UUID: "00C0-FFEE"}, noLabel: true},
	{name: "vfat-rootdir-label-wins", cmd: "mkfs.vfat", pkg: "dosfstools", size: "16M",
		args: []string{"-F", "16", "-n", "ROOTDIR"},
		// A stale boot-sector copy, as some tools leave after relabelling:
		// the root-directory entry is what counts.
		setup: func(t testing.TB, img string) { patch(t, img, 0x2B, []byte("BOOTSECTOR ")) },
		want:  Result{Type: "vfat", Label: "ROOTDIR"}},
	{name: "vfat-no-bootsector-fallback", cmd: "mkfs.vfat", pkg: "dosfstools", size: "33M",
		// No root-directory label entry: blkid (2.38) then reports no
		// LABEL, only LABEL_FATBOOT, and udev has no ID_FS_LABEL.
		args:  []string{"-F", "32", "-n", "NO NAME"},
		setup: func(t testing.TB, img string) { patch(t, img, 0x47, []byte("BOOTONLY   ")) },
		want:  Result{Type: "vfat", Version: "FAT32"}, noLabel: true},
	{name: "vfat-rootdir-noname", cmd: "mkfs.vfat", pkg: "dosfstools", size: "16M",
		// "NO NAME" in the root directory is a label like any other to blkid.
		args:  []string{"-F", "16", "-n", "ROOTDIR"},
		setup: func(t testing.TB, img string) { replace(t, img, "ROOTDIR    ", "NO NAME    ", -1) },
		want:  Result{Type: "vfat", Label: "NO NAME"}},
	{name: "vfat16-no-extended-bpb", cmd: "mkfs.vfat", pkg: "dosfstools", size: "16M",
		// Without the 0x28/0x29 extended boot signature the serial is
		// not trusted, so there is no UUID.
		args:  []string{"-F", "16", "-n", "OLDDOS", "-i", "12345678"},
		setup: func(t testing.TB, img string) { patch(t, img, 0x26, []byte{0}) },
		want:  Result{Type: "vfat", Label: "OLDDOS"}},
	{name: "exfat", cmd: "mkfs.exfat", pkg: "exfatprogs", size: "8M",
		args:  []string{"-L", "Ünïcode lbl"},
		setup: func(t testing.TB, img string) { run(t, "tune.exfat", "-I", "0x1a2b3c4d", img) },
		want:  Result{Type: "exfat", Label: "Ünïcode lbl", UUID: "1A2B-3C4D", Version: "1.0"}},
	{name: "exfat-nolabel", cmd: "mkfs.exfat", pkg: "exfatprogs", size: "4M",
		want: Result{Type: "exfat"}, noLabel: true},
	{name: "ext2", cmd: "mkfs.ext2", pkg: "e2fsprogs", size: "8M",
		args: []string{"-q", "-L", "ext two", "-U", "11111111-2222-3333-4444-555555555555"},
		want: Result{Type: "ext2", Label: "ext two", UUID: "11111111-2222-3333-4444-555555555555", Version: "1.0"}},
	{name: "ext2-shell-specials", cmd: "mkfs.ext2", pkg: "e2fsprogs", size: "4M",
		// Leading and doubled spaces and shell specials exercise blkid's
		// export escaping and udev's safe and \x encodings.
		args: []string{"-q", "-L", `  a  b's "$`},
		want: Result{Type: "ext2", Label: `  a  b's "$`}},
	{name: "ext3", cmd: "mkfs.ext3", pkg: "e2fsprogs", size: "8M",
		args: []string{"-q", "-L", "été", "-U", "22222222-3333-4444-5555-666666666666"},
		want: Result{Type: "ext3", Label: "été", UUID: "22222222-3333-4444-5555-666666666666"}},
	{name: "ext4", cmd: "mkfs.ext4", pkg: "e2fsprogs", size: "16M",
		args: []string{"-q", "-L", "Ünï 4", "-U", "33333333-4444-5555-6666-777777777777"},
		want: Result{Type: "ext4", Label: "Ünï 4", UUID: "33333333-4444-5555-6666-777777777777"}},
	{name: "ext4-bad-csum", cmd: "mkfs.ext4", pkg: "e2fsprogs", size: "8M",
		// A zeroed metadata_csum checksum: blkid 2.38.1 does not verify
		// it and reports the ext4; so do we (the kernel refuses the mount).
		args:  []string{"-q", "-L", "badcsum"},
		setup: func(t testing.TB, img string) { patch(t, img, 1024+0x3FC, make([]byte, 4)) },
		want:  Result{Type: "ext4", Label: "badcsum", BlockSize: 1024}},
	{name: "ext4-nojournal", cmd: "mkfs.ext4", pkg: "e2fsprogs", size: "8M",
		args: []string{"-q", "-O", "^has_journal", "-L", "nojournal"},
		want: Result{Type: "ext4", Label: "nojournal"}},
	{name: "btrfs", cmd: "mkfs.btrfs", pkg: "btrfs-progs", size: "120M",
		args: []string{"-q", "-f", "-L", "btr fs ü", "-U", "01234567-89ab-cdef-0123-456789abcdef"},
		want: Result{Type: "btrfs", Label: "btr fs ü", UUID: "01234567-89ab-cdef-0123-456789abcdef"}},
	{name: "xfs", cmd: "mkfs.xfs", pkg: "xfsprogs", size: "300M",
		args: []string{"-q", "-f", "-L", "xfs-été", "-m", "uuid=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},
		want: Result{Type: "xfs", Label: "xfs-été", UUID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}},
	{name: "ntfs", cmd: "mkfs.ntfs", pkg: "ntfs-3g", size: "8M",
		args: []string{"-F", "-Q", "-q", "-L", "NTFS Ünï"},
		want: Result{Type: "ntfs", Label: "NTFS Ünï"}},
	{name: "swap", cmd: "mkswap", pkg: "util-linux", size: "1M",
		args: []string{"-L", "swaplbl", "-U", "99999999-8888-7777-6666-555555555555"},
		want: Result{Type: "swap", Label: "swaplbl", UUID: "99999999-8888-7777-6666-555555555555", Usage: "other", Version: "1"}},
	{name: "f2fs", cmd: "mkfs.f2fs", pkg: "f2fs-tools", size: "64M",
		args: []string{"-q", "-f", "-l", "f2 été", "-U", "12345678-1234-1234-1234-123456789abc"},
		want: Result{Type: "f2fs", Label: "f2 été", UUID: "12345678-1234-1234-1234-123456789abc"}},
	{name: "iso9660", cmd: "genisoimage", pkg: "genisoimage",
		build: func(t testing.TB, img string) {
			run(t, "genisoimage", "-quiet", "-V", "PLAIN ISO", "-o", img, isoTree(t))
		},
		want: Result{Type: "iso9660", Label: "PLAIN ISO"}},
	{name: "iso9660-joliet", cmd: "genisoimage", pkg: "genisoimage",
		build: func(t testing.TB, img string) {
			run(t, "genisoimage", "-quiet", "-J", "-V", "Joliet été", "-o", img, isoTree(t))
		},
		want: Result{Type: "iso9660", Label: "Joliet été", Version: "Joliet Extension"}},
	{name: "iso9660-joliet-long", cmd: "genisoimage", pkg: "genisoimage",
		// Joliet keeps 16 characters; the rest comes from the primary
		// descriptor.
		build: func(t testing.TB, img string) {
			run(t, "genisoimage", "-quiet", "-J", "-V", "A_LONG_LABEL_FOR_JOLIET_1234", "-o", img, isoTree(t))
		},
		want: Result{Type: "iso9660", Label: "A_LONG_LABEL_FOR_JOLIET_1234"}},
	{name: "iso9660-ids", cmd: "genisoimage", pkg: "genisoimage",
		// The identifiers blkid reports, with spaces and Joliet's UTF-16
		// merged as for the label; the El Torito boot record's system id.
		build: func(t testing.TB, img string) {
			dir := isoTree(t)
			if err := os.WriteFile(filepath.Join(dir, "boot.img"), make([]byte, 2048), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "genisoimage", "-quiet", "-J", "-V", "IDS", "-sysid", "MY SYS", "-A", "My App été", "-publisher", "Pub Co",
				"-p", "Prep Er", "-volset", "VSET 1", "-b", "boot.img", "-no-emul-boot", "-o", img, dir)
		},
		want: Result{Type: "iso9660", Label: "IDS", BlockSize: 2048,
			ISO: ISOIDs{SystemID: "MY SYS", ApplicationID: "My App été", PublisherID: "Pub Co", DataPreparerID: "Prep Er", VolumeSetID: "VSET 1", BootSystemID: "EL TORITO SPECIFICATION"}}},
	{name: "squashfs", cmd: "mksquashfs", pkg: "squashfs-tools",
		build: func(t testing.TB, img string) { run(t, "mksquashfs", isoTree(t), img, "-quiet", "-noappend") },
		want:  Result{Type: "squashfs", Version: "4.0"}},
}

// isoTree is a directory with one file, for the image builders.
func isoTree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// replace rewrites the first n occurrences of old in the image file.
func replace(t testing.TB, img, old, new string, n int) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not in %s", old, img)
	}
	if err := os.WriteFile(img, bytes.Replace(b, []byte(old), []byte(new), n), 0o644); err != nil {
		t.Fatal(err)
	}
}

func patch(t testing.TB, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func makeImage(t testing.TB, c fsCase) string {
	t.Helper()
	testenv.NeedCommand(t, c.cmd, c.pkg)
	img := filepath.Join(t.TempDir(), c.name+".img")
	if c.size != "" {
		run(t, "truncate", "-s", c.size, img)
	}
	if c.build != nil {
		c.build(t, img)
	} else {
		run(t, c.cmd, append(c.args, img)...)
	}
	if c.setup != nil {
		c.setup(t, img)
	}
	return img
}

// blkidExport runs blkid -p (low-level probing, no cache) with -d (no
// M-x escaping of non-ASCII) and returns its KEY=value pairs.
func blkidExport(t *testing.T, img string, format string) (map[string]string, int) {
	t.Helper()
	testenv.NeedCommand(t, "blkid", "util-linux")
	args := []string{"-p", "-o", format}
	if format == "export" {
		args = append(args, "-d")
	}
	out, err := exec.Command("blkid", append(args, img)...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil, ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if format == "export" {
			v = unescapeExport(v)
		}
		m[k] = v
	}
	return m, 0
}

// unescapeExport undoes blkid's backslash before shell specials.
func unescapeExport(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func checkAgainstBlkid(t *testing.T, img string, got Result) {
	t.Helper()
	exp, rc := blkidExport(t, img, "export")
	if rc != 0 {
		t.Fatalf("blkid -p failed with %d", rc)
	}
	fromBlkid := Result{Type: exp["TYPE"], Label: exp["LABEL"], UUID: exp["UUID"], Usage: exp["USAGE"], Version: exp["VERSION"]}
	if got.Type != fromBlkid.Type || got.Label != fromBlkid.Label || got.UUID != fromBlkid.UUID || got.Usage != fromBlkid.Usage || got.Version != fromBlkid.Version {
		t.Errorf("Probe and blkid differ:\n probe %+v\n blkid %+v", got, fromBlkid)
	}
	udev, _ := blkidExport(t, img, "udev")
	want := map[string]string{}
	for _, k := range []string{"ID_FS_TYPE", "ID_FS_USAGE", "ID_FS_VERSION", "ID_FS_UUID", "ID_FS_UUID_ENC", "ID_FS_LABEL", "ID_FS_LABEL_ENC",
		"ID_FS_BLOCK_SIZE", "ID_FS_SYSTEM_ID", "ID_FS_VOLUME_SET_ID", "ID_FS_PUBLISHER_ID", "ID_FS_DATA_PREPARER_ID", "ID_FS_APPLICATION_ID", "ID_FS_BOOT_SYSTEM_ID"} {
		if v, ok := udev[k]; ok {
			want[k] = v
		}
	}
	props := got.Properties()
	for k, v := range want {
		if props[k] != v {
			t.Errorf("Properties()[%s] = %q, blkid -o udev says %q", k, props[k], v)
		}
	}
	for k, v := range props {
		if _, ok := want[k]; !ok {
			t.Errorf("Properties() has %s=%q that blkid -o udev lacks", k, v)
		}
	}
}

func TestProbeAgainstBlkid(t *testing.T) {
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			img := makeImage(t, c)
			got, err := ProbeFile(img)
			if err != nil {
				t.Fatalf("ProbeFile: %v", err)
			}
			checkWant(t, got, c.want, c.noLabel)
			checkAgainstBlkid(t, img, got)
		})
	}
}

func checkWant(t *testing.T, got, want Result, noLabel bool) {
	t.Helper()
	for _, f := range []struct{ name, got, want string }{
		{"Type", got.Type, want.Type}, {"Label", got.Label, want.Label}, {"UUID", got.UUID, want.UUID},
		{"Usage", got.Usage, want.Usage}, {"Version", got.Version, want.Version},
		{"BlockSize", fmt.Sprint(got.BlockSize), strings.TrimPrefix(fmt.Sprint(want.BlockSize), "0")},
		{"ISO", fmt.Sprintf("%+v", got.ISO), strings.TrimPrefix(fmt.Sprintf("%+v", want.ISO), fmt.Sprintf("%+v", ISOIDs{}))},
	} {
		if f.want != "" && f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	if noLabel && got.Label != "" {
		t.Errorf("Label = %q, want none", got.Label)
	}
}

func TestProbeAmbiguous(t *testing.T) {
	// A FAT32 volume whose reserved sectors still hold an ext4 superblock,
	// as after a careless reformat: blkid refuses to choose, and so do we.
	fat := makeImage(t, fsCase{name: "fat", cmd: "mkfs.vfat", pkg: "dosfstools", size: "33M", args: []string{"-F", "32", "-n", "FAT"}})
	ext := makeImage(t, fsCase{name: "ext", cmd: "mkfs.ext4", pkg: "e2fsprogs", size: "4M", args: []string{"-q", "-O", "^metadata_csum"}})
	b, err := os.ReadFile(ext)
	if err != nil {
		t.Fatal(err)
	}
	patch(t, fat, 1024, b[1024:2048])
	if _, err := ProbeFile(fat); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("ProbeFile = %v, want ErrAmbiguous", err)
	}
	if _, rc := blkidExport(t, fat, "export"); rc == 0 {
		t.Errorf("blkid -p accepted the image; it should see two signatures")
	}
}

// A btrfs whose first superblock is gone and whose copy at 64 MiB is
// intact: blkid 2.38.1 finds nothing, and neither do we (the kernel does
// not mount it either).
func TestProbeBtrfsBackupOnly(t *testing.T) {
	img := makeImage(t, fsCase{name: "btrfs-backup", cmd: "mkfs.btrfs", pkg: "btrfs-progs", size: "120M", args: []string{"-q", "-f", "-L", "backup"}})
	patch(t, img, 64<<10+0x40, make([]byte, 8))
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[64<<20+0x40:64<<20+0x48], []byte("_BHRfS_M")) {
		t.Fatal("mkfs.btrfs wrote no superblock copy at 64 MiB")
	}
	if res, err := ProbeFile(img); !errors.Is(err, ErrUnknown) {
		t.Errorf("ProbeFile = %+v, %v; want ErrUnknown", res, err)
	}
	if _, rc := blkidExport(t, img, "export"); rc != 2 {
		t.Errorf("blkid -p exit %d, want 2 (nothing found)", rc)
	}
}

func TestProbeUnknown(t *testing.T) {
	img := filepath.Join(t.TempDir(), "zero.img")
	run(t, "truncate", "-s", "4M", img)
	if _, err := ProbeFile(img); !errors.Is(err, ErrUnknown) {
		t.Errorf("ProbeFile = %v, want ErrUnknown", err)
	}
	if _, rc := blkidExport(t, img, "export"); rc != 2 {
		t.Errorf("blkid -p exit %d, want 2 (nothing found)", rc)
	}
	if _, err := Probe(bytes.NewReader(make([]byte, 1024)), 1024); !errors.Is(err, ErrUnknown) {
		t.Errorf("1 KiB device: %v, want ErrUnknown", err)
	}
}

// A device that fails to read must say so, not look empty.
func TestProbeReadError(t *testing.T) {
	_, err := Probe(failingReader{}, 1<<30)
	if err == nil || errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "medium error") {
		t.Errorf("Probe = %v, want the read error", err)
	}
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("medium error") }

func TestProbeFileMissing(t *testing.T) {
	if _, err := ProbeFile(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ProbeFile = %v, want ErrNotExist", err)
	}
}
