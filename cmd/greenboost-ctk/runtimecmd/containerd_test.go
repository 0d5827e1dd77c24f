package runtimecmd

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func TestAddContainerdRuntime(t *testing.T) {
	const (
		gb   = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.greenboost]` + "\nruntime_type = \"io.containerd.greenboost.v2\"\n"
		runc = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]` + "\nruntime_type = \"io.containerd.runc.v2\"\n"
	)
	tests := []struct {
		name, in   string
		setDefault bool
		want       string // TOML, compared as values
		err        string
	}{
		{name: "no file", want: "version = 2\n" + runc + gb},
		{
			name: "Debian's config: CRI's runc entry is added with ours",
			in:   "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/usr/lib/cni\"\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/var/lib/containerd/opt\"\n",
			want: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\nbin_dir = \"/usr/lib/cni\"\n[plugins.\"io.containerd.internal.v1.opt\"]\npath = \"/var/lib/containerd/opt\"\n" + runc + gb,
		},
		{
			name: "other keys, runtimes and options kept",
			in:   "version = 2\nroot = \"/srv/containerd\"\n[grpc]\naddress = \"/run/c.sock\"\n" + runc + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n",
			want: "version = 2\nroot = \"/srv/containerd\"\n[grpc]\naddress = \"/run/c.sock\"\n" + runc + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n" + gb,
		},
		{
			name: "an existing entry is updated, its options kept",
			in:   "version = 2\n" + runc + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost]\nruntime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost.options]\nConfigPath = \"/etc/greenboost/small.toml\"\n",
			want: "version = 2\n" + runc + gb + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost.options]\nConfigPath = \"/etc/greenboost/small.toml\"\n",
		},
		{
			name: "another default runtime: no runc added",
			in:   "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"crun\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\nruntime_type = \"io.containerd.runc.v2\"\n",
			want: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"crun\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\nruntime_type = \"io.containerd.runc.v2\"\n" + gb,
		},
		{
			name: "set as default", in: "version = 2\n", setDefault: true,
			want: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"greenboost\"\n" + runc + gb,
		},
		{
			name: "containerd 2.x: version 3",
			in:   "version = 3\n",
			want: "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.greenboost]\nruntime_type = \"io.containerd.greenboost.v2\"\n",
		},
		{name: "not TOML", in: "version = [", err: "not TOML, left untouched"},
		{name: "version 1", in: "root = \"/srv\"\n", err: `no "version" key`},
		{name: "unknown version", in: "version = 4\n", err: "config version 4"},
		{name: "plugins not a table", in: "version = 2\nplugins = 1\n", err: "plugins is not a table"},
		{name: "runtimes not a table", in: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = \"runc\"\n", err: `plugins."io.containerd.grpc.v1.cri".containerd.runtimes is not a table`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := AddContainerdRuntime([]byte(tt.in), "greenboost", tt.setDefault)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got, want map[string]any
			if err := toml.Unmarshal(out, &got); err != nil {
				t.Fatalf("output is not TOML: %v\n%s", err, out)
			}
			if err := toml.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%s\nwant\n%s", out, tt.want)
			}
			again, err := AddContainerdRuntime(out, "greenboost", tt.setDefault)
			if err != nil || string(again) != string(out) {
				t.Errorf("a second run changed the file:\n%s\nthen\n%s (%v)", out, again, err)
			}
		})
	}
}
