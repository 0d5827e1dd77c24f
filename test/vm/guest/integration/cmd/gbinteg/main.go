// Command gbinteg runs inside the VM of the integration tests and the demo
// (see package integration): "gbinteg [MODE]", MODE integration or demo
// (default: gb.mode= on the kernel command line).
package main

import (
	"os"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/integration"
)

func main() {
	os.Exit(integration.Main(os.Args[1:]))
}
