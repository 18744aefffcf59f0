package supervisor_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
	"github.com/airlockhq/airlock/internal/supervisor"
)

// A plugin's reboot request, end to end against the simulated supervisor:
// the grant allows it, the app's update lock refuses it, force overrides.
func Example() {
	dev := supsim.New(supsim.Options{AppID: 7})
	url, err := dev.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer dev.Close()

	grant, err := supervisor.ParseGrant([]string{"reboot", "service.restart:main"})
	if err != nil {
		panic(err)
	}
	fmt.Println("reboot allowed:", grant.Allows(supervisor.OpReboot, ""))
	fmt.Println("shutdown allowed:", grant.Allows(supervisor.OpShutdown, ""))

	c, err := supervisor.New(supervisor.Config{Address: url, APIKey: dev.APIKey(), AppID: 7})
	if err != nil {
		panic(err)
	}
	dev.Lock("main")
	err = c.Reboot(context.Background(), false)
	fmt.Println("locked:", errors.Is(err, abi.Locked), supervisor.Errno(err))
	fmt.Println("forced:", c.Reboot(context.Background(), true))
	fmt.Println("rebooting:", dev.State().Rebooting)
	// Output:
	// reboot allowed: true
	// shutdown allowed: false
	// locked: true locked
	// forced: <nil>
	// rebooting: true
}
