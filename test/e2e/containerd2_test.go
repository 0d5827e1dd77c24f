//go:build e2e

package e2e

// containerd 2.x, what Kubernetes nodes run now (Debian 12 ships 1.6): built
// from the Go module proxy once, started from its own default config.

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	apitypes "github.com/containerd/containerd/api/types"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/pelletier/go-toml/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const containerd2Version = "v2.4.2"

// containerd2 returns containerd 2.x, built on first use.
func containerd2(t *testing.T) ctrdRelease {
	t.Helper()
	dir := proxyBinaries(t, proxyModule{name: "containerd", path: "github.com/containerd/containerd/v2", version: containerd2Version},
		"cmd/containerd", "cmd/ctr", "cmd/containerd-shim-runc-v2")
	bin := filepath.Join(dir, "containerd")
	return ctrdRelease{
		binDir:     dir, // its runc shim, not Debian's 1.6 one
		containerd: bin,
		ctr:        filepath.Join(dir, "ctr"),
		criPlugin:  "io.containerd.cri.v1.runtime",
		baseConfig: func(t *testing.T, dir, sock string) string { return containerd2Config(t, bin, dir, sock) },
	}
}

// containerd2Config is what `containerd config default` prints (config
// version 4, where a user starts from), with root, state, sockets and the
// sandbox image of this test.
func containerd2Config(t *testing.T, bin, dir, sock string) string {
	t.Helper()
	out, err := exec.Command(bin, "config", "default").Output()
	if err != nil {
		t.Fatalf("%s config default: %v", bin, err)
	}
	cfg := map[string]any{}
	if err := toml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("%s config default: %v", bin, err)
	}
	if cfg["version"] != int64(4) {
		t.Fatalf("%s config default has version %v; this test knows version 4", bin, cfg["version"])
	}
	set := func(value any, keys ...string) {
		t.Helper()
		table := cfg
		for i, k := range keys[:len(keys)-1] {
			next, ok := table[k].(map[string]any)
			if !ok {
				t.Fatalf("containerd's default config has no table %s", strings.Join(keys[:i+1], "."))
			}
			table = next
		}
		if _, ok := table[keys[len(keys)-1]]; !ok {
			t.Fatalf("containerd's default config has no key %s", strings.Join(keys, "."))
		}
		table[keys[len(keys)-1]] = value
	}
	set(filepath.Join(dir, "root"), "root")
	set(filepath.Join(dir, "state"), "state")
	set([]any{}, "imports") // nothing from the host's /etc/containerd/conf.d
	set("debug", "debug", "level")
	set(sock, "plugins", "io.containerd.server.v1.grpc", "address")
	set(sock+".ttrpc", "plugins", "io.containerd.server.v1.ttrpc", "address")
	set(filepath.Join(dir, "opt"), "plugins", "io.containerd.internal.v1.opt", "path")
	set(filepath.Join(dir, "nri.sock"), "plugins", "io.containerd.nri.v1.nri", "socket_path")
	set(ctrdPauseImage, "plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox")
	// As for Debian's containerd: root here may not lower oom_score_adj.
	set(true, "plugins", "io.containerd.cri.v1.runtime", "restrict_oom_score_adj")
	data, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestContainerd2RuntimeInfo: containerd 2.x asks a shim for its runtime
// info (`SHIM -info`): before it creates a container with idmap mounts
// (which it refuses when the answer has no features), for CRI's runtime
// handler features, and on every create until it gets an answer (logging an
// error each time: TestContainerdCRIPod looks for it). Its introspection API
// must return ours: our name and version, and runc's OCI features under the
// type containerd decodes them by.
func TestContainerd2RuntimeInfo(t *testing.T) {
	s := getSuite(t)
	d := startContainerdRelease(t, s, s.writeConfig(t, s.testDir(t), s.runc), containerd2(t))

	conn, err := grpc.Dial("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "containerd-namespace", ctrdNamespace)
	req, err := anypb.New(&apitypes.RuntimeRequest{RuntimePath: ctrdRuntimeType})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := introspection.NewIntrospectionClient(conn).PluginInfo(ctx, &introspection.PluginInfoRequest{
		Type:    "io.containerd.runtime.v2",
		ID:      "task",
		Options: req,
	})
	if err != nil {
		t.Fatalf("containerd's runtime info of %s: %v", ctrdRuntimeType, err)
	}
	var info apitypes.RuntimeInfo
	if err := proto.Unmarshal(resp.GetExtra().GetValue(), &info); err != nil {
		t.Fatalf("runtime info %s: %v", resp.GetExtra().GetTypeUrl(), err)
	}
	var feat features.Features
	if err := json.Unmarshal(info.GetFeatures().GetValue(), &feat); err != nil || feat.OCIVersionMax == "" {
		t.Errorf("runtime info features %q: %v; want runc's features", info.GetFeatures().GetValue(), err)
	}
	// containerd registers runtime-spec's Features under this type
	// (core/runtime/typeurl.go) and decodes nothing else as features.
	const featuresType = "types.containerd.io/opencontainers/runtime-spec/1/features/Features"
	if got := info.GetFeatures().GetTypeUrl(); got != featuresType {
		t.Errorf("runtime info features have type %q, want %s", got, featuresType)
	}
	version, err := exec.Command(filepath.Join(s.repo, "bin", ctrdShimBinary), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != ctrdRuntimeType || !strings.HasPrefix(string(version), ctrdShimBinary+" version "+info.GetVersion().GetVersion()+"\n") {
		t.Errorf("runtime info names %q version %v; want %s and the version of:\n%s", info.Name, info.GetVersion(), ctrdRuntimeType, version)
	}
}
