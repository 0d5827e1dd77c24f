package runtimecmd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
		{name: "version a string", in: "version = \"2\"\n", err: `version = "2": must be an integer (e.g. version = 2), left untouched`},
		{name: "version a float", in: "version = 2.0\n", err: `version is a float: must be an integer`},
		{name: "version a table", in: "[version]\nmajor = 2\n", err: `version is a table: must be an integer`},
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
		out, _, err := AddContainerdRuntime(in, "greenboost", setDefault)
		return out, err
	}, toml.Unmarshal)
}

func TestShadowingImport(t *testing.T) {
	const (
		v2CRI     = "[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"
		v3Runtime = "[plugins.\"io.containerd.cri.v1.runtime\".cni]\nbin_dir = \"/opt/cni/bin\"\n"
		v2Entry   = "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost]\nruntime_type = \"io.containerd.greenboost.v2\"\n"
	)
	for _, tt := range []struct {
		name   string
		main   string
		files  map[string]string // under the config's directory
		want   string            // the file named, "" for none
		plugin string
	}{
		{name: "no imports", main: "version = 2\n", files: map[string]string{"conf.d/cri.toml": "version = 2\n" + v2CRI}},
		{name: "empty imports", main: "version = 2\nimports = []\n"},
		{
			name: "a glob, relative: the drop-in that defines CRI's section",
			main: "version = 2\nimports = [\"conf.d/*.toml\"]\n",
			files: map[string]string{
				"conf.d/10-debug.toml": "version = 2\n[debug]\nlevel = \"debug\"\n",
				"conf.d/20-cri.toml":   "version = 2\n" + v2CRI,
				"conf.d/30-other.toml": "version = 2\n[plugins.\"io.containerd.internal.v1.opt\"]\npath = \"/opt\"\n",
			},
			want: "conf.d/20-cri.toml", plugin: "io.containerd.grpc.v1.cri",
		},
		{
			name:  "the last of several wins",
			main:  "version = 2\nimports = [\"a.toml\", \"b.toml\"]\n",
			files: map[string]string{"a.toml": "version = 2\n" + v2CRI, "b.toml": "version = 2\n" + v2CRI},
			want:  "b.toml", plugin: "io.containerd.grpc.v1.cri",
		},
		{
			name:  "a drop-in that has our entry: nothing to say",
			main:  "version = 2\nimports = [\"cri.toml\"]\n",
			files: map[string]string{"cri.toml": "version = 2\n" + v2CRI + v2Entry},
		},
		{
			name:  "missing and broken imports skipped",
			main:  "version = 2\nimports = [\"missing.toml\", \"broken.toml\", \"nothing/*.toml\"]\n",
			files: map[string]string{"broken.toml": "version = ["},
		},
		{
			name:  "nested imports, relative to the file that imports them",
			main:  "version = 2\nimports = [\"conf.d/top.toml\"]\n",
			files: map[string]string{"conf.d/top.toml": "version = 2\nimports = [\"sub/cri.toml\"]\n", "conf.d/sub/cri.toml": "version = 2\n" + v2CRI},
			want:  "conf.d/sub/cri.toml", plugin: "io.containerd.grpc.v1.cri",
		},
		{
			name:  "version 3: the runtime plugin",
			main:  "version = 3\nimports = [\"cri.toml\"]\n",
			files: map[string]string{"cri.toml": "version = 3\n" + v3Runtime},
			want:  "cri.toml", plugin: "io.containerd.cri.v1.runtime",
		},
		{
			name:  "version 3: a version 3 grpc.v1.cri has the server settings only",
			main:  "version = 3\nimports = [\"cri.toml\"]\n",
			files: map[string]string{"cri.toml": "version = 3\n[plugins.\"io.containerd.grpc.v1.cri\"]\ndisable_tcp_service = true\n"},
		},
		{
			name:  "version 3: a version 2 drop-in is migrated into the runtime plugin",
			main:  "version = 3\nimports = [\"cri.toml\"]\n",
			files: map[string]string{"cri.toml": "version = 2\n" + v2CRI},
			want:  "cri.toml", plugin: "io.containerd.grpc.v1.cri",
		},
		{
			name:  "an absolute import",
			main:  "version = 2\nimports = [\"ABS/elsewhere/cri.toml\"]\n",
			files: map[string]string{"elsewhere/cri.toml": "version = 2\n" + v2CRI},
			want:  "elsewhere/cri.toml", plugin: "io.containerd.grpc.v1.cri",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			main := filepath.Join(dir, "config.toml")
			got, plugin := shadowingImport(main, []byte(strings.ReplaceAll(tt.main, "ABS", dir)), "greenboost")
			want := ""
			if tt.want != "" {
				want = filepath.Join(dir, tt.want)
			}
			if got != want || plugin != tt.plugin {
				t.Errorf("got %q, %q; want %q, %q", got, plugin, want, tt.plugin)
			}
		})
	}
}

