// Command backup-logs copies the application's logs to a USB stick
// labelled BACKUP when it is plugged in: it mounts the stick, copies every
// regular file of [config] from (a directory the operator shares with it,
// read-only) into <stick>/<from's name>, notes the backup in [config]
// note if set (a file in a read-write share), and unmounts the stick.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

func init() {
	airlock.OnUdev(func(e airlock.UEvent) error {
		// No label: the host's probe of the new partition failed (it
		// timed out on a busy device); the mount call probes again.
		if label, _ := airlock.Config("label"); e.Action == "add" && (e.Label() == label || e.Label() == "") {
			return backup(label)
		}
		return nil
	})
}

// mount mounts the stick, trying again for up to 10 s if the host does
// not know it yet.
func mount(label string) (m airlock.MountInfo, err error) {
	for range 20 {
		if m, err = airlock.Mount.ByLabel(label, nil); !errors.Is(err, abi.NotFound) {
			return m, err
		}
		airlock.Sleep(500 * time.Millisecond)
	}
	return m, err
}

func backup(label string) error {
	from, _ := airlock.Config("from")
	m, err := mount(label)
	if errors.Is(err, abi.NotFound) {
		return nil // another partition, without a filesystem the host knows
	}
	if err != nil {
		return err
	}
	defer airlock.Mount.Unmount(m.Target)
	to := path.Join(m.Path, path.Base(from))
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(path.Join(from, e.Name()), path.Join(to, e.Name())); err != nil {
			return err
		}
		n++
	}
	if note, _ := airlock.Config("note"); note != "" {
		if err := os.WriteFile(note, []byte(fmt.Sprintf("backed up %d files to %s\n", n, label)), 0o644); err != nil {
			return err
		}
	}
	airlock.Info(fmt.Sprintf("backup done files=%d to=%s", n, to))
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func main() {}
