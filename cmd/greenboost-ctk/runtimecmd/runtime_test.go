package runtimecmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestAddDockerRuntime(t *testing.T) {
	const gb = "/usr/bin/greenboost-runtime"
	tests := []mergeCase{
		{name: "no file", want: `{"runtimes":{"greenboost":{"path":"` + gb + `"}}}`},
		{name: "empty object", in: "{}\n", want: `{"runtimes":{"greenboost":{"path":"` + gb + `"}}}`},
		{
			name: "other keys and runtimes kept",
			in:   `{"data-root":"/srv/docker","default-ulimits":{"nofile":{"Name":"nofile","Hard":20000,"Soft":20000}},"runtimes":{"nvidia":{"path":"nvidia-container-runtime","runtimeArgs":[]}}}`,
			want: `{"data-root":"/srv/docker","default-ulimits":{"nofile":{"Name":"nofile","Hard":20000,"Soft":20000}},"runtimes":{"nvidia":{"path":"nvidia-container-runtime","runtimeArgs":[]},"greenboost":{"path":"` + gb + `"}}}`,
		},
		{
			name: "an existing entry is updated, its args kept",
			in:   `{"runtimes":{"greenboost":{"path":"/opt/old/greenboost-runtime","runtimeArgs":["--debug"]}}}`,
			want: `{"runtimes":{"greenboost":{"path":"` + gb + `","runtimeArgs":["--debug"]}}}`,
		},
		{
			name: "set as default", in: `{"default-runtime":"runc"}`, setDefault: true,
			want: `{"default-runtime":"greenboost","runtimes":{"greenboost":{"path":"` + gb + `"}}}`,
		},
		{
			// an editor's UTF-8 byte order mark, which dockerd reads past
			name: "byte order mark", in: "\xef\xbb\xbf{\"debug\":true}",
			want: `{"debug":true,"runtimes":{"greenboost":{"path":"` + gb + `"}}}`,
		},
		{name: "not JSON", in: `{"runtimes": `, err: "not a JSON object, left untouched"},
		{name: "an array", in: `[]`, err: "not a JSON object"},
		{name: "runtimes not an object", in: `{"runtimes":["runc"]}`, err: `"runtimes" is not an object`},
		{name: "null", in: `null`, err: "not a JSON object"},
		{
			name: "runtimes null", in: `{"runtimes":null,"debug":true}`,
			want: `{"debug":true,"runtimes":{"greenboost":{"path":"` + gb + `"}}}`,
		},
		{
			// dockerd: "cannot configure both path and runtimeType for the
			// same runtime", "options cannot be used with a path runtime"
			name: "a shim entry's runtimeType and options replaced by our path, other keys kept",
			in:   `{"runtimes":{"greenboost":{"runtimeType":"io.containerd.greenboost.v2","options":{"ConfigPath":"/etc/greenboost/small.toml"},"runtimeArgs":["--debug"],"x-note":"ours"}}}`,
			want: `{"runtimes":{"greenboost":{"path":"` + gb + `","runtimeArgs":["--debug"],"x-note":"ours"}}}`,
		},
		{
			// dockerd's encoding/json matches keys whatever their case
			name: "refused keys in another case dropped too, a second path replaced",
			in:   `{"runtimes":{"greenboost":{"RuntimeType":"io.containerd.runc.v2","Path":"/opt/old/greenboost-runtime"}}}`,
			want: `{"runtimes":{"greenboost":{"path":"` + gb + `"}}}`,
		},
	}
	runMergeCases(t, tests, func(in []byte, setDefault bool) ([]byte, error) {
		out, _, err := AddDockerRuntime(in, "greenboost", gb, setDefault)
		return out, err
	}, json.Unmarshal)
}

// The user's text stays as written: no \u003c for "<" or \u0026 for "&".
func TestAddDockerRuntimeKeepsText(t *testing.T) {
	out, _, err := AddDockerRuntime([]byte(`{"labels":["team=<r&d>"],"runtimes":{"x":{"path":"/opt/a&b/x"}}}`), "greenboost", "/usr/bin/greenboost-runtime", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"team=<r&d>"`, `"/opt/a&b/x"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lost %s:\n%s", want, out)
		}
	}
}

