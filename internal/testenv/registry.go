package testenv

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The OCI registry of the tests is distribution's, the reference
// implementation that hosted registries build on, run as its own process on
// loopback. .ci/run installs it with:
//
//	go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2
const registryInstall = "go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2"

// The one account of a registry started with RegistryOptions.Auth.
const (
	RegistryUser     = "vendor"
	RegistryPassword = "airlock-test-password"
	// registryHtpasswd is RegistryUser's line: the bcrypt hash (cost 4)
	// of RegistryPassword, made once with golang.org/x/crypto/bcrypt.
	registryHtpasswd = RegistryUser + ":$2a$04$kPZBhDzD3EpNyujtzzABUeN3G8ecWs9k6GAPaJzfPIdOOo6YaOeq2\n"
)

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// Auth requires HTTP basic authentication as RegistryUser (htpasswd).
	Auth bool
	// Addr is the address to listen on; "" is a free port on 127.0.0.1.
	Addr string
	// Root is the storage directory; "" is a new temporary one. A registry
	// restarted on the same Root serves what was pushed before.
	Root string
}

// Registry is a running registry.
type Registry struct {
	Host string // host:port, as in a reference
	Root string // its storage directory
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
	log  *lockedBuffer
}

// NeedRegistry returns the path of distribution's registry binary: on PATH,
// in GOBIN or in GOPATH/bin, where go install puts it.
func NeedRegistry(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("registry"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var dirs []string
		if len(lines) > 0 && lines[0] != "" {
			dirs = append(dirs, lines[0])
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(lines[1]) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
		for _, d := range dirs {
			p := filepath.Join(d, "registry")
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p
			}
		}
	}
	Missing(t, "distribution's registry binary; install it with: "+registryInstall)
	return ""
}

var listeningRe = regexp.MustCompile(`listening on (\S+?:[0-9]+)`)

// StartRegistry starts a registry and waits until it listens. It is
// stopped when the test ends, or by Stop.
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	bin := NeedRegistry(t)
	dir := t.TempDir()
	if o.Root == "" {
		o.Root = filepath.Join(dir, "storage")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	conf := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, o.Root, o.Addr)
	if o.Auth {
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(registryHtpasswd), 0o600); err != nil {
			t.Fatal(err)
		}
		conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: airlock-test\n    path: %s\n", htpasswd)
	}
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", confPath)
	// No tracing exporter: it would try to reach a collector.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	r := &Registry{Root: o.Root, cmd: cmd, done: make(chan struct{}), log: &lockedBuffer{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			r.log.add(line)
			if m := listeningRe.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(r.Stop)
	select {
	case r.Host = <-addr:
	case <-r.done:
		t.Fatalf("registry exited before it listened:\n%s", r.log)
	case <-time.After(60 * time.Second):
		r.Stop()
		t.Fatalf("registry did not listen within a minute:\n%s", r.log)
	}
	return r
}

// Stop ends the registry and waits for it.
func (r *Registry) Stop() {
	r.once.Do(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	})
}

// FreeLoopbackAddr returns an address on 127.0.0.1 that nothing listens on
// now, for a server that a test starts later.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// DockerConfig writes a docker config file (mode 0600) that holds user and
// password for host, and returns its path.
func DockerConfig(t testing.TB, host, user, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	token := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	data := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, token)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type lockedBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *lockedBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.lines) < 200 {
		b.lines = append(b.lines, line)
	}
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}
