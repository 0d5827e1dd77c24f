// Command greenboost-runtime is an OCI runtime wrapper around runc or crun
// that gives containers GreenBoost. See shim.Run.
package main

import (
	"os"

	"github.com/greenboost/greenboost-container-toolkit/shim"
	// A verb that passes through execs the low-level runtime while this
	// package initialises: main runs only where the wrapper has work.
	_ "github.com/greenboost/greenboost-container-toolkit/shim/passthrough"
)

func main() {
	// On success Run has exec'd the low-level runtime; it returns nil only
	// where it answered itself (--version without runc or crun).
	if err := shim.Run(os.Args); err != nil {
		shim.ReportFailure(os.Args, err)
		os.Exit(1)
	}
}
