package runtimecmd

import (
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func TestAddContainerdRuntime(t *testing.T) {
	const (
		gb = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.greenboost]` + "\nruntime_type = \"io.containerd.greenboost.v2\"\n" +
			"pod_annotations = [\"greenboost.io/*\"]\ncontainer_annotations = [\"greenboost.io/*\"]\n"
		runc = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]` + "\nruntime_type = \"io.containerd.runc.v2\"\n"
	)
	tests := []mergeCase{
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
			name: "annotation patterns of an existing entry kept, ours added once",
			in:   "version = 2\n" + runc + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost]\npod_annotations = [\"example.com/*\"]\ncontainer_annotations = [\"greenboost.io/*\"]\n",
			want: "version = 2\n" + runc + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost]\nruntime_type = \"io.containerd.greenboost.v2\"\npod_annotations = [\"example.com/*\", \"greenboost.io/*\"]\ncontainer_annotations = [\"greenboost.io/*\"]\n",
		},
		{
			name: "pod_annotations not a list",
			in:   "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost]\npod_annotations = \"greenboost.io/*\"\n",
			err:  `runtimes.greenboost.pod_annotations: not a list`,
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
			want: "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.greenboost]\nruntime_type = \"io.containerd.greenboost.v2\"\npod_annotations = [\"greenboost.io/*\"]\ncontainer_annotations = [\"greenboost.io/*\"]\n",
		},
		{name: "not TOML", in: "version = [", err: "not TOML, left untouched"},
		{name: "version 1", in: "root = \"/srv\"\n", err: `no "version" key`},
		{
			// containerd 2.3+'s `config default`, abridged: server settings
			// are plugins, CRI's runtimes stay where version 3 has them.
			name: "containerd 2.3+: version 4, runc's entry and options kept",
			in: "version = 4\n[plugins]\n  [plugins.'io.containerd.server.v1.grpc']\n    address = '/run/containerd/containerd.sock'\n" +
				"  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n    runtime_type = 'io.containerd.runc.v2'\n    sandboxer = 'podsandbox'\n" +
				"    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n      SystemdCgroup = false\n",
			want: "version = 4\n[plugins.\"io.containerd.server.v1.grpc\"]\naddress = \"/run/containerd/containerd.sock\"\n" +
				"[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\nsandboxer = \"podsandbox\"\n" +
				"[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]\nSystemdCgroup = false\n" +
				"[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.greenboost]\nruntime_type = \"io.containerd.greenboost.v2\"\npod_annotations = [\"greenboost.io/*\"]\ncontainer_annotations = [\"greenboost.io/*\"]\n",
		},
		{name: "unknown version", in: "version = 5\n", err: "config version 5"},
		{name: "plugins not a table", in: "version = 2\nplugins = 1\n", err: "plugins is not a table"},
		{name: "runtimes not a table", in: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = \"runc\"\n", err: `plugins."io.containerd.grpc.v1.cri".containerd.runtimes is not a table`},
	}
	runMergeCases(t, tests, func(in []byte, setDefault bool) ([]byte, error) {
		return AddContainerdRuntime(in, "greenboost", setDefault)
	}, toml.Unmarshal)
}
