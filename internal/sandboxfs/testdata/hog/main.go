//go:build wasip1

// Command hog is a plugin that tries to take more of its /data than its quota allows, or
// more of the host's file descriptors than its share, one attack per run: the attack is
// its first argument. It prints "name: ok N" or "name: err N <error>", N being how much it
// got (bytes, files, descriptors) before it was stopped; sandboxfs's quota test reads it.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	attack := os.Args[1]
	n, err := attacks[attack]()
	if err != nil {
		fmt.Printf("%s: err %d %v\n", attack, n, err)
		return
	}
	fmt.Printf("%s: ok %d\n", attack, n)
}

var attacks = map[string]func() (int64, error){
	// Write 64 KiB chunks until refused.
	"write": func() (int64, error) {
		f, err := os.Create("/data/big")
		if err != nil {
			return 0, err
		}
		defer f.Close()
		return fill(f, 64<<20)
	},
	// Appending, in small pieces.
	"append": func() (int64, error) {
		f, err := os.OpenFile("/data/log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		var n int64
		line := []byte(strings.Repeat("x", 999) + "\n")
		for n < 64<<20 {
			m, err := f.Write(line)
			n += int64(m)
			if err != nil {
				return n, err
			}
		}
		return n, nil
	},
	// One byte far out: a sparse file of 1 GiB apparent size.
	"pwrite": func() (int64, error) {
		f, err := os.Create("/data/sparse")
		if err != nil {
			return 0, err
		}
		defer f.Close()
		m, err := f.WriteAt([]byte{1}, 1<<30)
		return int64(m), err
	},
	// ftruncate up: fd_filestat_set_size, and fd_allocate, which wazero does with it.
	"truncate": func() (int64, error) {
		f, err := os.Create("/data/grown")
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := f.Truncate(1 << 30); err != nil {
			return 0, err
		}
		st, err := f.Stat()
		return st.Size(), err
	},
	// Empty files until refused: inodes, not bytes.
	"files": func() (int64, error) {
		for i := int64(0); i < 1_000_000; i++ {
			f, err := os.Create(fmt.Sprintf("/data/f%d", i))
			if err != nil {
				return i, err
			}
			f.Close()
		}
		return 1_000_000, nil
	},
	// Directories until refused.
	"dirs": func() (int64, error) {
		for i := int64(0); i < 1_000_000; i++ {
			if err := os.Mkdir(fmt.Sprintf("/data/d%d", i), 0o700); err != nil {
				return i, err
			}
		}
		return 1_000_000, nil
	},
	// Directories in directories until refused: depth, and path length.
	"deep": func() (int64, error) {
		p := "/data"
		for i := int64(0); i < 1_000_000; i++ {
			p += "/d"
			if err := os.Mkdir(p, 0o700); err != nil {
				return i, err
			}
		}
		return 1_000_000, nil
	},
	// A name of 256 bytes (the kernel's NAME_MAX is 255).
	"longname": func() (int64, error) {
		if err := os.WriteFile("/data/"+strings.Repeat("n", 255), nil, 0o600); err != nil {
			return 0, err
		}
		return 1, os.WriteFile("/data/"+strings.Repeat("n", 256), nil, 0o600)
	},
	// A path of 5000 bytes, past the kernel's PATH_MAX.
	"longpath": func() (int64, error) {
		return 0, os.WriteFile("/data/"+strings.Repeat("a/", 2500)+"x", nil, 0o600)
	},
	// Open descriptors, never closed, until refused: each is a host fd.
	"fds": func() (int64, error) {
		if err := os.WriteFile("/data/x", nil, 0o600); err != nil {
			return 0, err
		}
		var keep []*os.File
		for i := int64(0); i < 100_000; i++ {
			f, err := os.Open("/data/x")
			if err != nil {
				return i, err
			}
			keep = append(keep, f)
		}
		return 100_000, nil
	},
	// Fill a file, unlink it while it is open, and fill another: the first one's blocks
	// are still in use until it is closed, so the second must not get them.
	"unlinkopen": func() (int64, error) {
		f, err := os.Create("/data/a")
		if err != nil {
			return 0, err
		}
		defer f.Close()
		fill(f, 64<<20)
		if err := os.Remove("/data/a"); err != nil {
			return 0, err
		}
		g, err := os.Create("/data/b")
		if err != nil {
			return 0, err
		}
		defer g.Close()
		return fill(g, 64<<20)
	},
	// Many small files, one byte each: each costs a block.
	"smallfiles": func() (int64, error) {
		for i := int64(0); i < 1_000_000; i++ {
			if err := os.WriteFile(fmt.Sprintf("/data/s%d", i), []byte{1}, 0o600); err != nil {
				return i, err
			}
		}
		return 1_000_000, nil
	},
	// Rename and unlink storm: write, rename over, unlink, thousands of times. The
	// account must end where the disk is.
	"storm": func() (int64, error) {
		for i := int64(0); i < 1000; i++ {
			if err := os.WriteFile("/data/tmp", make([]byte, 5000), 0o600); err != nil {
				return i, err
			}
			if err := os.Rename("/data/tmp", "/data/target"); err != nil {
				return i, err
			}
			if i%3 == 0 {
				if err := os.Remove("/data/target"); err != nil {
					return i, err
				}
			}
			os.Mkdir("/data/dir", 0o700)
			if err := os.Remove("/data/dir"); err != nil {
				return i, err
			}
		}
		return 1000, nil
	},
	// Truncate a full file to nothing and write again: the space comes back.
	"reuse": func() (int64, error) {
		f, err := os.Create("/data/r")
		if err != nil {
			return 0, err
		}
		defer f.Close()
		first, _ := fill(f, 64<<20)
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		f.Seek(0, 0)
		again, err := fill(f, first)
		if again != first {
			return again, fmt.Errorf("first fill %d, second %d: %v", first, again, err)
		}
		return again, nil
	},
}

// fill writes 64 KiB chunks to f until max bytes or an error.
func fill(f *os.File, max int64) (int64, error) {
	chunk := make([]byte, 64<<10)
	var n int64
	for n < max {
		m, err := f.Write(chunk[:min(int64(len(chunk)), max-n)])
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
