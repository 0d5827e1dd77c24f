//go:build linux

package containerd

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/pkg/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

// fakeRuntime writes an OCI runtime whose `features` prints out, with the
// shell's $VARIABLES expanded (and exits 1 when out is "").
func fakeRuntime(t *testing.T, out string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runtime")
	script := "#!/bin/sh\n[ \"$1\" = features ] || exit 2\n"
	if out == "" {
		script += "echo 'unknown command' >&2; exit 1\n"
	} else {
		script += "cat <<EOF\n" + out + "\nEOF\n"
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRuntimeInfo(t *testing.T) {
	// containerd 2.x registers the features type this way (core/runtime);
	// decoding through it checks our type URL and value.
	typeurl.Register(&features.Features{}, "types.containerd.io", "opencontainers/runtime-spec", "1", "features", "Features")

	// greenboost-runtime picks runc or crun from the GreenBoost config: ours
	// shows in the features which config it was given.
	t.Setenv(config.PathEnv, "")
	ours := fakeRuntime(t, `{"ociVersionMin":"1.0.0","ociVersionMax":"1.2.1${GREENBOOST_CONFIG}","hooks":["prestart","poststop"]}`)
	named := fakeRuntime(t, `{"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","mountExtensions":{"idmap":{"enabled":true}}}`)
	find := func() (string, error) { return ours, nil }
	encode := func(t *testing.T, v any) []byte {
		t.Helper()
		if v == nil {
			return nil
		}
		data, err := proto.Marshal(anyOf(t, v))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	for _, tc := range []struct {
		name        string
		options     any
		wantMax     string // the features' ociVersionMax: which runtime answered
		wantOptions bool
	}{
		{"no options: greenboost-runtime", nil, "1.2.1", false},
		{"CRI's options: greenboost-runtime with their config", &runtimeoptions.Options{ConfigPath: "/etc/greenboost/small.toml"}, "1.2.1/etc/greenboost/small.toml", true},
		{"runc options naming a runtime", &options.Options{BinaryName: named}, "1.1.0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := runtimeInfo(context.Background(), bytes.NewReader(encode(t, tc.options)), find, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if info.Name != RuntimeType || info.Version.GetVersion() != version.Version || info.Version.GetRevision() != version.Commit {
				t.Errorf("name %q version %v, want %s %s %s", info.Name, info.Version, RuntimeType, version.Version, version.Commit)
			}
			if tc.wantOptions && !proto.Equal(info.Options, anyOf(t, tc.options)) || !tc.wantOptions && info.Options != nil {
				t.Errorf("options %v, want the request's (%v) echoed", info.Options, tc.options)
			}
			v, err := typeurl.UnmarshalAny(info.Features)
			if err != nil {
				t.Fatalf("features as containerd decodes them: %v", err)
			}
			f, ok := v.(*features.Features)
			if !ok || f.OCIVersionMax != tc.wantMax {
				t.Fatalf("features %#v, want ociVersionMax %s", v, tc.wantMax)
			}
		})
	}

	t.Run("a runtime without features", func(t *testing.T) {
		old := func() (string, error) { return fakeRuntime(t, ""), nil }
		var warn bytes.Buffer
		info, err := runtimeInfo(context.Background(), strings.NewReader(""), old, &warn)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != RuntimeType || info.Features != nil {
			t.Fatalf("got %v, want our name and no features", info)
		}
		if !strings.Contains(warn.String(), "unknown command") {
			t.Errorf("stderr %q, want why there are no features", warn.String())
		}
	})

	t.Run("errors", func(t *testing.T) {
		if _, err := runtimeInfo(context.Background(), strings.NewReader("\xff\xff"), find, io.Discard); err == nil {
			t.Error("options that are not a protobuf Any were accepted")
		}
		wrongType := encode(t, &apitypes.RuntimeVersion{Version: "1"})
		if _, err := runtimeInfo(context.Background(), bytes.NewReader(wrongType), find, io.Discard); err == nil || !strings.Contains(err.Error(), "unsupported runtime options") {
			t.Errorf("options of another type: %v, want an error naming them", err)
		}
	})
}

func TestWriteInfoWritesTheProtobuf(t *testing.T) {
	// WriteInfo finds greenboost-runtime next to the test binary or on
	// PATH: put a fake one on PATH.
	dir := filepath.Dir(fakeRuntime(t, `{"ociVersionMin":"1.0.0","ociVersionMax":"1.2.1"}`))
	if err := os.Rename(filepath.Join(dir, "runtime"), filepath.Join(dir, RuntimeBinary)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	var out bytes.Buffer
	if err := WriteInfo(context.Background(), strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var info apitypes.RuntimeInfo
	if err := proto.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatalf("stdout is not a RuntimeInfo protobuf: %v", err)
	}
	if info.Name != RuntimeType || info.Features.GetTypeUrl() != featuresTypeURL {
		t.Fatalf("got %v", &info)
	}
}
