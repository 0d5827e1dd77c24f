// Command greenboost-runtime is an OCI runtime wrapper around runc or crun
// that gives containers GreenBoost. See shim.Run.
package main

import (
	"os"

	"github.com/greenboost/greenboost-container-toolkit/shim"
)

func main() {
	// On success Run has exec'd the low-level runtime; it returns nil only
	// where it answered itself (--version without runc or crun).
	if err := shim.Run(os.Args); err != nil {
		shim.ReportFailure(os.Args, err)
		os.Exit(1)
	}
}
