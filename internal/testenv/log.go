package testenv

import (
	"log/slog"
	"testing"

	"github.com/airlockhq/airlock/host/logtest"
)

// Log is a captured log; see logtest.
type Log = logtest.Log

// NewLog returns a log and a logger that writes to it.
func NewLog(t testing.TB) (*Log, *slog.Logger) { return logtest.New(t) }