func TestAddDockerRuntimeDropped(t *testing.T) {
	for in, want := range map[string][]string{
		`{"runtimes":{"greenboost":{"runtimeType":"io.containerd.greenboost.v2","options":{"ConfigPath":"/x"}}}}`:        {"runtimeType", "options"},
		`{"runtimes":{"greenboost":{"options":null}}}`:                                                                   {"options"},
		`{"runtimes":{"greenboost":{"RuntimeType":"io.containerd.runc.v2","path":"/opt/gb"}}}`:                           {"RuntimeType"},
		`{"runtimes":{"greenboost":{"path":"/opt/gb","runtimeArgs":[]},"shim":{"runtimeType":"io.containerd.runc.v2"}}}`: nil,
		``: nil,
	} {
		_, dropped, err := AddDockerRuntime([]byte(in), "greenboost", "/usr/bin/greenboost-runtime", false)
		if err != nil || !reflect.DeepEqual(dropped, want) {
			t.Errorf("%s: dropped %q (%v), want %q", in, dropped, err, want)
		}
	}
}

// TestConfigureDockerShimEntry: configure over an entry written for the
// containerd shim leaves one dockerd starts with, and says what it dropped.
func TestConfigureDockerShimEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(path, []byte(`{"runtimes":{"gb":{"runtimeType":"io.containerd.greenboost.v2","options":{"ConfigPath":"/etc/greenboost/small.toml"},"runtimeArgs":["--debug"]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c := &configureCommand{engine: "docker", path: path, name: "gb", runtimePath: "/usr/bin/greenboost-runtime", stderr: &stderr}
	if err := c.run(nil); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Runtimes map[string]map[string]any
	}
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"path": "/usr/bin/greenboost-runtime", "runtimeArgs": []any{"--debug"}}
	if !reflect.DeepEqual(got.Runtimes["gb"], want) {
		t.Errorf("runtimes.gb is %v, want %v (dockerd refuses a path beside runtimeType or options)", got.Runtimes["gb"], want)
	}
	if msg := "greenboost-ctk: " + path + ": runtimes.gb: dropped runtimeType, options (dockerd refuses them beside path)\n"; stderr.String() != msg {
		t.Errorf("stderr %q, want %q", stderr.String(), msg)
	}
	// nothing left to drop: nothing said
	stderr.Reset()
	if err := c.run(nil); err != nil || stderr.Len() != 0 {
		t.Errorf("a second run: %v, stderr %q", err, stderr.String())
	}
}

// TestConfigureRelativeLinkInLinkedDirectory: a relative link target is
// resolved against the directory the link really is in, as the kernel does,
// here /etc/docker -> /srv/conf/docker and daemon.json -> ../shared/daemon.json.
func TestConfigureRelativeLinkInLinkedDirectory(t *testing.T) {
	for _, tt := range []struct {
		name   string
		exists bool
	}{{"target exists", true}, {"dangling target", false}} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, dir := range []string{"etc", "srv/conf/docker", "srv/conf/shared"} {
				if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("../srv/conf/docker", filepath.Join(root, "etc", "docker")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../shared/daemon.json", filepath.Join(root, "srv/conf/docker/daemon.json")); err != nil {
				t.Fatal(err)
			}
			real := filepath.Join(root, "srv/conf/shared/daemon.json")
			if tt.exists {
				if err := os.WriteFile(real, []byte(`{"debug": true}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(root, "etc/docker/daemon.json")
			c := &configureCommand{engine: "docker", path: link, name: "greenboost", runtimePath: "/usr/bin/greenboost-runtime"}
			if err := c.run(nil); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(real)
			if err != nil || !strings.Contains(string(data), `"greenboost"`) || tt.exists && !strings.Contains(string(data), `"debug": true`) {
				t.Errorf("the real target %s: %q (%v), want the runtime added to it", real, data, err)
			}
			if _, err := os.Stat(filepath.Join(root, "etc/shared")); !os.IsNotExist(err) {
				t.Errorf("configure wrote beside the link's spelling, in etc/shared (%v)", err)
			}
			if fi, err := os.Lstat(filepath.Join(root, "srv/conf/docker/daemon.json")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("daemon.json is no longer a symlink (%v)", err)
			}
			if data, err := os.ReadFile(link); err != nil || !strings.Contains(string(data), `"greenboost"`) {
				t.Errorf("through the link: %q (%v)", data, err)
			}
			if _, err := os.Stat(real + ".bak"); tt.exists && err != nil {
				t.Errorf("no backup beside the real target: %v", err)
			}
		})
	}
}

