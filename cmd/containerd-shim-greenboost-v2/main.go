//go:build linux

// Command containerd-shim-greenboost-v2 is the containerd runtime v2 shim of
// the GreenBoost Container Toolkit (runtime type io.containerd.greenboost.v2).
// See package shim/containerd.
package main

import (
	"context"
	"fmt"
	"os"

	gbshim "github.com/greenboost/greenboost-container-toolkit/shim/containerd"
)

func main() {
	if gbshim.IsVersionRequest(os.Args[1:]) {
		fmt.Println(gbshim.Version())
		return
	}
	gbshim.Run(context.Background())
}
