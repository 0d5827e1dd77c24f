package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "4a04fac0123456789abcdef0123456789abcdef0"}}
	for _, tt := range []struct {
		name, version, commit   string
		info                    debug.BuildInfo
		wantVersion, wantCommit string
	}{
		{"ldflags win", "0.1.0", "abc1234", debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: vcs}, "0.1.0", "abc1234"},
		{"go build in a checkout", devVersion, unknownCommit, debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, devVersion, "4a04fac"},
		{"go install @version", devVersion, unknownCommit, debug.BuildInfo{Main: debug.Module{Version: "v0.2.0"}}, "0.2.0", unknownCommit},
		{"nothing recorded", devVersion, unknownCommit, debug.BuildInfo{}, devVersion, unknownCommit},
	} {
		v, c := fromBuildInfo(tt.version, tt.commit, &tt.info)
		if v != tt.wantVersion || c != tt.wantCommit {
			t.Errorf("%s: got %s %s, want %s %s", tt.name, v, c, tt.wantVersion, tt.wantCommit)
		}
	}
}
