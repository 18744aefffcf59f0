package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/airlockhq/airlock/host"
)

// Signals of airlock run (docs/operating.md "Signals", host/RATIONALE.md "Why does
// SIGHUP reload runtime.toml?"):
//   - SIGTERM, SIGINT and SIGQUIT stop the host as SIGTERM always did: the
//     trigger sources stop, every queue drains, every plugin gets stop. A
//     second one while draining exits at once, saying what was left.
//   - SIGHUP re-reads runtime.toml and applies what can change while
//     running (host.Reconfigure); the log says what needs a restart.
//   - SIGPIPE (the reader of our stdout or stderr went away) is ignored, so
//     that a lost log pipe costs the log lines, not the plugins' drain.
//
// Every other signal Go leaves at its default: the crash signals (SIGABRT,
// SIGSEGV, ...) are for a stack dump, and the rest are ignored by Go.
var (
	terminating = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT}
	handled     = append([]os.Signal{syscall.SIGHUP, syscall.SIGPIPE}, terminating...)
)

// notifySignals starts catching the signals above. Until handleSignals
// reads them they wait in the channel: a signal during start-up is acted
// on once the host exists, not lost and not fatal.
func notifySignals() chan os.Signal {
	c := make(chan os.Signal, 8)
	signal.Notify(c, handled...)
	return c
}

// signalName is the signal's conventional name, as an operator sends it.
func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	}
	return s.String()
}

// handleSignals acts on sigs until the process ends. stop ends h.Run's
// context with the signal as its cause, which Run logs.
func handleSignals(sigs <-chan os.Signal, h *host.Host, log *slog.Logger, stop context.CancelCauseFunc) {
	stopping := false
	for s := range sigs {
		name := signalName(s)
		switch s {
		case syscall.SIGPIPE:
			continue
		case syscall.SIGHUP:
			if !stopping {
				h.Reconfigure(name)
			}
			continue
		}
		if stopping {
			undelivered := 0
			for _, st := range h.Status() {
				undelivered += st.Queue
			}
			log.Error("second terminating signal while draining: exiting now; queued events are lost", "signal", name, "undelivered", undelivered)
			os.Exit(1)
		}
		stopping = true
		stop(fmt.Errorf("signal %s", name))
	}
}
