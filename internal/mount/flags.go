package mount

// mount(2) flags, as Linux numbers them (mount is Linux-only; the
// simulated backend only records them).
const (
	msRdonly      uintptr = 0x1
	msNosuid      uintptr = 0x2
	msNodev       uintptr = 0x4
	msNoexec      uintptr = 0x8
	msSynchronous uintptr = 0x10
	msDirsync     uintptr = 0x80
	msNoatime     uintptr = 0x400
	msNodiratime  uintptr = 0x800
	msRelatime    uintptr = 0x200000
)
