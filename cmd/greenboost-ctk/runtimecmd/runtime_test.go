package runtimecmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
		{name: "not JSON", in: `{"runtimes": `, err: "not a JSON object, left untouched"},
		{name: "an array", in: `[]`, err: "not a JSON object"},
		{name: "runtimes not an object", in: `{"runtimes":["runc"]}`, err: `"runtimes" is not an object`},
		{name: "null", in: `null`, err: "not a JSON object"},
		{
			name: "runtimes null", in: `{"runtimes":null,"debug":true}`,
			want: `{"debug":true,"runtimes":{"greenboost":{"path":"` + gb + `"}}}`,
		},
	}
	runMergeCases(t, tests, func(in []byte, setDefault bool) ([]byte, error) {
		return AddDockerRuntime(in, "greenboost", gb, setDefault)
	}, json.Unmarshal)
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
