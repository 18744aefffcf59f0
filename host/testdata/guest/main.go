// Command guest is the host's test plugin. Each timer event's name selects a
// behaviour, so that one module can be well-behaved, slow, crashing or
// hostile on demand.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

var hoard [][]byte

func init() {
	airlock.OnStart(func() error { airlock.Info("started"); return nil })
	airlock.OnStop(func() error { airlock.Info("stopped cleanly"); return nil })
	airlock.OnDropped(func(d airlock.Dropped) error {
		airlock.Info("dropped", "count", d.Count, "reason", d.Reason)
		return nil
	})
	airlock.OnTimer(func(t airlock.Timer) error {
		name, arg, _ := strings.Cut(t.Name, ":")
		switch name {
		case "seq":
			airlock.Info("seq " + arg)
		case "slow":
			d, _ := time.ParseDuration(arg)
			airlock.Info("slow begin " + arg)
			if err := airlock.Sleep(d); err != nil {
				airlock.Info("slow: " + err.Error())
			}
			airlock.Info("slow done " + arg)
		case "trap":
			panic("boom on purpose")
		case "loop":
			for i := 0; ; i++ {
				if i == -1 {
					break
				}
			}
		case "oom":
			for {
				hoard = append(hoard, make([]byte, 1<<20))
			}
		case "env":
			env := os.Environ()
			sort.Strings(env)
			airlock.Info("env " + strings.Join(env, ","))
		case "config":
			v, err := airlock.Config(arg)
			airlock.Info(fmt.Sprintf("config %s=%q %v", arg, v, err == nil))
		case "write":
			airlock.Info(result("write", os.WriteFile("/data/"+arg, []byte("secret of "+arg), 0o600)))
		case "atomic":
			airlock.Info(result("atomic", airlock.WriteFileAtomic("/data/"+arg, []byte("atomic "+arg))))
		case "read":
			b, err := os.ReadFile(arg)
			airlock.Info(result("read "+arg, err) + " " + string(b))
		case "symlink":
			target, link, _ := strings.Cut(arg, ">")
			airlock.Info(result("symlink", os.Symlink(target, link)))
		case "fail":
			return errors.New("handler failed on purpose")
		case "biglog":
			airlock.Info(strings.Repeat("x", 100_000))
		case "badptr":
			badPointers()
		case "deadline":
			airlock.Info(fmt.Sprintf("deadline ok=%v", airlock.Deadline() > 0))
		default:
			airlock.Warn("unknown behaviour " + t.Name)
		}
		return nil
	})
}

func result(what string, err error) string {
	if err != nil {
		var he *airlock.HostError
		if errors.As(err, &he) && he.Code == abi.Denied {
			return what + ": denied"
		}
		return what + ": error: " + err.Error()
	}
	return what + ": ok"
}

func main() {}
