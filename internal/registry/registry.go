// Package registry moves airlock bundles to and from OCI registries (oras):
// push, pull into the bundle cache (package bundle), login and logout. It
// is apart from bundle so that the host links oras only through the pull
// that host/builtin gives it (host.Options.Pull).
package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/bundle"
)

// Access says how to reach OCI registries: whose credentials to present,
// and which registries speak plain HTTP. The zero value pulls anonymously
// and uses TLS everywhere but loopback.
type Access struct {
	// Credentials holds each registry's credentials: a docker config file
	// and the credential helpers it names. nil: anonymous.
	Credentials credentials.Store
	// From names where Credentials come from, for messages.
	From string
	// PlainHTTP reports whether a registry (host or host:port) is reached
	// over plain HTTP; nil: none. Loopback always is, whatever it says.
	PlainHTTP func(host string) bool
}

// Errors that registries answer with, in the words of the local ones.
var (
	// ErrUnauthorized: the registry wants credentials, or refused the
	// ones presented (HTTP 401, or 403).
	ErrUnauthorized = errors.New("the registry refused access")
	// ErrNotFound: the registry has no such repository, tag or digest
	// (HTTP 404, NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN).
	ErrNotFound = errors.New("the registry has no such bundle")
	// ErrUnreachable: the registry could not be reached at all.
	ErrUnreachable = errors.New("the registry cannot be reached")
)

// DockerAccess reads the docker config file at path ("" for docker's own:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json). A file that does
// not exist holds no credentials; login creates it.
func DockerAccess(path string) (Access, error) {
	opts := credentials.StoreOptions{AllowPlaintextPut: true}
	var store *credentials.DynamicStore
	var err error
	if path == "" {
		store, err = credentials.NewStoreFromDocker(opts)
	} else {
		if err := checkCredentialFile(path); err != nil {
			return Access{}, err
		}
		store, err = credentials.NewStore(path, opts)
	}
	if err != nil {
		return Access{}, fmt.Errorf("registry credentials %s: %w", path, err)
	}
	return Access{Credentials: store, From: store.ConfigPath()}, nil
}

// RuntimeAccess is the access of a host whose runtime.toml is rt: the
// credentials in [registry] auth (none if unset), and [registry]
// plain_http.
func RuntimeAccess(rt *manifest.Runtime) (Access, error) {
	a := Access{}
	if rt.Registry.Auth != "" {
		var err error
		if a, err = DockerAccess(rt.Registry.Auth); err != nil {
			return Access{}, fmt.Errorf("%w (check [registry] auth in %s)", err, rt.File)
		}
	}
	a.PlainHTTP = rt.Registry.PlainHTTPFor
	return a, nil
}

// checkCredentialFile refuses a credentials file that other users may
// read, as ReadPrivateKey refuses such a key.
func checkCredentialFile(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry credentials: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("registry credentials %s are readable by other users (mode %04o); chmod 600 %s", path, st.Mode().Perm(), path)
	}
	return nil
}

// client is the HTTP client for registries, with a's credentials.
func (a Access) client() *auth.Client {
	c := &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache(), Header: http.Header{"User-Agent": {"airlock"}}}
	if a.Credentials != nil {
		c.Credential = credentials.Credential(a.Credentials)
	}
	return c
}

func (a Access) plainHTTP(host string) bool {
	return loopback(host) || (a.PlainHTTP != nil && a.PlainHTTP(host))
}

// Login checks cred against the registry and stores it in a's
// credentials (the file, or the helper that the file names for it).
func Login(ctx context.Context, a Access, registry string, cred auth.Credential) error {
	if a.Credentials == nil {
		return errors.New("login: no credentials store to keep the credentials in")
	}
	reg, err := remote.NewRegistry(registry)
	if err != nil {
		return fmt.Errorf("bad registry %q: %w (write host or host:port)", registry, err)
	}
	reg.PlainHTTP = a.plainHTTP(reg.Reference.Host())
	reg.Client = a.client()
	if err := credentials.Login(ctx, a.Credentials, reg, cred); err != nil {
		return a.explain("login to "+registry, registry, err)
	}
	return nil
}

// Logout removes the registry's credentials from a's store.
func Logout(ctx context.Context, a Access, registry string) error {
	if a.Credentials == nil {
		return errors.New("logout: no credentials store")
	}
	return credentials.Logout(ctx, a.Credentials, registry)
}

// explain says what a registry's answer means, in the words used for the
// same trouble with a local bundle; what wraps err, host is the registry.
func (a Access) explain(what, host string, err error) error {
	var resp *errcode.ErrorResponse
	status := 0
	if errors.As(err, &resp) {
		status = resp.StatusCode
	}
	from := "no credentials are configured for it"
	if a.Credentials != nil {
		from = "credentials from " + a.From
	}
	switch {
	case errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData):
		return fmt.Errorf("%s: %w: the registry sent bytes whose sha256 is not the digest asked for (a broken registry or a proxy in between; nothing was cached): %v", what, bundle.ErrDigest, err)
	case errors.Is(err, auth.ErrBasicCredentialNotFound) || status == http.StatusUnauthorized:
		return fmt.Errorf("%s: %w: %s wants credentials and %s (log in with: airlock login %s; on a device, name a credentials file in [registry] auth)", what, ErrUnauthorized, host, from, host)
	case status == http.StatusForbidden:
		return fmt.Errorf("%s: %w: %s denied it with %s (the account may not read or write this repository)", what, ErrUnauthorized, host, from)
	case status == http.StatusNotFound || errors.Is(err, errdef.ErrNotFound) || hasCode(err, errcode.ErrorCodeNameUnknown, errcode.ErrorCodeManifestUnknown, errcode.ErrorCodeBlobUnknown):
		return fmt.Errorf("%s: %w: no such repository, tag or digest on %s (check the ref; airlock push prints the one to pin)", what, ErrNotFound, host)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s: %w: %s answers in plain HTTP, and airlock uses TLS unless told otherwise (pass --plain-http, or list it in [registry] plain_http)", what, ErrUnreachable, host)
	case isNetwork(err):
		return fmt.Errorf("%s: %w: %s: %v", what, ErrUnreachable, host, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func hasCode(err error, codes ...string) bool {
	var e errcode.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

func isNetwork(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, context.DeadlineExceeded)
}
