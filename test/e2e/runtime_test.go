//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRuntime drives real runc and crun through bin/greenboost-runtime:
// create, start, wait, delete, and what the container sees.
func TestRuntime(t *testing.T) {
	s := getSuite(t)
	for _, ll := range s.lowLevels() {
		t.Run(ll.name, func(t *testing.T) {
			if ll.name == "crun" {
				prepareCrun(t)
			}
			t.Run("greenboost", func(t *testing.T) { testGreenBoostContainer(t, s, ll) })
			t.Run("image-ld-preload-kept", func(t *testing.T) { testImagePreload(t, s, ll) })
			t.Run("opt-out-env", func(t *testing.T) {
				testOptOut(t, s, ll, bundleOpts{env: []string{"GREENBOOST_DISABLE=1"}})
			})
			t.Run("opt-out-annotation", func(t *testing.T) {
				testOptOut(t, s, ll, bundleOpts{annotations: map[string]string{"greenboost.io/disable": "true"}})
			})
			t.Run("bogus-ram-limit-env", func(t *testing.T) {
				testBogusLimit(t, s, ll, bundleOpts{env: []string{"GREENBOOST_RAM_LIMIT=bogus"}}, `invalid GREENBOOST_RAM_LIMIT "bogus": expected`)
			})
			t.Run("bogus-ram-limit-annotation", func(t *testing.T) {
				testBogusLimit(t, s, ll, bundleOpts{annotations: map[string]string{"greenboost.io/ram-limit": "bogus"}}, `invalid greenboost.io/ram-limit "bogus": expected`)
			})
			t.Run("enforce-without-module", func(t *testing.T) { testEnforceWithoutModule(t, s, ll) })
			t.Run("user-namespace", func(t *testing.T) { testUserNamespace(t, s, ll) })
			if ll.name == "crun" {
				t.Run("config-file", func(t *testing.T) { testCrunConfigFile(t, s, ll) })
			}
			t.Run("run", func(t *testing.T) { testRunVerb(t, s, ll) })
			t.Run("read-only-bundle", func(t *testing.T) { testReadOnlyBundle(t, s, ll) })
			t.Run("unknown-verb-passes-through", func(t *testing.T) { testUnknownVerb(t, s, ll) })
			t.Run("control-plain-runtime", func(t *testing.T) { testPlainControl(t, s, ll) })
		})
	}
}

// testUserNamespace runs a container whose root is an unprivileged host user
// over a rootfs that belongs to the host's root, as runtime-tools'
// linux_uid_mappings does: the runtime cannot make the library's mount point
// there, nor a device node, and the container still gets all of GreenBoost.
func testUserNamespace(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{})
	spec := b.readSpec(t)
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.writeSpec(t, spec)
	c := s.newContainer(t, b, ll, true, cfg)
	runAll(t, c)
	s.checkGreenBoostProbe(t, c.output(), "")
	fi, err := os.Stat(filepath.Join(b.rootfs, libContainerPath))
	if err != nil {
		t.Fatalf("the library's mount point: %v", err)
	}
	// Made by the wrapper, owned as the directory it is in: the container's
	// root cannot write a rootfs of the host's root, and must not gain it.
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("the library's mount point belongs to %d:%d, want 0:0 as the rootfs", st.Uid, st.Gid)
	}
	if log, _ := os.ReadFile(cfg.logFile); strings.Contains(string(log), "could not make a mount point") {
		t.Errorf("the wrapper could not make the mount point:\n%s", log)
	}
	if t.Failed() {
		t.Logf("container output:\n%s", c.output())
	}
}

// testCrunConfigFile: crun's create --config FILE runs FILE, and the bundle
// has no config.json: the wrapper edits FILE, and the prestart hook reads
// the container's requests there.
func testCrunConfigFile(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{env: []string{"GREENBOOST_RAM_LIMIT=384M"}})
	spec := b.readSpec(t)
	spec.Root.Path = b.rootfs
	b.writeSpec(t, spec)
	specFile := filepath.Join(dir, "spec.json")
	if err := os.Rename(filepath.Join(b.dir, "config.json"), specFile); err != nil {
		t.Fatal(err)
	}
	c := s.newContainer(t, b, ll, true, cfg)
	c.createArgs = []string{"--config", specFile}
	if _, err := c.create(); err != nil {
		t.Fatal(err)
	}
	rec, err := cfg.readRecord(c.id)
	if err != nil {
		t.Fatalf("record after create: %v", err)
	}
	if rec.Limits.RAM != 384<<20 {
		t.Errorf("record ram limit %d, want %d (GREENBOOST_RAM_LIMIT=384M in %s)", rec.Limits.RAM, 384<<20, specFile)
	}
	startWaitDelete(t, c)
	if _, err := os.Stat(cfg.recordPath(c.id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record after delete: want it gone (poststop), stat says %v", err)
	}
	s.checkGreenBoostProbe(t, c.output(), "")
	if t.Failed() {
		t.Logf("container output:\n%s", c.output())
	}
}

