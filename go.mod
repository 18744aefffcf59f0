module github.com/airlockhq/airlock

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/tetratelabs/wazero v1.12.0
	golang.org/x/sys v0.50.0
)

require github.com/pilebones/go-udev v0.10.0

require github.com/godbus/dbus/v5 v5.2.4

require github.com/moby/sys/mountinfo v0.7.3
