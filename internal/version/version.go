// Package version carries the build's version and git commit, set with
// -ldflags "-X .../internal/version.Version=... -X .../internal/version.Commit=...".
package version

import "fmt"

var (
	Version = "0.1.0-dev"
	Commit  = "unknown"
)

// String is what every binary prints for --version.
func String(name string) string {
	return fmt.Sprintf("%s version %s\ncommit: %s", name, Version, Commit)
}
