module github.com/airlockhq/airlock

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/godbus/dbus/v5 v5.2.4 // indirect
	github.com/moby/sys/mountinfo v0.7.3 // indirect
	github.com/pilebones/go-udev v0.10.0 // indirect
	github.com/tetratelabs/wazero v1.12.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
