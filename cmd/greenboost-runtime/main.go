// Command greenboost-runtime is an OCI runtime wrapper around runc or crun
// that gives containers GreenBoost. See shim.Run.
package main

import (
	"os"

	"github.com/greenboost/greenboost-container-toolkit/shim"
)

func main() {
	err := shim.Run(os.Args)
	shim.ReportFailure(os.Args, err)
	os.Exit(1)
}