// runAll does create, start, wait and delete, failing the test on any error.
func runAll(t *testing.T, c *container) {
	t.Helper()
	if _, err := c.create(); err != nil {
		t.Fatal(err)
	}
	startWaitDelete(t, c)
}

// startWaitDelete does the rest of runAll after create.
func startWaitDelete(t *testing.T, c *container) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.delete(); err != nil {
		t.Fatal(err)
	}
}

func testGreenBoostContainer(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	annotations := map[string]string{"greenboost.io/nvme-limit": "3Gi"}
	hookStderr := filepath.Join(dir, "hooks.stderr")
	if ll.name == "crun" {
		// crun drops hooks' output unless told where to put it.
		annotations["run.oci.hooks.stderr"] = hookStderr
	}
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{
		env:         []string{"GREENBOOST_RAM_LIMIT=1G"},
		annotations: annotations,
	})
	c := s.newContainer(t, b, ll, true, cfg)

	if stderr, err := c.create(); err != nil {
		t.Fatal(err)
	} else if stderr != "" {
		// The wrapper writes nothing on success (engines parse stderr), and
		// the probe writes nothing there either.
		t.Errorf("create wrote to stderr on success: %q", stderr)
	}
	checkEditedSpec(t, s, cfg, b.readSpec(t))

	// The prestart hook ran during create and recorded the container.
	rec, err := cfg.readRecord(c.id)
	if err != nil {
		t.Fatalf("record after create: %v", err)
	}
	if rec.ID != c.id || rec.Pid != c.pid || rec.Bundle != b.dir {
		t.Errorf("record: id %q pid %d bundle %q, want %q %d %q", rec.ID, rec.Pid, rec.Bundle, c.id, c.pid, b.dir)
	}
	if rec.Limits.RAM != 1<<30 || rec.Limits.NVMe != 3<<30 {
		t.Errorf("record limits: ram %d nvme %d, want %d (env GREENBOOST_RAM_LIMIT=1G) and %d (annotation 3Gi)", rec.Limits.RAM, rec.Limits.NVMe, 1<<30, 3<<30)
	}
	if rec.Enforced {
		t.Errorf("record says enforced, but the stand-in device cannot enforce budgets")
	}
	checkRecordCgroup(t, rec, c.pid)

	if ll.name == "crun" {
		// With enforce = false and a device that is no GreenBoost module,
		// the hook must say that the budgets are not enforced.
		data, _ := os.ReadFile(hookStderr)
		if !strings.Contains(string(data), "NOT enforced") {
			t.Errorf("the prestart hook did not warn that budgets are not enforced; its stderr: %q", data)
		}
	}

	// A pass-through verb reaches the low-level runtime untouched.
	stdout, stderr, err := c.run("state", c.id)
	if err != nil {
		t.Errorf("greenboost-runtime state: %v: %s", err, stderr)
	} else {
		var st specs.State
		if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.ID != c.id || st.Pid != c.pid {
			t.Errorf("greenboost-runtime state: got %q (%v), want the state of %s pid %d", stdout, err, c.id, c.pid)
		}
	}

	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.recordPath(c.id)); err != nil {
		t.Errorf("record before delete: %v", err)
	}
	if err := c.delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.recordPath(c.id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record after delete: want it gone (poststop), stat says %v", err)
	}
	if c.exists() {
		t.Errorf("container %s still exists after delete", c.id)
	}
	s.checkGreenBoostProbe(t, c.output(), "")
	// The container's stderr: ld.so reports a preload it cannot load there.
	if data, _ := os.ReadFile(filepath.Join(b.dir, "stderr")); len(data) != 0 {
		t.Errorf("stderr of create and the container: %q, want nothing", data)
	}
	if t.Failed() {
		t.Logf("container output:\n%s", c.output())
	}
}

