package airlock

import "github.com/airlockhq/airlock/sdk/go/abi"

func abiErrno(e uint32) abi.Errno { return abi.Errno(e) }
