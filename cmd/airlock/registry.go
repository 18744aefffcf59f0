package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/airlockhq/airlock/host/manifest"
	oci "github.com/airlockhq/airlock/internal/registry"
)

// Registry access for push, pull, login and logout: whose credentials, and
// plain HTTP only when asked.

const registryUsage = `  airlock login   -u <user> [--password-stdin] <registry>    store credentials for a registry
  airlock logout  <registry>                                remove them
`

// stdin is where login reads a password; tests replace it.
var stdin io.Reader = os.Stdin

// registryFlags are the flags that say how to reach a registry.
type registryFlags struct {
	file      *string
	plainHTTP *bool
}

func addRegistryFlags(fs *flag.FlagSet) registryFlags {
	return registryFlags{
		file:      fs.String("registry-config", "", "the docker config file with registry credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json, or [registry] auth of --config)"),
		plainHTTP: fs.Bool("plain-http", false, "reach the registry over plain HTTP, not TLS (registries on loopback always are)"),
	}
}

// access is the registry access the flags say. rt, if not nil, is the
// runtime config the command acts for: its [registry] auth is the
// credentials file unless --registry-config names another, and its
// [registry] plain_http applies.
func (f registryFlags) access(rt *manifest.Runtime) (oci.Access, error) {
	var a oci.Access
	var err error
	switch {
	case *f.file != "":
		a, err = oci.DockerAccess(*f.file)
	case rt != nil && rt.Registry.Auth != "":
		a, err = oci.RuntimeAccess(rt)
	default:
		a, err = oci.DockerAccess("")
	}
	if err != nil {
		return a, err
	}
	switch {
	case *f.plainHTTP:
		a.PlainHTTP = func(string) bool { return true }
	case rt != nil:
		a.PlainHTTP = rt.Registry.PlainHTTPFor
	}
	return a, nil
}

// runtimeFor loads the runtime config that --config or $AIRLOCK_CONFIG
// names, if one does; login and logout act on the user's docker config
// otherwise.
func runtimeFor(fs *flag.FlagSet, config string) (*manifest.Runtime, error) {
	if !configNamed(fs) {
		return nil, nil
	}
	return loadRuntimeOrDefault(config, true)
}

func cmdLogin(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("login", "login [--registry-config FILE | --config runtime.toml] [--plain-http] -u <user> [--password-stdin] <registry>", stderr)
	rf := addRegistryFlags(fs)
	config := fs.String("config", defaultConfig(), "store the credentials in this runtime config's [registry] auth file (a device's)")
	user := fs.String("u", "", "the user name")
	fromStdin := fs.Bool("password-stdin", false, "read the password (or token) from standard input; without it, login asks on the terminal")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := requireFlag(fs, "u", "the user name at the registry", 1, "one registry (host or host:port)"); err != nil {
		return err
	}
	rt, err := runtimeFor(fs, *config)
	if err != nil {
		return err
	}
	if rt != nil && rt.Registry.Auth == "" && *rf.file == "" {
		return fmt.Errorf("%s has no [registry] auth file to store credentials in (add auth = \"/data/airlock/registry-auth.json\" under [registry])", rt.File)
	}
	password, err := readPassword(*fromStdin, stderr)
	if err != nil {
		return err
	}
	a, err := rf.access(rt)
	if err != nil {
		return err
	}
	registry := fs.Arg(0)
	if err := oci.Login(context.Background(), a, registry, auth.Credential{Username: *user, Password: password}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "logged in to %s as %s; credentials stored through %s\n", registry, *user, a.From)
	return nil
}

func cmdLogout(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logout", "logout [--registry-config FILE | --config runtime.toml] [--plain-http] <registry>", stderr)
	rf := addRegistryFlags(fs)
	config := fs.String("config", defaultConfig(), "remove the credentials from this runtime config's [registry] auth file")
	if err := parseN(fs, args, 1, stdout); err != nil {
		return err
	}
	rt, err := runtimeFor(fs, *config)
	if err != nil {
		return err
	}
	a, err := rf.access(rt)
	if err != nil {
		return err
	}
	if err := oci.Logout(context.Background(), a, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed the credentials for %s from %s\n", fs.Arg(0), a.From)
	return nil
}

// readPassword reads the password from stdin: all of it with
// --password-stdin (less one trailing newline), or a line typed at the
// terminal without echo. A password is never an argument, where other
// users see it in ps and it stays in the shell's history.
func readPassword(fromStdin bool, stderr io.Writer) (string, error) {
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if p == "" {
			return "", errors.New("stdin held no password")
		}
		return p, nil
	}
	f, ok := stdin.(*os.File)
	if !ok {
		return "", errors.New("pass the password on stdin with --password-stdin")
	}
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errors.New("stdin is not a terminal: pass the password on stdin with --password-stdin")
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ECHONL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(stderr, "Password: ")
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