// checkEditedSpec checks the spec as the wrapper left it for the runtime.
func checkEditedSpec(t *testing.T, s *suite, cfg gbConfig, spec *specs.Spec) {
	t.Helper()
	if spec.Linux == nil {
		t.Fatal("edited spec has no linux section")
	}
	foundNode := false
	for _, d := range spec.Linux.Devices {
		if d.Path == "/dev/greenboost" {
			foundNode = d.Type == "c" && d.Major == int64(s.devMajor) && d.Minor == int64(s.devMinor)
			if !foundNode {
				t.Errorf("device node in the spec: %+v, want c %d:%d", d, s.devMajor, s.devMinor)
			}
		}
	}
	if !foundNode {
		t.Errorf("no /dev/greenboost in linux.devices: %+v", spec.Linux.Devices)
	}
	var rules []specs.LinuxDeviceCgroup
	if spec.Linux.Resources != nil {
		for _, r := range spec.Linux.Resources.Devices {
			if r.Allow && r.Major != nil && *r.Major == int64(s.devMajor) {
				rules = append(rules, r)
			}
		}
	}
	var got []string
	for _, r := range rules {
		minor := "*"
		if r.Minor != nil {
			minor = strconv.FormatInt(*r.Minor, 10)
		}
		got = append(got, fmt.Sprintf("allow %s %d:%s %s", r.Type, *r.Major, minor, r.Access))
	}
	if want := fmt.Sprintf("allow c %d:%d rw", s.devMajor, s.devMinor); len(got) != 1 || got[0] != want {
		t.Errorf("device cgroup rules for major %d: %v, want exactly [%s]", s.devMajor, got, want)
	}
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if m.Destination == libContainerPath {
			mounts = append(mounts, m)
		}
	}
	if len(mounts) != 1 || mounts[0].Source != s.fixtureLib {
		t.Errorf("mounts at %s: %+v, want one from %s", libContainerPath, mounts, s.fixtureLib)
	} else {
		for _, o := range []string{"ro", "nosuid", "nodev", "bind"} {
			if !slices.Contains(mounts[0].Options, o) {
				t.Errorf("library mount options %v lack %s", mounts[0].Options, o)
			}
		}
	}
	if spec.Hooks == nil {
		t.Fatal("edited spec has no hooks")
	}
	for stage, hooks := range map[string][]specs.Hook{"prestart": spec.Hooks.Prestart, "poststop": spec.Hooks.Poststop} {
		want := []string{"greenboost-hook", "--config", cfg.path, stage}
		var ours []specs.Hook
		for _, h := range hooks {
			if h.Path == s.hookBin {
				ours = append(ours, h)
			}
		}
		if len(ours) != 1 || !slices.Equal(ours[0].Args, want) {
			t.Errorf("%s hooks: %+v, want one %s %v", stage, hooks, s.hookBin, want)
			continue
		}
		// DESIGN §9: hooks run with a clean, explicit environment.
		if len(ours[0].Env) == 0 {
			t.Errorf("%s hook has no explicit env (it would inherit the runtime's)", stage)
		}
		for _, kv := range ours[0].Env {
			if strings.HasPrefix(kv, "LD_") || strings.HasPrefix(kv, "GREENBOOST_") {
				t.Errorf("%s hook env carries %q", stage, kv)
			}
		}
	}
}

func testImagePreload(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{env: []string{"LD_PRELOAD=" + imageLibPath}})
	c := s.newContainer(t, b, ll, true, cfg)
	runAll(t, c)
	s.checkGreenBoostProbe(t, c.output(), imageLibPath)
	if t.Failed() {
		t.Logf("container output:\n%s", c.output())
	}
}

