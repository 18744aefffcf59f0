// Package container holds the test of airlock as a device runs it: the
// shipped Dockerfile's image, in a real Docker engine, with a loop-device
// "stick" plugged in after the container started and no udevd. It has no
// code of its own; see container_test.go.
package container
