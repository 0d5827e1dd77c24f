//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
)

// TestPodman drives Debian's podman 4.3 through the CDI path: the spec
// written by `greenboost-ctk cdi generate` gives a container GreenBoost with
// `podman run --device greenboost.io/vram=ext`, under both runc and crun.
//
// Podman 4.3 does not know containers.conf's cdi_spec_dirs ("Failed to decode
// the keys engine.cdi_spec_dirs"): it reads specs only from /etc/cdi and
// /var/run/cdi. So this test writes the spec to the real
// /var/run/cdi/greenboost.io-vram.yaml and puts back whatever was there
// before (or removes it) when it ends. Everything else of podman (storage,
// run root, libpod tmp dir, network config, containers.conf) lives in the
// test's temp directory.
func TestPodman(t *testing.T) {
	s := getSuite(t)
	p := newPodman(t, s)

	t.Run("spec", func(t *testing.T) {
		// The spec podman uses passes our own validation (CDI library +
		// live device numbers) ...
		out, err := p.ctk(p.cfg.path, "cdi", "validate", podmanSpecPath)
		if err != nil {
			t.Errorf("greenboost-ctk cdi validate %s: %v\n%s", podmanSpecPath, err, out)
		} else if !strings.Contains(out, "valid") {
			t.Errorf("greenboost-ctk cdi validate %s printed no verdict:\n%s", podmanSpecPath, out)
		}
		// ... and the CDI library's, called here directly.
		spec, err := cdiapi.ReadSpec(podmanSpecPath, 0)
		if err != nil {
			t.Fatalf("the CDI library rejects the generated spec: %v", err)
		}
		if spec.Kind != "greenboost.io/vram" {
			t.Errorf("spec kind %q, want greenboost.io/vram", spec.Kind)
		}
		checkSpecDevice(t, s, spec, "ext", "")
		checkSpecDevice(t, s, spec, "small", "small")

		// The same spec as JSON on stdout is accepted by the library too.
		out, err = p.ctk(p.cfg.path, "cdi", "generate", "--output", "-", "--format", "json")
		if err != nil {
			t.Fatalf("greenboost-ctk cdi generate --output - --format json: %v\n%s", err, out)
		}
		jsonSpec := filepath.Join(s.testDir(t), "greenboost.io-vram.json")
		if err := os.WriteFile(jsonSpec, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		if !json.Valid([]byte(out)) {
			t.Errorf("cdi generate --format json printed no JSON:\n%s", out)
		} else if spec, err := cdiapi.ReadSpec(jsonSpec, 0); err != nil {
			t.Errorf("the CDI library rejects the JSON spec: %v", err)
		} else {
			checkSpecDevice(t, s, spec, "ext", "")
		}

		// cdi list sees both devices in the default spec dirs (/etc/cdi,
		// /var/run/cdi), with no error about our spec.
		// It exits 1 for an error in any spec there, another vendor's too.
		out, err = p.ctk(p.cfg.path, "cdi", "list", "--json")
		var list struct {
			Devices []string            `json:"devices"`
			Errors  map[string][]string `json:"errors"`
		}
		if jerr := json.Unmarshal([]byte(lastLine(out)), &list); jerr != nil {
			t.Fatalf("cdi list --json output (exit: %v): %v\n%s", err, jerr, out)
		}
		if (err != nil) != (len(list.Errors) != 0) {
			t.Errorf("cdi list --json exit %v with errors %v", err, list.Errors)
		}
		for _, want := range []string{podmanDeviceExt, podmanDeviceSmall} {
			if !containsString(list.Devices, want) {
				t.Errorf("cdi list does not show %s: %v", want, list.Devices)
			}
		}
		if errs := list.Errors[podmanSpecPath]; len(errs) != 0 {
			t.Errorf("cdi list reports errors in %s: %v", podmanSpecPath, errs)
		}
		out, err = p.ctk(p.cfg.path, "cdi", "list")
		if !containsLine(out, podmanDeviceExt) {
			t.Errorf("greenboost-ctk cdi list (plain) does not list %s:\n%s", podmanDeviceExt, out)
		}
		if (err != nil) != (len(list.Errors) != 0) {
			t.Errorf("greenboost-ctk cdi list exit %v, --json reports errors %v:\n%s", err, list.Errors, out)
		}
	})

	for _, ll := range s.lowLevels() {
		t.Run(ll.name, func(t *testing.T) {
			if ll.name == "crun" {
				prepareCrun(t)
			}
			testPodmanRuntime(t, s, p, ll)
		})
	}

	t.Run("stale-spec", func(t *testing.T) { testCDIStaleSpec(t, s, p) })
}

// execEnvProbe prints the GreenBoost variables an exec'd process sees.
var execEnvProbe = []string{"/bin/sh", "-c", `echo "LD_PRELOAD=$LD_PRELOAD GREENBOOST_ACTIVE=$GREENBOOST_ACTIVE"`}

func testPodmanRuntime(t *testing.T, s *suite, p *podman, ll lowLevel) {
	run := func(args ...string) []string {
		return append([]string{"run", "--network", "none", "--runtime", ll.path}, args...)
	}

	t.Run("ext", func(t *testing.T) {
		cidFile := filepath.Join(s.testDir(t), "cid")
		out := p.mustRun(t, run("--rm", "--cidfile", cidFile, "--device", podmanDeviceExt, podmanImage, "/bin/sh", "-c", probeScript)...)
		s.checkGreenBoostProbe(t, out, "")
		if t.Failed() {
			t.Logf("container output:\n%s", out)
		}
		p.cfg.waitRecordGone(t, readCID(t, cidFile), "podman run --rm")
	})

	t.Run("wrapper-runtime", func(t *testing.T) {
		// podman --runtime greenboost-runtime. Podman gives the runtime an
		// environment of its own (its delete gets none, not even PATH), so
		// the config comes from a launcher here, as /etc/greenboost/config.toml
		// would, and the wrapper finds the runtime by name without a PATH.
		dir := s.testDir(t)
		cfg := s.writeConfig(t, filepath.Join(dir, "gb"), ll.name)
		launcher := filepath.Join(dir, "greenboost-runtime")
		script := fmt.Sprintf("#!/bin/sh\nGREENBOOST_CONFIG=%s exec %s \"$@\"\n", cfg.path, s.runtimeBin)
		if err := os.WriteFile(launcher, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		runVia := func(args ...string) string {
			return p.mustRun(t, append([]string{"run", "--network", "none", "--runtime", launcher}, args...)...)
		}
		cidFile := filepath.Join(dir, "cid")
		out := runVia("--rm", "--cidfile", cidFile, podmanImage, "/bin/sh", "-c", probeScript)
		s.checkGreenBoostProbe(t, out, "")
		id := readCID(t, cidFile)
		cfg.waitRecordGone(t, id, "podman run --rm")
		if stdout, _, err := runTool(nil, ll.path, "state", id); err == nil {
			t.Errorf("%s still has container %s after podman run --rm: %s", ll.name, id, stdout)
		}

		// podman exec goes through the wrapper too, which gives the process
		// the container's GreenBoost env.
		id = strings.TrimSpace(lastLine(runVia("-d", podmanImage, "sleep", "120")))
		want := "LD_PRELOAD=" + libContainerPath + " GREENBOOST_ACTIVE=1"
		if got := strings.TrimSpace(lastLine(p.mustRun(t, append([]string{"exec", id}, execEnvProbe...)...))); got != want {
			t.Errorf("podman exec sees %q, want %q", got, want)
		}
		p.mustRun(t, "rm", "-f", "-t", "0", id)
		cfg.waitRecordGone(t, id, "podman rm -f")
	})

	t.Run("image-ld-preload-replaced", func(t *testing.T) {
		// An engine applying a CDI env edit replaces a variable of the same
		// name, so on the CDI path LD_PRELOAD is ours alone (DESIGN.md §3
		// CDI note; the wrapper path merges instead).
		out := p.mustRun(t, run("--rm", "--device", podmanDeviceExt, podmanPreloadImage, "/bin/sh", "-c", probeScript)...)
		s.checkGreenBoostProbe(t, out, "")
		if ms := parseProbe(out).markers("image"); len(ms) != 0 {
			t.Errorf("the image's own preload library ran although the CDI env edit replaces LD_PRELOAD: %v", ms)
		}
		if t.Failed() {
			t.Logf("container output:\n%s", out)
		}
	})

	t.Run("no-device-untouched", func(t *testing.T) {
		// The control: the same run without --device gets nothing, so what
		// the ext subtest saw came from the CDI spec.
		out := p.mustRun(t, run("--rm", podmanImage, "/bin/sh", "-c", probeScript)...)
		checkUntouchedProbe(t, out)
	})

	t.Run("exec-env", func(t *testing.T) {
		// podman exec builds its process from the container's own env, which
		// the CDI edits never entered: only what `run -e` gave reaches it, as
		// the README's CDI section says.
		for _, tt := range []struct {
			name string
			env  []string
			want string
		}{
			{"plain", nil, "LD_PRELOAD= GREENBOOST_ACTIVE="},
			{"given at run", []string{"-e", "LD_PRELOAD=" + libContainerPath, "-e", "GREENBOOST_ACTIVE=1"},
				"LD_PRELOAD=" + libContainerPath + " GREENBOOST_ACTIVE=1"},
		} {
			args := append(append([]string{"-d", "--device", podmanDeviceExt}, tt.env...), podmanImage, "sleep", "120")
			id := strings.TrimSpace(lastLine(p.mustRun(t, run(args...)...)))
			t.Cleanup(func() { _, _, _ = p.podman("rm", "-f", "-t", "0", id) })
			if got := strings.TrimSpace(lastLine(p.mustRun(t, append([]string{"exec", id}, execEnvProbe...)...))); got != tt.want {
				t.Errorf("%s: podman exec sees %q, want %q", tt.name, got, tt.want)
			}
		}
	})

	t.Run("record-lifecycle-annotation", func(t *testing.T) {
		// The annotation beats the environment (DESIGN.md §4).
		p.checkRecordLifecycle(t, 1<<30, run("-d", "--device", podmanDeviceExt,
			"--annotation", "greenboost.io/ram-limit=1G", "-e", "GREENBOOST_RAM_LIMIT=2G",
			podmanImage, "sleep", "120")...)
	})

	t.Run("record-lifecycle-default", func(t *testing.T) {
		// No request at all: the config's default, unlimited (0).
		p.checkRecordLifecycle(t, 0, run("-d", "--device", podmanDeviceExt, podmanImage, "sleep", "120")...)
	})

	t.Run("profile-small", func(t *testing.T) {
		p.checkRecordLifecycle(t, 512<<20, run("-d", "--device", podmanDeviceSmall, podmanImage, "sleep", "120")...)
	})

	t.Run("bogus-ram-limit", func(t *testing.T) {
		logBefore := fileSize(p.cfg.logFile)
		recsBefore := p.cfg.records(t)
		cidFile := filepath.Join(s.testDir(t), "cid")
		stdout, stderr, err := p.podman(run("--rm", "--cidfile", cidFile, "--device", podmanDeviceExt,
			"--annotation", "greenboost.io/ram-limit=bogus", podmanImage, "true")...)
		if err == nil {
			t.Fatalf("podman run succeeded with greenboost.io/ram-limit=bogus; stdout %q stderr %q", stdout, stderr)
		}
		t.Logf("podman run failed as it should: %v: %s", err, strings.TrimSpace(stderr))
		want := `invalid greenboost.io/ram-limit "bogus": expected`
		log := readFrom(p.cfg.logFile, logBefore)
		switch ll.name {
		case "runc":
			// runc puts a failing hook's stderr into its error, which podman shows.
			if !containsMessage(stderr, want) {
				t.Errorf("podman's error output lacks our message %q:\n%s", want, stderr)
			}
		case "crun":
			// crun drops a hook's stderr: podman only says the hook failed;
			// our message is in the toolkit's log file.
			if !strings.Contains(stderr, "error executing hook") || !strings.Contains(stderr, s.hookBin) {
				t.Errorf("podman's error output does not say that %s failed:\n%s", s.hookBin, stderr)
			}
		}
		if !containsMessage(log, want) {
			t.Errorf("the toolkit log %s lacks our message %q; what the run added:\n%s", p.cfg.logFile, want, log)
		}
		if recs := p.cfg.records(t); len(recs) != len(recsBefore) {
			t.Errorf("a failed podman run left a record: before %v, after %v", recsBefore, recs)
		}
		if id, err := os.ReadFile(cidFile); err == nil {
			if _, err := os.Stat(p.cfg.recordPath(strings.TrimSpace(string(id)))); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the failed container %s has a record (stat: %v)", id, err)
			}
		}
	})
}

// checkRecordLifecycle starts a detached container with args (podman run
// -d ...), checks the hook's record while it runs, removes the container and
// checks the record is gone.
func (p *podman) checkRecordLifecycle(t *testing.T, wantRAM uint64, args ...string) {
	t.Helper()
	id := strings.TrimSpace(lastLine(p.mustRun(t, args...)))
	if len(id) != 64 {
		t.Fatalf("podman run -d printed %q, want a container id", id)
	}
	t.Cleanup(func() { _, _, _ = p.podman("rm", "-f", "-t", "0", id) })
	rec, err := p.cfg.readRecord(id)
	if err != nil {
		t.Fatalf("record of running container %s: %v (did the prestart hook from the CDI spec run?)", id, err)
	}
	if rec.ID != id || rec.Pid <= 0 {
		t.Errorf("record: %+v, want id %s and the container's pid", rec, id)
	}
	if rec.Enforced {
		t.Errorf("record says enforced with the stand-in device and enforce=false: %+v", rec)
	}
	if rec.Limits.RAM != wantRAM {
		t.Errorf("record ram limit %d, want %d", rec.Limits.RAM, wantRAM)
	}
	// The record's pid is the container's init (sleep), seen by podman too.
	if out, stderr, err := p.podman("inspect", "--format", "{{.State.Pid}}", id); err != nil {
		t.Errorf("podman inspect %s: %v: %s", id, err, stderr)
	} else if strings.TrimSpace(out) != fmt.Sprint(rec.Pid) {
		t.Errorf("record pid %d, podman says the container's pid is %s", rec.Pid, strings.TrimSpace(out))
	}
	if _, stderr, err := p.podman("rm", "-f", "-t", "0", id); err != nil {
		t.Fatalf("podman rm -f: %v: %s", err, stderr)
	}
	p.cfg.waitRecordGone(t, id, "podman rm -f")
}

// checkSpecDevice checks the edits of one device of the generated spec as
// the CDI library parsed them: our node with the stand-in's numbers, the
// library mount and both hooks with our config (and the profile).
func checkSpecDevice(t *testing.T, s *suite, spec *cdiapi.Spec, name, profile string) {
	t.Helper()
	for _, d := range spec.Devices {
		if d.Name != name {
			continue
		}
		e := d.ContainerEdits
		if len(e.DeviceNodes) != 1 || e.DeviceNodes[0].Path != "/dev/greenboost" ||
			e.DeviceNodes[0].Major != int64(s.devMajor) || e.DeviceNodes[0].Minor != int64(s.devMinor) {
			t.Errorf("device %s: device nodes %+v, want /dev/greenboost %d:%d", name, e.DeviceNodes, s.devMajor, s.devMinor)
		}
		if len(e.Mounts) != 1 || e.Mounts[0].HostPath != s.fixtureLib || e.Mounts[0].ContainerPath != libContainerPath {
			t.Errorf("device %s: mounts %+v, want %s -> %s", name, e.Mounts, s.fixtureLib, libContainerPath)
		}
		stages := map[string]bool{}
		for _, h := range e.Hooks {
			stages[h.HookName] = true
			args := strings.Join(h.Args, " ")
			if h.Path != s.hookBin || !strings.Contains(args, "--config ") {
				t.Errorf("device %s: hook %+v, want %s --config ...", name, h, s.hookBin)
			}
			if profile != "" && !strings.Contains(args, "--profile "+profile) {
				t.Errorf("device %s: hook args %q do not carry profile %s", name, args, profile)
			}
		}
		if !stages["prestart"] || !stages["poststop"] {
			t.Errorf("device %s: hooks %v, want prestart and poststop", name, stages)
		}
		return
	}
	t.Errorf("the spec has no device %q", name)
}

// testCDIStaleSpec: a spec generated for a node is valid; once the node is
// re-made with another minor (as after a module reload), `cdi validate`
// reports it stale and fails. The test uses its own node so the shared
// stand-in stays as it is.
func testCDIStaleSpec(t *testing.T, s *suite, p *podman) {
	dir := s.testDir(t)
	node := filepath.Join(dir, "dev", "greenboost")
	if err := os.MkdirAll(filepath.Dir(node), 0o755); err != nil {
		t.Fatal(err)
	}
	mknod := func(minor uint32) {
		t.Helper()
		if err := os.Remove(node); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(s.devMajor, minor))); err != nil {
			t.Fatalf("mknod %s: %v", node, err)
		}
	}
	mknod(standInMinor)
	cfg := s.writeConfig(t, filepath.Join(dir, "gb"), s.runc)
	replaceInFile(t, cfg.path, fmt.Sprintf("host-path = %q", s.devPath), fmt.Sprintf("host-path = %q", node))
	specDir := filepath.Join(dir, "cdi")
	specPath := filepath.Join(specDir, "greenboost.io-vram.yaml")
	if out, err := p.ctk(cfg.path, "cdi", "generate", "--output", specPath); err != nil {
		t.Fatalf("greenboost-ctk cdi generate --output %s: %v\n%s", specPath, err, out)
	}
	if fi, err := os.Stat(specPath); err != nil {
		t.Fatalf("cdi generate wrote no %s: %v", specPath, err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("spec file %s has mode %v, want 0644", specPath, fi.Mode().Perm())
	}
	if out, err := p.ctk(cfg.path, "cdi", "validate", specPath); err != nil {
		t.Fatalf("cdi validate of a fresh spec: %v\n%s", err, out)
	}
	out, err := p.ctk(cfg.path, "cdi", "list", "--spec-dir", specDir)
	if err != nil || !containsLine(out, podmanDeviceExt) {
		t.Errorf("cdi list --spec-dir %s does not list %s (err %v):\n%s", specDir, podmanDeviceExt, err, out)
	}

	mknod(standInMinor + 1)
	out, err = p.ctk(cfg.path, "cdi", "validate", specPath)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("cdi validate of a spec whose node changed minor %d -> %d: err %v, want exit status 1\n%s", standInMinor, standInMinor+1, err, out)
	}
	if !strings.Contains(out, "stale CDI spec") {
		t.Errorf("cdi validate does not say the spec is stale:\n%s", out)
	}
	if want := fmt.Sprintf("%d:%d", s.devMajor, standInMinor+1); !strings.Contains(out, want) {
		t.Errorf("cdi validate does not name the live numbers %s:\n%s", want, out)
	}

	// Without the node, generate fails ([kmod] load = "never") rather than
	// write a spec without device numbers, and leaves the old spec alone.
	before, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(node); err != nil {
		t.Fatal(err)
	}
	out, err = p.ctk(cfg.path, "cdi", "generate", "--output", specPath)
	if err == nil {
		t.Errorf("cdi generate succeeded without the device node %s:\n%s", node, out)
	} else if !strings.Contains(out, node) {
		t.Errorf("cdi generate's error does not name the missing device %s:\n%s", node, out)
	}
	if after, _ := os.ReadFile(specPath); !bytes.Equal(before, after) {
		t.Errorf("a failed cdi generate changed %s", specPath)
	}
	if out, err := p.ctk(cfg.path, "cdi", "validate", specPath); err == nil {
		t.Errorf("cdi validate passed a spec whose device node is gone:\n%s", out)
	}

	// Regenerating fixes it.
	mknod(standInMinor + 1)
	if out, err := p.ctk(cfg.path, "cdi", "generate", "--output", specPath); err != nil {
		t.Fatalf("cdi generate after the change: %v\n%s", err, out)
	}
	if out, err := p.ctk(cfg.path, "cdi", "validate", specPath); err != nil {
		t.Errorf("cdi validate of the regenerated spec: %v\n%s", err, out)
	}
}