func testOptOut(t *testing.T, s *suite, ll lowLevel, o bundleOpts) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), o)
	c := s.newContainer(t, b, ll, true, cfg)
	if _, err := c.create(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(b.dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, b.spec) {
		t.Errorf("an opted-out container's config.json changed on create:\nbefore: %s\nafter:  %s", b.spec, after)
	}
	if _, err := os.Stat(cfg.recordPath(c.id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an opted-out container has a record (stat: %v)", err)
	}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.delete(); err != nil {
		t.Fatal(err)
	}
	checkUntouchedProbe(t, c.output())
	if t.Failed() {
		t.Logf("container output:\n%s", c.output())
	}
}

func testBogusLimit(t *testing.T, s *suite, ll lowLevel, o bundleOpts, wantMsg string) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	o.args = []string{"/bin/true"}
	b := s.newBundle(t, filepath.Join(dir, "bundle"), o)
	c := s.newContainer(t, b, ll, true, cfg)
	stderr, err := c.create()
	if err == nil {
		t.Fatalf("create succeeded with a bogus limit; stderr: %q", stderr)
	}
	if !containsMessage(stderr, wantMsg) {
		t.Errorf("create's stderr lacks our message %q (the user cannot tell what is wrong):\n%s", wantMsg, stderr)
	}
	if _, err := os.Stat(cfg.recordPath(c.id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a container that failed to be created has a record (stat: %v)", err)
	}
	if c.exists() {
		t.Errorf("%s left container %s behind after the failed create", ll.name, c.id)
	}
}

// testReadOnlyBundle: a bundle the wrapper cannot write fails create with a
// message naming the way out, and its spec stays as it was.
func testReadOnlyBundle(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{args: []string{"/bin/true"}})
	if err := unix.Mount(b.dir, b.dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting the bundle: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(b.dir, unix.MNT_DETACH) })
	if err := unix.Mount("", b.dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("making the bundle read-only: %v", err)
	}
	c := s.newContainer(t, b, ll, true, cfg)
	// c.create keeps its output in the bundle, which is read-only here
	_, stderr, err := c.run("create", "--bundle", b.dir, c.id)
	if err == nil {
		t.Fatalf("create succeeded in a read-only bundle without GreenBoost's edits")
	}
	for _, want := range []string{"read-only file system", "must be writable", "GREENBOOST_DISABLE=1"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("create's stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// testPlainControl runs the probe with the low-level runtime alone: nothing
// of GreenBoost, and a /dev/greenboost node added without a device-cgroup
// rule is denied (EPERM), which makes the ENXIO check of the greenboost
// subtest meaningful.
func testPlainControl(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{})
	c := s.newContainer(t, b, ll, false, cfg)
	runAll(t, c)
	checkUntouchedProbe(t, c.output())

	b2 := s.newBundle(t, filepath.Join(dir, "bundle-node"), bundleOpts{})
	spec := b2.readSpec(t)
	mode := os.FileMode(0o666)
	spec.Linux.Devices = append(spec.Linux.Devices, specs.LinuxDevice{
		Path: "/dev/greenboost", Type: "c", Major: int64(s.devMajor), Minor: int64(s.devMinor), FileMode: &mode,
	})
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b2.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := s.newContainer(t, b2, ll, false, cfg)
	runAll(t, c2)
	p := parseProbe(c2.output())
	if got := p.get("DEVOPEN"); !strings.Contains(got, "Operation not permitted") {
		t.Errorf("a /dev/greenboost node without a device-cgroup rule opened with %q, want EPERM: the device cgroup is not enforced here, so the ENXIO checks prove nothing", got)
	}
}

// containsMessage reports whether out carries msg as written or as quoted in
// a logfmt/JSON log line (runc logs a hook's stderr that way: \" for ").
func containsMessage(out, msg string) bool {
	return strings.Contains(out, msg) || strings.Contains(out, strings.ReplaceAll(msg, `"`, `\"`))
}

// testEnforceWithoutModule: with [limits] enforce = true, set or left to its
// default, and a device that is no GreenBoost module (the stand-in), create
// fails (a container must never run without the budget it asked for), the
// user is told why in create's output, and neither a record nor a container
// is left.
func testEnforceWithoutModule(t *testing.T, s *suite, ll lowLevel) {
	for _, tc := range []struct{ name, line string }{
		{"set", "enforce = true"},
		{"default", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := s.testDir(t)
			cfg := s.writeConfig(t, dir, ll.path)
			editConfig(t, cfg.path, "enforce = false", tc.line)
			// No run.oci.hooks.stderr for crun: the message must reach the
			// user the way a plain engine runs the wrapper.
			b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{args: []string{"/bin/true"}})
			c := s.newContainer(t, b, ll, true, cfg)
			stderr, err := c.create()
			out := stderr + c.output()
			if err == nil {
				t.Errorf("create succeeded on %s with enforce = true and a device that is no GreenBoost module (%s); output: %q", ll.name, s.devPath, out)
			}
			want := "cannot enforce GreenBoost budgets for container " + c.id
			if !containsMessage(out, want) {
				t.Errorf("create's output does not say the budgets cannot be enforced (want %q):\n%s", want, out)
			}
			if recs := cfg.records(t); len(recs) != 0 {
				t.Errorf("records left in %s after the failed create: %v", cfg.stateDir, recs)
			}
			if c.exists() {
				t.Errorf("%s left container %s behind after the failed create", ll.name, c.id)
				if _, stderr, err := c.run("delete", "--force", c.id); err != nil {
					t.Errorf("delete --force %s: %v: %s", c.id, err, stderr)
				}
			}
		})
	}
}

