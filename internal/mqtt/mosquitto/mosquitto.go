// Package mosquitto runs Debian's mosquitto as a child process on loopback,
// with a private config file and no persistence: the simulated device's
// MQTT broker (package mqtt) and the tests' (testenv.StartMosquitto). It
// imports nothing of airlock, so that the test helpers can use it.
package mosquitto

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Broker is Debian's mosquitto run as a child process on loopback,
// with a private config file in its own directory and no persistence: the
// simulated device's broker and the tests'. No system service is used.
type Broker struct {
	Addr string // host:port
	URL  string // tcp://host:port
	bin  string
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *tailBuffer
}

// Options configure Start.
type Options struct {
	Dir  string // holds the config and password files; must exist
	Addr string // 127.0.0.1:port to listen on
	// User and Password, when set, are the broker's one account, and
	// anonymous clients are refused.
	User, Password string
}

// ErrMissing is returned when mosquitto is not installed.
var ErrMissing = errors.New("mosquitto not found; install it with apt-get install mosquitto")

// Start starts mosquitto and waits until it accepts
// connections.
func Start(o Options) (*Broker, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			return nil, ErrMissing
		}
		bin = "/usr/sbin/mosquitto"
	}
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, err
	}
	// user root: as root, mosquitto would switch to its own user, who
	// cannot read the private directory.
	conf := fmt.Sprintf("user root\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlistener %s %s\n", port, host)
	if o.User != "" {
		pw := filepath.Join(o.Dir, "passwd")
		passwd := filepath.Join(filepath.Dir(bin), "mosquitto_passwd")
		if _, err := os.Stat(passwd); err != nil {
			passwd = "/usr/bin/mosquitto_passwd"
		}
		if out, err := exec.Command(passwd, "-c", "-b", pw, o.User, o.Password).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("mosquitto_passwd: %v: %s", err, out)
		}
		conf += "allow_anonymous false\npassword_file " + pw + "\n"
	} else {
		conf += "allow_anonymous true\n"
	}
	b := &Broker{Addr: o.Addr, URL: "tcp://" + o.Addr, bin: bin, conf: filepath.Join(o.Dir, "mosquitto.conf"), out: &tailBuffer{}}
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return b, b.start()
}

func (b *Broker) start() error {
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", b.Addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mosquitto exited before it listened on %s: %s", b.Addr, b.out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Stop()
			return fmt.Errorf("mosquitto did not listen on %s within 30s: %s", b.Addr, b.out)
		}
	}
}

// Stop ends the broker and waits for it.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Restart stops the broker and starts it again on the same address, with
// no memory of sessions or retained messages.
func (b *Broker) Restart() error {
	b.Stop()
	return b.start()
}

// tailBuffer keeps the last lines a process wrote, for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	if len(t.lines) > 50 {
		t.lines = t.lines[len(t.lines)-50:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
