// Package version carries the build's version and git commit, set with
// -ldflags "-X .../internal/version.Version=... -X .../internal/version.Commit=...".
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

const (
	devVersion    = "0.1.0-dev"
	unknownCommit = "unknown"
)

var (
	Version = devVersion
	Commit  = unknownCommit
)

// Get returns the version and commit: those -ldflags set, else what the go
// command recorded.
func Get() (version, commit string) {
	if info, ok := debug.ReadBuildInfo(); ok {
		return fromBuildInfo(Version, Commit, info)
	}
	return Version, Commit
}

// String is what every binary prints for --version.
func String(name string) string {
	version, commit := Get()
	return fmt.Sprintf("%s version %s\ncommit: %s", name, version, commit)
}

// fromBuildInfo fills what -ldflags did not set from what the go command
// recorded: the module version of `go install …@VERSION`, the commit of a
// build in a git checkout.
func fromBuildInfo(version, commit string, info *debug.BuildInfo) (string, string) {
	if version == devVersion && strings.HasPrefix(info.Main.Version, "v") {
		version = strings.TrimPrefix(info.Main.Version, "v")
	}
	if commit == unknownCommit {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				commit = s.Value[:7]
			}
		}
	}
	return version, commit
}