// recordScript prints the hook records the container sees in the state dir,
// bind-mounted read-only at /gbstate: the prestart hook has run before the
// container's process starts.
const recordScript = `for f in /gbstate/containers/*.json; do
  [ -f "$f" ] && echo "GB:RECORD=$(tr -d '\n' < "$f")"
done
`

// testRunVerb: `greenboost-runtime run` (create, start and wait in one)
// takes the edit path as create does: the spec is edited, the container
// sees GreenBoost, the prestart hook has recorded it before it runs, and the
// poststop hook has removed the record by the time run returns.
func testRunVerb(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	if err := os.MkdirAll(filepath.Join(cfg.stateDir, "containers"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := s.newBundle(t, filepath.Join(dir, "bundle"), bundleOpts{
		args: []string{"/bin/sh", "-c", recordScript + probeScript},
		env:  []string{"GREENBOOST_RAM_LIMIT=2G"},
	})
	spec := b.readSpec(t)
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/gbstate", Type: "bind", Source: cfg.stateDir, Options: []string{"rbind", "ro"}})
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := s.newContainer(t, b, ll, true, cfg)

	stdout, stderr, err := c.run("run", "--bundle", b.dir, c.id)
	if err != nil {
		t.Fatalf("greenboost-runtime run on %s: %v\nstderr: %s\nstdout: %s", ll.name, err, stderr, stdout)
	}
	checkEditedSpec(t, s, cfg, b.readSpec(t))
	s.checkGreenBoostProbe(t, stdout, "")

	recs := parseProbe(stdout)["RECORD"]
	if len(recs) != 1 {
		t.Errorf("the container saw %d records in the state dir, want its own (the prestart hook runs before it): %q", len(recs), recs)
	} else {
		var rec record
		if err := json.Unmarshal([]byte(recs[0]), &rec); err != nil {
			t.Errorf("the record the container saw: %v: %s", err, recs[0])
		} else if rec.ID != c.id || rec.Bundle != b.dir || rec.Pid <= 0 || rec.Limits.RAM != 2<<30 {
			t.Errorf("the record the container saw: id %q bundle %q pid %d ram %d, want %q %q a pid and %d (GREENBOOST_RAM_LIMIT=2G)",
				rec.ID, rec.Bundle, rec.Pid, rec.Limits.RAM, c.id, b.dir, 2<<30)
		}
	}

	// run returns once the container has exited and the runtime deleted it,
	// poststop included.
	if recs := cfg.records(t); len(recs) != 0 {
		t.Errorf("records left after run returned (want poststop to have removed them): %v", recs)
	}
	if c.exists() {
		t.Errorf("container %s still exists after run returned", c.id)
		if err := c.delete(); err != nil {
			t.Error(err)
		}
		if recs := cfg.records(t); len(recs) != 0 {
			t.Errorf("records left after delete: %v", recs)
		}
	}
	if t.Failed() {
		t.Logf("run's stderr:\n%s", stderr)
	}
}

// logTime matches the time field of runc's logfmt lines, the one thing two
// runs of the same command print differently.
var logTime = regexp.MustCompile(`time="[^"]*"`)

// testUnknownVerb: a verb greenboost-runtime does not know goes to the
// low-level runtime as it is, so the user sees that runtime's own error for
// it (the same output and exit status as the runtime run directly, by its
// name as engines call it); so does a usage error of a verb it passes on,
// which runc prints with its argv[0].
func testUnknownVerb(t *testing.T, s *suite, ll lowLevel) {
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, ll.path)
	type result struct {
		stdout, stderr string
		code           int
	}
	runIt := func(bin string, args []string) result {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Args[0] = filepath.Base(bin)
		cmd.Env = append(os.Environ(), "GREENBOOST_CONFIG="+cfg.path)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
		}
		return result{o.String(), logTime.ReplaceAllString(e.String(), `time="T"`), code}
	}
	root := filepath.Join(dir, "root")
	for _, args := range [][]string{{"--root", root, "frobnicate", "x"}, {"--root", root, "delete"}} {
		direct := runIt(ll.path, args)
		wrapped := runIt(s.runtimeBin, args)
		if direct.code == 0 || direct.stdout+direct.stderr == "" {
			t.Fatalf("%s %s: exit %d, output %q: want it to reject the command (the comparison below would prove nothing)",
				ll.name, strings.Join(args, " "), direct.code, direct.stdout+direct.stderr)
		}
		if wrapped != direct {
			t.Errorf("greenboost-runtime %s: exit %d, stdout %q, stderr %q; want %s's own: exit %d, stdout %q, stderr %q",
				strings.Join(args, " "), wrapped.code, wrapped.stdout, wrapped.stderr, ll.name, direct.code, direct.stdout, direct.stderr)
		}
	}
}

