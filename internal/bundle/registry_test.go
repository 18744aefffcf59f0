package bundle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/airlockhq/airlock/internal/bundle"
	oci "github.com/airlockhq/airlock/internal/registry"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestRegistryAuth pushes and pulls through distribution's registry with
// htpasswd authentication: refused without credentials or with wrong ones,
// in plain words; accepted through a docker config file, through Login and
// through a credential helper; refused again after Logout. A blob changed
// in the registry's storage is refused as a local bundle with a wrong
// digest is.
func TestRegistryAuth(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	ctx := context.Background()
	signed := pack(t, ntpToml, "acme", key(0)).Encode()
	tag := reg.Host + "/acme/ntp-check:1.2.0"
	rt := runtime(t, t.TempDir(), trustToml(""))

	// Anonymous, and with a wrong password: refused, in words that say what
	// to do.
	_, err := oci.Push(ctx, signed, tag, oci.Access{})
	if !errors.Is(err, oci.ErrUnauthorized) || !strings.Contains(err.Error(), "airlock login "+reg.Host) {
		t.Fatalf("anonymous push: %v", err)
	}
	wrong := docker(t, testenv.DockerConfig(t, reg.Host, testenv.RegistryUser, "wrong"))
	if _, err := oci.Push(ctx, signed, tag, wrong); !errors.Is(err, oci.ErrUnauthorized) {
		t.Fatalf("push with a wrong password: %v", err)
	}

	// Through a docker config file.
	good := docker(t, testenv.DockerConfig(t, reg.Host, testenv.RegistryUser, testenv.RegistryPassword))
	pinned, err := oci.Push(ctx, signed, tag, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Pull(ctx, rt, pinned, oci.Access{}); !errors.Is(err, oci.ErrUnauthorized) {
		t.Fatalf("anonymous pull: %v", err)
	}
	if _, err := oci.Pull(ctx, rt, pinned, good); err != nil {
		t.Fatal(err)
	}
	// NAME_UNKNOWN and an unknown digest read as the same plain words.
	for _, ref := range []string{
		reg.Host + "/acme/nothing-here:1.0",
		reg.Host + "/acme/ntp-check@sha256:" + strings.Repeat("0", 64),
	} {
		if _, err := oci.Pull(ctx, rt, ref, good); !errors.Is(err, oci.ErrNotFound) || !strings.Contains(err.Error(), "no such repository, tag or digest") {
			t.Errorf("pull %s: %v", ref, err)
		}
	}

	// Through Login: a wrong password is refused and stores nothing; the
	// right one is stored, used, and gone after Logout.
	file := filepath.Join(t.TempDir(), "auth.json")
	stored := docker(t, file)
	if err := oci.Login(ctx, stored, reg.Host, auth.Credential{Username: testenv.RegistryUser, Password: "wrong"}); !errors.Is(err, oci.ErrUnauthorized) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a refused login wrote the credentials file")
	}
	if err := oci.Login(ctx, stored, reg.Host, auth.Credential{Username: testenv.RegistryUser, Password: testenv.RegistryPassword}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("credentials file after login: %v, %v", st, err)
	}
	if _, err := oci.Pull(ctx, rt, pinned, docker(t, file)); err != nil {
		t.Fatalf("pull after login: %v", err)
	}
	if err := oci.Logout(ctx, stored, reg.Host); err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Pull(ctx, rt, pinned, docker(t, file)); !errors.Is(err, oci.ErrUnauthorized) {
		t.Fatalf("pull after logout: %v", err)
	}

	// Through a credential helper that the docker config names.
	bin := t.TempDir()
	helper := "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"" + testenv.RegistryUser + "\",\"Secret\":\"" + testenv.RegistryPassword + "\"}' \"$server\"\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-airlocktest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	helped := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(helped, []byte(`{"credHelpers": {"`+reg.Host+`": "airlocktest"}}`), 0o600)
	if _, err := oci.Pull(ctx, rt, pinned, docker(t, helped)); err != nil {
		t.Fatalf("pull through a credential helper: %v", err)
	}

	// A file that other users may read is refused, not used.
	loose := testenv.DockerConfig(t, reg.Host, testenv.RegistryUser, testenv.RegistryPassword)
	os.Chmod(loose, 0o644)
	if _, err := oci.DockerAccess(loose); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable credentials file: %v", err)
	}

	// The registry's copy of the bundle changes (same size): oras's terse
	// "mismatched digest" reads as a local bundle's wrong digest, and
	// nothing is cached.
	layer := layerBlob(t, reg.Root, signed)
	data, _ := os.ReadFile(layer)
	data[len(data)/2] ^= 1
	os.WriteFile(layer, data, 0o644)
	os.RemoveAll(filepath.Join(rt.StateDir, "bundles"))
	_, err = oci.Pull(ctx, rt, pinned, good)
	if !errors.Is(err, bundle.ErrDigest) || !strings.Contains(err.Error(), "bundle content does not match its digest") {
		t.Fatalf("pull of a changed blob: %v", err)
	}
	if _, err := os.Stat(bundle.CachePath(rt, pinned)); err == nil {
		t.Fatal("a changed blob was cached")
	}
}

func docker(t *testing.T, path string) oci.Access {
	t.Helper()
	a, err := oci.DockerAccess(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// layerBlob finds the file in which distribution's filesystem storage keeps
// the blob with content data.
func layerBlob(t *testing.T, root string, data []byte) string {
	t.Helper()
	var found string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && info.Size() == int64(len(data)) && strings.Contains(p, "/blobs/") {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no blob of %d bytes under %s", len(data), root)
	}
	return found
}