// mergeCase is a row of a config-merge table: in (empty: no file yet), then
// want (compared as values) or err (part of the error).
type mergeCase struct {
	name, in   string
	setDefault bool
	want, err  string
}

// runMergeCases checks each case, and that merging the result again
// changes nothing.
func runMergeCases(t *testing.T, cases []mergeCase, merge func(in []byte, setDefault bool) ([]byte, error), unmarshal func([]byte, any) error) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			out, err := merge([]byte(tt.in), tt.setDefault)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := unmarshal(out, &got); err != nil {
				t.Fatalf("the output does not parse: %v\n%s", err, out)
			}
			if err := unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%s\nwant\n%s", out, tt.want)
			}
			again, err := merge(out, tt.setDefault)
			if err != nil || string(again) != string(out) {
				t.Errorf("a second run changed the file:\n%s\nthen\n%s (%v)", out, again, err)
			}
		})
	}
}

func TestConfigureCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "docker", "daemon.json")
	c := &configureCommand{engine: "docker", path: path, name: "greenboost", runtimePath: "/usr/bin/greenboost-runtime"}
	if err := c.validate(nil); err != nil {
		t.Fatal(err)
	}
	// a missing file (and directory) is created, mode 0644
	if err := c.run(nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("daemon.json: %v, mode %v; want 0644", err, fi.Mode())
	}
	if _, err := os.Stat(path + ".bak"); !os.IsNotExist(err) {
		t.Errorf("a backup of a file that did not exist: %v", err)
	}
	// an existing file keeps its mode, and its previous content is backed up
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	c.name = "gb2"
	if err := c.run(nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 || !strings.Contains(string(data), `"gb2"`) || !strings.Contains(string(data), `"greenboost"`) {
		t.Errorf("after a second runtime: mode %v, content %s", fi.Mode(), data)
	}
	backup, err := os.ReadFile(path + ".bak")
	if fi, _ := os.Stat(path + ".bak"); err != nil || string(backup) != string(first) || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup %q (%v), want the previous content %q with mode 0600", backup, err, first)
	}
	// a run that changes nothing writes nothing, so the backup stays the
	// content before the last change
	if err := c.run(nil); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path + ".bak"); string(again) != string(first) {
		t.Errorf("an idempotent run replaced the backup with %q", again)
	}
	// a file that is not JSON is left as it was
	bad := []byte("# not json\n")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.run(nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a broken daemon.json: %v, want an error naming %s", err, path)
	}
	if data, _ := os.ReadFile(path); string(data) != string(bad) {
		t.Errorf("a broken daemon.json was changed to %q", data)
	}
	// a link is followed, not replaced, also where its target does not
	// exist yet (relative, as config management writes them)
	managed := filepath.Join(dir, "managed.json")
	if err := os.WriteFile(managed, []byte(`{"debug": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"daemon-link.json": managed, "dangling-link.json": "managed-new.json"} {
		link = filepath.Join(dir, link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		linked := &configureCommand{engine: "docker", path: link, name: "greenboost", runtimePath: "/usr/bin/greenboost-runtime"}
		if err := linked.run(nil); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink (%v)", link, err)
		}
		if data, err := os.ReadFile(filepath.Join(dir, filepath.Base(target))); err != nil || !strings.Contains(string(data), `"greenboost"`) {
			t.Errorf("the target of %s: %q (%v), want the runtime added", link, data, err)
		}
	}
	if data, _ := os.ReadFile(managed); !strings.Contains(string(data), `"debug": true`) {
		t.Errorf("the link's target is %s, want debug kept", data)
	}
	// a dry run writes nothing
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	c.dryRun = true
	if err := c.run(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("--dry-run wrote %s (%v)", path, err)
	}
}

func TestConfigureValidate(t *testing.T) {
	for _, tt := range []struct {
		c   configureCommand
		err string
	}{
		{configureCommand{engine: "podman", name: "greenboost"}, "cdi generate"},
		{configureCommand{engine: "containerd", name: "greenboost", runtimePath: "/usr/bin/greenboost-runtime"}, "containerd-shim-greenboost-v2 from its PATH"},
		{configureCommand{engine: "cri-o", name: "greenboost"}, "expected docker or containerd"},
		{configureCommand{engine: "docker", name: ""}, "--runtime-name"},
		{configureCommand{engine: "docker", name: "runc"}, "reserves"},
		{configureCommand{engine: "containerd", name: "runc"}, "reserves"},
		{configureCommand{engine: "docker", name: "greenboost", runtimePath: "greenboost-runtime"}, "absolute path"},
	} {
		if err := tt.c.validate(nil); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%+v: %v, want an error containing %q", tt.c, err, tt.err)
		}
	}
	c := configureCommand{engine: "docker", name: "greenboost"}
	if err := c.validate(nil); err != nil || !filepath.IsAbs(c.runtimePath) || c.path != DefaultDockerConfig {
		t.Errorf("docker defaults: runtime path %q, config %q (%v), want an absolute path and %s", c.runtimePath, c.path, err, DefaultDockerConfig)
	}
	c = configureCommand{engine: "containerd", name: "greenboost"}
	if err := c.validate(nil); err != nil || c.path != DefaultContainerdConfig {
		t.Errorf("containerd defaults: config %q (%v), want %s", c.path, err, DefaultContainerdConfig)
	}
}

// TestConfigureBadPathFlags: a flag given an empty value (a script's unset
// variable) is a one-line error naming it, not the engine's default file;
// so is a --config ending in /.
func TestConfigureBadPathFlags(t *testing.T) {
	daemonJSON := filepath.Join(t.TempDir(), "daemon.json")
	for _, tt := range []struct {
		args []string
		err  []string // parts of the error; none: no error
	}{
		{[]string{"--config", ""}, []string{"--config is empty", DefaultDockerConfig}},
		{[]string{"--config="}, []string{"--config is empty", DefaultDockerConfig}},
		{[]string{"--runtime", "containerd", "--config", ""}, []string{"--config is empty", DefaultContainerdConfig}},
		{[]string{"--config", daemonJSON, "--runtime-path", ""}, []string{"--runtime-path is empty"}},
		{[]string{"--runtime", "containerd", "--runtime-path="}, []string{"--runtime-path is for docker"}},
		// A trailing slash made a directory of the file's name, which
		// dockerd refuses to start with.
		{[]string{"--config", daemonJSON + "/"}, []string{"ends in /", daemonJSON + "/daemon.json"}},
		{[]string{"--runtime", "containerd", "--config", "/tmp/x/config.toml/"}, []string{"ends in /", "/tmp/x/config.toml/config.toml"}},
		{[]string{"--config", "-"}, []string{"--config -", "--dry-run"}},
		{[]string{"--config", daemonJSON}, nil},
		{[]string{"--runtime", "containerd"}, nil},
		{nil, nil},
	} {
		cmd := New()
		ran := false
		// Never the real action: without the check these would write the
		// default files in /etc.
		cmd.Subcommands[0].Action = func(*cli.Context) error { ran = true; return nil }
		app := &cli.App{Commands: []*cli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard}
		err := app.Run(append([]string{"greenboost-ctk", "runtime", "configure"}, tt.args...))
		if tt.err == nil {
			if err != nil || !ran {
				t.Errorf("%q: %v (ran %v), want it to run", tt.args, err, ran)
			}
			continue
		}
		if err == nil || ran || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v (ran %v), want a one-line error and no run", tt.args, err, ran)
			continue
		}
		for _, want := range tt.err {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: %v, want it to contain %q", tt.args, err, want)
			}
		}
	}
}

// TestConfigureUnchangedContent: a config whose content already has the
// entry, however it is formatted, is left as it is, its backup too.
func TestConfigureUnchangedContent(t *testing.T) {
	const v2Entry = "[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.greenboost]\n" +
		"    container_annotations = [ 'greenboost.io/*' ]   # ours\n    runtime_type = 'io.containerd.greenboost.v2'\n    pod_annotations = [\"example.com/*\", \"greenboost.io/*\"]\n"
	for _, tt := range []struct {
		name, engine, content string
		setDefault            bool
	}{
		{name: "docker, 2-space indent, other key order", engine: "docker",
			content: "{\n  \"runtimes\": {\n    \"greenboost\": {\n      \"path\": \"/usr/bin/greenboost-runtime\"\n    }\n  },\n  \"debug\": true\n}\n"},
		{name: "docker, compact, with other runtimes and args", engine: "docker",
			content: `{"runtimes":{"nvidia":{"path":"nvidia-container-runtime"},"greenboost":{"runtimeArgs":["--debug"],"path":"/usr/bin/greenboost-runtime"}},"log-opts":{"max-size":"10m"},"max-concurrent-downloads":3.0}`},
		{name: "docker, already the default", engine: "docker", setDefault: true,
			content: "{\"default-runtime\": \"greenboost\", \"runtimes\": {\"greenboost\": {\"path\": \"/usr/bin/greenboost-runtime\"}}}"},
		{name: "containerd version 2, commented, other key order", engine: "containerd",
			content: "# managed by hand\nversion = 2\n\n" + v2Entry + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"},
		{name: "containerd version 3, runtimes as dotted keys", engine: "containerd",
			content: "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd]\n" +
				"runtimes.runc.runtime_type = \"io.containerd.runc.v2\"\nruntimes.greenboost = { runtime_type = \"io.containerd.greenboost.v2\", pod_annotations = [\"greenboost.io/*\"], container_annotations = [\"greenboost.io/*\"] }\n"},
		{name: "containerd, already the default", engine: "containerd", setDefault: true,
			content: "version = 2\n" + v2Entry + "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"greenboost\"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path, backup := filepath.Join(dir, "config"), filepath.Join(dir, "config.bak")
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			for file, content := range map[string]string{path: tt.content, backup: "the content before the last change\n"} {
				if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(file, old, old); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			c := &configureCommand{engine: tt.engine, path: path, name: "greenboost", setDefault: tt.setDefault, stdout: &stdout, stderr: &stderr}
			if tt.engine == "docker" {
				c.runtimePath = "/usr/bin/greenboost-runtime"
			}
			if err := c.run(nil); err != nil {
				t.Fatal(err)
			}
			for file, content := range map[string]string{path: tt.content, backup: "the content before the last change\n"} {
				data, _ := os.ReadFile(file)
				if fi, err := os.Stat(file); err != nil || !fi.ModTime().Equal(old) || string(data) != content {
					t.Errorf("%s was rewritten (%v): now %q", filepath.Base(file), err, data)
				}
			}
			if !strings.Contains(stdout.String(), "is already") || strings.Contains(stdout.String(), "restart") || stderr.Len() != 0 {
				t.Errorf("stdout %q, stderr %q; want it said to be already configured, and nothing to restart", stdout.String(), stderr.String())
			}
			// a dry run shows the file as it stays
			stdout.Reset()
			c.dryRun = true
			if err := c.run(nil); err != nil || stdout.String() != tt.content {
				t.Errorf("--dry-run printed %q (%v), want the file as it is", stdout.String(), err)
			}
		})
	}
}

// --set-as-default says which default it replaced.
func TestConfigureSaysReplacedDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(path, []byte(`{"default-runtime":"runc"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c := &configureCommand{engine: "docker", path: path, name: "gb", runtimePath: "/usr/bin/greenboost-runtime", setDefault: true, stdout: io.Discard, stderr: &stderr}
	if err := c.run(nil); err != nil {
		t.Fatal(err)
	}
	if want := "greenboost-ctk: " + path + `: default-runtime was "runc", now "gb"` + "\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	stderr.Reset()
	if err := c.run(nil); err != nil || stderr.Len() != 0 {
		t.Errorf("a second run: %v, stderr %q; want nothing said", err, stderr.String())
	}
}

// Runs on one file at the same time (a package's postinst and an admin)
// each keep the others' entries: the read-modify-write holds a lock.
func TestConcurrentConfigureKeepsEveryEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docker", "daemon.json")
	const runs = 16
	errs := make(chan error, runs)
	for i := range runs {
		go func() {
			c := &configureCommand{engine: "docker", path: path, name: fmt.Sprintf("gb%d", i),
				runtimePath: "/usr/bin/greenboost-runtime", stdout: io.Discard, stderr: io.Discard}
			errs <- c.run(nil)
		}()
	}
	for range runs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct{ Runtimes map[string]any }
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Runtimes) != runs {
		t.Fatalf("%d of %d runtimes left after concurrent runs: %s", len(cfg.Runtimes), runs, data)
	}
}