// hostMemoryCgroup says where this host keeps the memory controller: the
// module's hierarchy for it (DESIGN.md §5: 1 for the cgroup v1 memory
// hierarchy, 0 for cgroup v2) and that hierarchy's mounts, read from this
// process's mountinfo (the tests and the hooks share the host's).
func hostMemoryCgroup(t *testing.T) (uint32, []cgroupMount) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var v1, v2 []cgroupMount
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, p := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(p) < 3 {
			continue
		}
		m := cgroupMount{root: unescapeMountinfo(f[3]), point: unescapeMountinfo(f[4])}
		switch {
		case p[0] == "cgroup" && slices.Contains(strings.Split(p[2], ","), "memory"):
			v1 = append(v1, m)
		case p[0] == "cgroup2":
			if ctl, err := os.ReadFile(filepath.Join(m.point, "cgroup.controllers")); err == nil && slices.Contains(strings.Fields(string(ctl)), "memory") {
				v2 = append(v2, m)
			}
		}
	}
	switch {
	case len(v1) > 0:
		return 1, v1
	case len(v2) > 0:
		return 0, v2
	}
	t.Fatalf("cannot tell this host's memory cgroup hierarchy: /proc/self/mountinfo has no cgroup v1 mount with the memory controller and no cgroup2 mount whose cgroup.controllers lists memory")
	return 0, nil
}

// cgroupMount is a mount of a cgroup hierarchy: its root in the hierarchy and
// its mount point.
type cgroupMount struct{ root, point string }

// procCgroupDir returns the host directory of process pid's cgroup in the
// hierarchy (1: v1 memory, 0: v2) mounted at mounts.
func procCgroupDir(t *testing.T, pid int, hierarchy uint32, mounts []cgroupMount) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("the cgroup of process %d: %v", pid, err)
	}
	path, found := "", false
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (hierarchy == 0 && parts[0] == "0" && parts[1] == "") ||
			(hierarchy == 1 && slices.Contains(strings.Split(parts[1], ","), "memory")) {
			path, found = parts[2], true
			break
		}
	}
	if !found {
		t.Fatalf("/proc/%d/cgroup has no entry for hierarchy %d:\n%s", pid, hierarchy, data)
	}
	best := -1
	for i, m := range mounts {
		if (m.root == "/" || path == m.root || strings.HasPrefix(path, m.root+"/")) && (best < 0 || len(m.root) > len(mounts[best].root)) {
			best = i
		}
	}
	if best < 0 {
		t.Fatalf("no mount of hierarchy %d (%+v) holds cgroup %s of process %d", hierarchy, mounts, path, pid)
	}
	m := mounts[best]
	if m.root == "/" {
		return filepath.Join(m.point, path)
	}
	return filepath.Join(m.point, strings.TrimPrefix(path, m.root))
}

// checkRecordCgroup checks that the record's cgroup is the one of the
// container's process pid, in the hierarchy this host keeps memory in: its
// directory on the host and that directory's inode number.
func checkRecordCgroup(t *testing.T, rec *record, pid int) {
	t.Helper()
	hierarchy, mounts := hostMemoryCgroup(t)
	if rec.Pid != pid {
		t.Errorf("record pid %d, want the container's %d (its pid file)", rec.Pid, pid)
	}
	dir := procCgroupDir(t, pid, hierarchy, mounts)
	if own := procCgroupDir(t, os.Getpid(), hierarchy, mounts); own == dir {
		t.Fatalf("the container's cgroup %s is the test's own: the checks below could not tell the container's cgroup from its runtime's", dir)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatalf("the container's cgroup dir: %v", err)
	}
	if rec.Cgroup.Hierarchy != hierarchy || rec.Cgroup.Path != dir || rec.Cgroup.ID != st.Ino {
		t.Errorf("record cgroup: hierarchy %d path %q id %d; want the container's (pid %d): hierarchy %d (memory on this host) path %q id %d (the directory's inode)",
			rec.Cgroup.Hierarchy, rec.Cgroup.Path, rec.Cgroup.ID, pid, hierarchy, dir, st.Ino)
	}
}
