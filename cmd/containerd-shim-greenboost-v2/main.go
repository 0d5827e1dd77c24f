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
	if gbshim.IsInfoRequest(os.Args[1:]) {
		if err := gbshim.WriteInfo(context.Background(), os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "%s -info: %v\n", gbshim.BinaryName, err)
			os.Exit(1)
		}
		return
	}
	gbshim.Run(context.Background())
}
