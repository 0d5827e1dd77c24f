// Package passthrough makes greenboost-runtime become the low-level runtime
// for every verb that passes through, before the wrapper's heavier packages
// initialise. Import it, for that side effect, from greenboost-runtime's main
// only: anywhere else its init would exec runc.
//
// Go initialises a program's packages one at a time, each as soon as the
// packages it imports are, and among those ready the first by import path
// (The Go Programming Language Specification, "Package initialization").
// This package needs only the standard library, the config and
// shim/lowlevel, and its path sorts before those of the CDI library's
// dependencies (gopkg.in/yaml.v3, sigs.k8s.io/yaml, tags.cncf.io/...), whose
// initialisation builds tables and regular expressions for about 0.5 ms. A
// pass-through verb (start, delete, state, kill, ...) needs none of that:
// DESIGN.md §8 gives it 1.5 ms, decided from argv, then exec.
// TestPassThroughSkipsTheCDILibrary keeps it so.
package passthrough

import (
	"os"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/shim/lowlevel"
)

func init() {
	if !lowlevel.ParseArgs(os.Args[1:]).PassesThrough() {
		return
	}
	path := config.PathFromEnv()
	if runtime, err := lowlevel.Find(config.Runtimes(path), path); err == nil {
		// Returns only on failure: main tries again and reports it.
		_ = lowlevel.Exec(runtime, os.Args)
	}
}
