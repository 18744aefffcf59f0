package main

// The zone database, built in: runtime.toml's timezone names an IANA zone,
// and a device image (debian-slim without tzdata, or FROM scratch) may
// have no /usr/share/zoneinfo. It adds about 450 KB.
import _ "time/tzdata"