// TestConfigureContainerdImport: an imported drop-in that defines CRI's
// section is named on stderr, and the config is still written.
func TestConfigureContainerdImport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	dropIn := filepath.Join(dir, "conf.d", "cri.toml")
	if err := os.MkdirAll(filepath.Dir(dropIn), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dropIn, []byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("version = 2\nimports = [\"conf.d/*.toml\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c := &configureCommand{engine: "containerd", path: path, name: "greenboost", stderr: &stderr}
	if err := c.run(nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "io.containerd.greenboost.v2") || !strings.Contains(string(data), "conf.d/*.toml") {
		t.Errorf("config.toml is %s, want our entry and the imports", data)
	}
	msg := stderr.String()
	if !strings.HasPrefix(msg, "greenboost-ctk: warning: "+dropIn+" ") || strings.Count(msg, "\n") != 1 ||
		!strings.Contains(msg, `plugins."io.containerd.grpc.v1.cri"`) || !strings.Contains(msg, "--config "+dropIn) {
		t.Errorf("stderr %q, want one warning naming %s and the --config to run", msg, dropIn)
	}
	// configured there too, nothing is left to say
	stderr.Reset()
	if err := (&configureCommand{engine: "containerd", path: dropIn, name: "greenboost", stderr: &stderr}).run(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.run(nil); err != nil || stderr.Len() != 0 {
		t.Errorf("after configuring the drop-in: %v, stderr %q", err, stderr.String())
	}

	// A drop-in without a version, which configure would refuse, is to get
	// one first.
	if err := os.WriteFile(dropIn, []byte("[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.run(nil); err != nil || !strings.Contains(stderr.String(), "add version = 2 at its top, then greenboost-ctk runtime configure") {
		t.Errorf("version-less drop-in: %v, stderr %q", err, stderr.String())
	}
}

// TestAddContainerdRuntimeKeepsText: a new entry is appended to the file's
// text, its comments and formatting kept; where that cannot give the config
// the merge makes, or a table the file has changes, the file is re-encoded
// with a warning, and still has the entry.
func TestAddContainerdRuntimeKeepsText(t *testing.T) {
	const (
		v2   = `"io.containerd.grpc.v1.cri"`
		v3   = `"io.containerd.cri.v1.runtime"`
		runc = "[plugins.%s.containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"
		gb   = "[plugins.%s.containerd.runtimes.greenboost]\n  runtime_type = \"io.containerd.greenboost.v2\"\n" +
			"  pod_annotations = [\"greenboost.io/*\"]\n  container_annotations = [\"greenboost.io/*\"]\n"
		commented = "# containerd config, by hand\nversion = 2 # containerd 1.x\n\n[plugins]\n  # CRI\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n" +
			"    sandbox_image = \"registry.k8s.io/pause:3.9\" # pinned\n    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n" +
			"      config_path = \"/etc/containerd/certs.d\"\n      mirrors = [\n        # none yet\n      ]\n# end\n"
		// what containerd 2.x's `config default` writes, abridged
		v3Default = "version = 3\n\n[plugins]\n  [plugins.'io.containerd.cri.v1.runtime']\n    enable_selinux = false # default\n" +
			"    [plugins.'io.containerd.cri.v1.runtime'.containerd]\n      default_runtime_name = 'runc'\n" +
			"      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]\n        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n" +
			"          runtime_type = 'io.containerd.runc.v2'\n          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n            SystemdCgroup = true\n"
		rewritten = "comments and formatting not kept"
	)
	for _, tt := range []struct {
		name, in   string
		setDefault bool
		// want: the exact output where the text is kept; where warning
		// (part of the one warning) is set, compared as values.
		want, warning string
	}{
		{
			name: "version 2, comments full-line and inline kept, runc added too",
			in:   commented, want: commented + "\n" + fmt.Sprintf(runc, v2) + "\n" + fmt.Sprintf(gb, v2),
		},
		{name: "version 3, containerd 2.x's default config", in: v3Default, want: v3Default + "\n" + fmt.Sprintf(gb, v3)},
		{name: "version 4", in: "version = 4 # 2.3+\n", want: "version = 4 # 2.3+\n\n" + fmt.Sprintf(runc, v3) + "\n" + fmt.Sprintf(gb, v3)},
		{name: "no newline at the end", in: "version = 2 # x", want: "version = 2 # x\n\n" + fmt.Sprintf(runc, v2) + "\n" + fmt.Sprintf(gb, v2)},
		{
			name: "CRLF line ends kept",
			in:   "version = 2\r\n# x\r\n",
			want: "version = 2\r\n# x\r\n\r\n" + strings.ReplaceAll(fmt.Sprintf(runc, v2)+"\n"+fmt.Sprintf(gb, v2), "\n", "\r\n"),
		},
		{name: "only comments: version 2 added after them", in: "# empty\n", want: "# empty\n\nversion = 2\n\n" + fmt.Sprintf(runc, v2) + "\n" + fmt.Sprintf(gb, v2)},
		{
			// valid TOML: a [table] may add a sub-table to one that dotted
			// keys defined (containerd 1.x's go-toml v1 reads it too)
			name: "dotted keys define the runtimes table",
			in:   "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes.runc.runtime_type = \"io.containerd.runc.v2\" # ours\n",
			want: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes.runc.runtime_type = \"io.containerd.runc.v2\" # ours\n\n" + fmt.Sprintf(gb, v2),
		},
		{
			name: "an inline runtimes table: re-encoded",
			in:   "version = 2 # x\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = { runc = { runtime_type = \"io.containerd.runc.v2\" } }\n",
			want: "version = 2\n" + fmt.Sprintf(runc, v2) + fmt.Sprintf(gb, v2), warning: rewritten,
		},
		{
			name: "an inline CRI plugin table, version 3: re-encoded",
			in:   "version = 3\n[plugins] # x\n'io.containerd.cri.v1.runtime' = { containerd = { default_runtime_name = 'runc' } }\n",
			want: "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd]\ndefault_runtime_name = \"runc\"\n" + fmt.Sprintf(runc, v3) + fmt.Sprintf(gb, v3), warning: rewritten,
		},
		{
			name: "set as default: re-encoded",
			in:   "version = 2 # x\n", setDefault: true,
			want: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"greenboost\"\n" + fmt.Sprintf(runc, v2) + fmt.Sprintf(gb, v2), warning: rewritten,
		},
		{
			name: "an existing entry updated: re-encoded",
			in:   "version = 2 # x\n" + fmt.Sprintf(runc, v2) + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.greenboost]\nruntime_type = \"io.containerd.runc.v2\"\n",
			want: "version = 2\n" + fmt.Sprintf(runc, v2) + fmt.Sprintf(gb, v2), warning: rewritten,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, warnings, err := AddContainerdRuntime([]byte(tt.in), "greenboost", tt.setDefault)
			if err != nil {
				t.Fatal(err)
			}
			if tt.warning == "" {
				if string(out) != tt.want || len(warnings) != 0 {
					t.Errorf("got (warnings %q)\n%s\nwant\n%s", warnings, out, tt.want)
				}
			} else {
				if len(warnings) != 1 || !strings.Contains(warnings[0], tt.warning) {
					t.Errorf("warnings %q, want one containing %q", warnings, tt.warning)
				}
				var got, want any
				if err := toml.Unmarshal(out, &got); err != nil {
					t.Fatalf("the output does not parse: %v\n%s", err, out)
				}
				if err := toml.Unmarshal([]byte(tt.want), &want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got\n%s\nwant\n%s", out, tt.want)
				}
			}
			again, warnings, err := AddContainerdRuntime(out, "greenboost", tt.setDefault)
			if err != nil || string(again) != string(out) || len(warnings) != 0 {
				t.Errorf("a second run changed the file (warnings %q, %v):\n%s\nthen\n%s", warnings, err, out, again)
			}
		})
	}
}

// TestConfigureCRIDisabled: a config that disables CRI still gets the
// entry, and a warning that Kubernetes will not use it.
func TestConfigureCRIDisabled(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		disabled string // the plugin the warning names; "" for none
	}{
		{"version 2, CRI disabled", "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n", "io.containerd.grpc.v1.cri"},
		{"version 3, CRI's runtime plugin disabled", "version = 3\ndisabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.cri.v1.runtime\"]\n", "io.containerd.cri.v1.runtime"},
		{"version 3, CRI's service disabled", "version = 3\ndisabled_plugins = ['io.containerd.grpc.v1.cri']\n", "io.containerd.grpc.v1.cri"},
		{"version 2, another plugin disabled", "version = 2\ndisabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\"]\n", ""},
		{"version 2, a version 3 name: not a plugin there", "version = 2\ndisabled_plugins = [\"io.containerd.cri.v1.runtime\"]\n", ""},
		{"nothing disabled", "version = 2\ndisabled_plugins = []\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tt.in), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			c := &configureCommand{engine: "containerd", path: path, name: "greenboost", stdout: &stdout, stderr: &stderr}
			if err := c.run(nil); err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(path); !strings.Contains(string(data), shimRuntimeType) {
				t.Errorf("config.toml is %s, want our entry", data)
			}
			msg := stderr.String()
			if tt.disabled == "" {
				if msg != "" {
					t.Errorf("stderr %q, want nothing", msg)
				}
				return
			}
			if !strings.HasPrefix(msg, "greenboost-ctk: warning: "+path+": disabled_plugins has \""+tt.disabled+"\": CRI is off") ||
				strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "Kubernetes") {
				t.Errorf("stderr %q, want one warning that CRI (%s) is disabled", msg, tt.disabled)
			}
		})
	}
}
