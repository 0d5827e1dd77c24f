//go:build e2e

package e2e

// Docker 28, what docker.com's packages install today (Debian 12 ships
// 20.10): built from the Go module proxy once, with containerd 1.7, the
// release line its packages bundle. It is the Docker that reads CDI specs
// (`docker run --device greenboost.io/vram=ext`, Docker 25 and later).

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	mobyModule      = "github.com/docker/docker"
	dockerCLIModule = "github.com/docker/cli"
	// docker28Version is the version of both dockerd and its CLI: the CLI
	// of Debian's docker.io (20.10) can send neither CDI device names nor
	// annotations.
	docker28Version = "v28.5.2+incompatible"
)

// docker28 returns dockerd 28 and its CLI, built on first use.
func docker28(t *testing.T) dockerRelease {
	t.Helper()
	version := strings.TrimSuffix(strings.TrimPrefix(docker28Version, "v"), "+incompatible")
	daemonDir := proxyBinaries(t, proxyModule{
		name:     "dockerd",
		path:     mobyModule,
		version:  docker28Version,
		requires: vendorModRequirements(mobyModule, docker28Version),
		flags: []string{
			"-tags", "exclude_graphdriver_btrfs exclude_graphdriver_devicemapper",
			"-ldflags", "-X " + mobyModule + "/dockerversion.Version=" + version,
		},
	}, "cmd/dockerd")
	cliDir := proxyBinaries(t, proxyModule{
		name:     "docker-cli",
		path:     dockerCLIModule,
		version:  docker28Version,
		requires: vendorModRequirements(dockerCLIModule, docker28Version),
		flags:    []string{"-ldflags", "-X " + dockerCLIModule + "/cli/version.Version=" + version},
	}, "cmd/docker")
	return dockerRelease{
		dockerd: filepath.Join(daemonDir, "dockerd"),
		cli:     filepath.Join(cliDir, "docker"),
		binDir:  containerd17(t).binDir,
		cdi:     true,
	}
}

// vendorModRequirements returns the require and replace directives of the
// vendor.mod of module at version: moby and docker/cli have no go.mod, so
// without them the go command would pick the newest version of every
// dependency, which they do not build with.
func vendorModRequirements(module, version string) func(t *testing.T) string {
	return func(t *testing.T) string {
		t.Helper()
		out, err := exec.Command("go", "mod", "download", "-json", module+"@"+version).Output()
		if err != nil {
			t.Fatalf("downloading %s@%s from the Go module proxy: %v", module, version, err)
		}
		var mod struct{ Dir string }
		if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
			t.Fatalf("go mod download %s: %v (%s)", module, err, out)
		}
		data, err := os.ReadFile(filepath.Join(mod.Dir, "vendor.mod"))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "module ") || strings.HasPrefix(line, "go ") || strings.HasPrefix(line, "//") {
				continue
			}
			b.WriteString(line + "\n")
		}
		return b.String()
	}
}
