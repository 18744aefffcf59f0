// Command hello is the smallest airlock plugin: it greets on start, using a
// value from its manifest's [config], and says goodbye on stop.
package main

import (
	"os"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnStart(func() error {
		greeting, err := airlock.Config("greeting")
		if err != nil {
			greeting = "hello"
		}
		airlock.Info(greeting+" from a sandboxed plugin", "device_type", os.Getenv("BALENA_DEVICE_TYPE"))
		return nil
	})
	airlock.OnStop(func() error {
		airlock.Info("goodbye")
		return nil
	})
}

func main() {}
