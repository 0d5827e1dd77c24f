//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
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
			t.Run("control-plain-runtime", func(t *testing.T) { testPlainControl(t, s, ll) })
		})
	}
}

// runAll does create, start, wait and delete, failing the test on any error.
func runAll(t *testing.T, c *container) {
	t.Helper()
	if _, err := c.create(); err != nil {
		t.Fatal(err)
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
	if rec.Cgroup.Path == "" || rec.Cgroup.ID == 0 {
		t.Errorf("record has no cgroup: %+v", rec.Cgroup)
	} else if _, err := os.Stat(rec.Cgroup.Path); err != nil {
		t.Errorf("record's cgroup dir: %v", err)
	}

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
