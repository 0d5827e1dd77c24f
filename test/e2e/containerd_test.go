//go:build e2e

package e2e

// containerd and nerdctl (DESIGN.md §6, issue 3 items 3–4): Debian's
// containerd 1.6 started by each test with its own root, state and socket;
// containerd-shim-greenboost-v2 (bin/) as runtime io.containerd.greenboost.v2;
// ctr, nerdctl v1.7.7 (built from the Go module proxy) and a containerd v1.7
// Go client doing nerdctl's client-side CDI injection.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// TestContainerdShimVersion: the shim answers --version (and containerd's
// -v) with our version, not containerd's, and exits 0; --help lists them.
func TestContainerdShimVersion(t *testing.T) {
	s := getSuite(t)
	shimBin := ctrdRequire(t, s, debianContainerd)
	for _, flag := range []string{"--version", "-v"} {
		out, err := exec.Command(shimBin, flag).CombinedOutput()
		if err != nil {
			t.Errorf("%s %s: %v\n%s", ctrdShimBinary, flag, err, out)
			continue
		}
		if !strings.HasPrefix(string(out), ctrdShimBinary+" version ") || !strings.Contains(string(out), "\ncommit: ") {
			t.Errorf("%s %s printed %q, want %q version ... and commit: ...", ctrdShimBinary, flag, out, ctrdShimBinary)
		}
	}
	// --help lists what the shim answers before containerd's library runs.
	help, err := exec.Command(shimBin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "-info") || !strings.Contains(string(help), "--version") || !strings.Contains(string(help), "-address") {
		t.Errorf("%s --help: %v\n%s\nwant containerd's flags, -info and --version", ctrdShimBinary, err, help)
	}
}

// TestContainerdCtrRun: `ctr run --rm --runtime io.containerd.greenboost.v2`
// (no runc binary named: the shim must pick greenboost-runtime itself) gives
// the container the device, the read-only library, LD_PRELOAD that really
// loads it, GREENBOOST_ACTIVE; the hook's record exists while it runs and is
// gone after.
func TestContainerdCtrRun(t *testing.T) {
	s := getSuite(t)
	forEachContainerd(t, func(t *testing.T, rel ctrdRelease) {
		cfg := s.writeConfig(t, s.testDir(t), s.runc)
		ctrRun(t, s, startContainerdRelease(t, s, cfg, rel))
	})
}

// ctrRun is TestContainerdCtrRun on containerd d.
func ctrRun(t *testing.T, s *suite, d *ctrd) {
	d.importImage(t)

	const id = "gb-ctr-run"
	ctl := d.ctlDir(t, id)
	d.track(id)
	var out lockedBuffer
	cmd := exec.Command(d.rel.ctr, "--address", d.sock, "--namespace", ctrdNamespace,
		"run", "--rm", "--runtime", ctrdRuntimeType,
		"--annotation", "greenboost.io/ram-limit=1G",
		"--mount", "type=bind,src="+ctl+",dst=/gbctl,options=rbind:rw",
		ctrdImage, id, "/bin/sh", "-c", probeScript+ctrdWaitScript)
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = &out, &out
	ctrdRunWithRecord(t, d.cfg, cmd, &out, ctl, id, 1<<30)

	s.checkGreenBoostProbe(t, out.String(), "")
	if ls := d.mustCtr(t, "containers", "ls", "-q"); strings.Contains(ls, id) {
		t.Errorf("ctr run --rm left the container behind: %s", ls)
	}

	// With --runtime-config-path, ctr sends runtimeoptions.Options with a
	// ConfigPath, as containerd's CRI does for a runtime type other than
	// runc's whose options table has one: that file is the container's
	// GreenBoost config (here: its own state dir and a 2G default budget),
	// not containerd's GREENBOOST_CONFIG.
	other := s.writeConfig(t, filepath.Join(s.testDir(t), "other"), s.runc)
	editConfig(t, other.path, "[limits]\n", "[limits]\nram = \"2G\"\n")
	const id2 = "gb-ctr-configpath"
	ctl2 := d.ctlDir(t, id2)
	d.track(id2)
	var out2 lockedBuffer
	cmd = exec.Command(d.rel.ctr, "--address", d.sock, "--namespace", ctrdNamespace,
		"run", "--rm", "--runtime", ctrdRuntimeType, "--runtime-config-path", other.path,
		"--mount", "type=bind,src="+ctl2+",dst=/gbctl,options=rbind:rw",
		ctrdImage, id2, "/bin/sh", "-c", probeScript+ctrdWaitScript)
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = &out2, &out2
	ctrdRunWithRecord(t, other, cmd, &out2, ctl2, id2, 2<<30)
	s.checkGreenBoostProbe(t, out2.String(), "")
	if _, err := os.Stat(d.cfg.recordPath(id2)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a record of %s under containerd's GREENBOOST_CONFIG state dir (stat: %v): the ConfigPath was not used", id2, err)
	}

	// A ConfigPath that names no file fails the create with the option named.
	const id3 = "gb-ctr-badconfigpath"
	d.track(id3)
	stdout, stderr, err := d.ctr("run", "--rm", "--runtime", ctrdRuntimeType, "--runtime-config-path", filepath.Join(s.testDir(t), "missing.toml"),
		ctrdImage, id3, "/bin/true")
	if err == nil || !strings.Contains(stdout+stderr, "runtime option ConfigPath") {
		t.Errorf("ctr run with a missing ConfigPath: %v\n%s%s; want a failure naming the runtime option ConfigPath", err, stdout, stderr)
	}

	// ctr 1.x sends --no-pivot (and --uidmap's owner) to a runtime not
	// named io.containerd.runc* as the v1 shim's CreateOptions.
	const id4 = "gb-ctr-nopivot"
	d.track(id4)
	stdout, stderr, err = d.ctr("run", "--rm", "--no-pivot", "--runtime", ctrdRuntimeType, ctrdImage, id4, "/bin/sh", "-c", "echo LD_PRELOAD=$LD_PRELOAD")
	if err != nil || !strings.Contains(stdout, "LD_PRELOAD="+libContainerPath) {
		t.Errorf("ctr run --no-pivot: %v\n%s%s; want the container run with GreenBoost", err, stdout, stderr)
	}
}

// ctrdRunWithRecord starts cmd (a foreground run of the probe plus
// ctrdWaitScript), checks the hook's record while the container waits, lets
// it finish and checks the record is gone.
func ctrdRunWithRecord(t *testing.T, cfg gbConfig, cmd *exec.Cmd, out *lockedBuffer, ctl, id string, ram uint64) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var exitErr error
	exited := false
	probed := waitFor(90*time.Second, func() bool {
		select {
		case exitErr = <-done:
			exited = true
			return true
		default:
		}
		return strings.Contains(out.String(), "GB:DONE=1")
	})
	if exited || !probed {
		if !exited {
			_ = cmd.Process.Kill()
			exitErr = <-done
		}
		t.Fatalf("%s run: the container did not run the probe (exit: %v); output:\n%s", filepath.Base(cmd.Args[0]), exitErr, out.String())
	}
	rec, err := cfg.readRecord(id)
	if err != nil {
		t.Errorf("no GreenBoost record while the container runs: %v", err)
	} else if rec.ID != id || rec.Pid <= 0 || rec.Bundle == "" || rec.Limits.RAM != ram {
		t.Errorf("record of the running container: %+v, want id %s, its pid and bundle, RAM limit %d", rec, id, ram)
	}
	if err := os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v; output:\n%s", cmd.Args[0], err, out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not finish within 60s after the stop file; output:\n%s", cmd.Args[0], out.String())
	}
	if !strings.Contains(out.String(), "GB:STOPPED=1") {
		t.Errorf("the container did not see the stop file; output:\n%s", out.String())
	}
	if gone, err := recordGone(cfg, id); !gone {
		t.Errorf("the GreenBoost record of %s is still there after the container was removed (%v)", id, err)
	}
}

// TestContainerdDeleteAfterFailedPoststop: where the poststop hook fails
// (so runc leaves the record), deleting the task through the greenboost shim
// still removes the record. The control case runs the same container through
// containerd's own runc shim with greenboost-runtime as its binary: there the
// record stays, which proves the hook really failed and that it is the
// greenboost shim's delete path that cleaned up.
//
// How the hook is made to fail: [hook] path names a wrapper script that
// execs bin/greenboost-hook for prestart and exits 1 for poststop (noting
// that it did in a file), so the record is written but never released by
// the hook. runc runs poststop in `runc delete`, reports the failure and
// removes its state, so `ctr task delete` may fail once; the test then
// retries it (which succeeds) and removes the container.
func TestContainerdDeleteAfterFailedPoststop(t *testing.T) {
	s := getSuite(t)
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, s.runc)
	failMarker := filepath.Join(dir, "poststop-failed")
	wrapper := filepath.Join(dir, "failing-poststop-hook")
	script := fmt.Sprintf(`#!/bin/sh
# greenboost-hook, except that poststop fails (test/e2e/containerd_test.go)
for a in "$@"; do stage=$a; done
if [ "$stage" = poststop ]; then
	echo poststop >> %q
	echo "greenboost-e2e: poststop made to fail" >&2
	exit 1
fi
exec %q "$@"
`, failMarker, s.hookBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfg.path)
	if err != nil {
		t.Fatal(err)
	}
	hookLine := fmt.Sprintf("path = %q", s.hookBin)
	if !strings.Contains(string(data), hookLine) {
		t.Fatalf("the suite's config has no line %s to replace:\n%s", hookLine, data)
	}
	data = []byte(strings.Replace(string(data), hookLine, fmt.Sprintf("path = %q", wrapper), 1))
	if err := os.WriteFile(cfg.path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	forEachContainerd(t, func(t *testing.T, rel ctrdRelease) {
		d := startContainerdRelease(t, s, cfg, rel)
		d.importImage(t)
		deleteAfterFailedPoststop(t, s, d, cfg, failMarker)
	})
}

// deleteAfterFailedPoststop is TestContainerdDeleteAfterFailedPoststop on
// containerd d.
func deleteAfterFailedPoststop(t *testing.T, s *suite, d *ctrd, cfg gbConfig, failMarker string) {
	type shimCase struct {
		name       string
		runtime    []string
		recordGone bool
	}
	shims := []shimCase{
		{"greenboost shim", []string{"--runtime", ctrdRuntimeType}, true},
		{"control: runc shim running greenboost-runtime",
			[]string{"--runtime", "io.containerd.runc.v2", "--runc-binary", s.runtimeBin}, false},
	}
	t.Run("task delete", func(t *testing.T) {
		for i, sc := range shims {
			t.Run(sc.name, func(t *testing.T) {
				id := fmt.Sprintf("gb-failpost-del-%d", i)
				ctrdStartSleeper(t, d, cfg, failMarker, id, sc.runtime)
				d.mustCtr(t, "task", "kill", "-s", "KILL", id)
				if !waitFor(30*time.Second, func() bool { return d.taskStatus(id) == "STOPPED" }) {
					t.Fatalf("task %s did not stop after SIGKILL", id)
				}
				// The record of another container that exited without its
				// poststop: the greenboost shim's delete also collects it.
				stray := fmt.Sprintf("gb-stray-%d", i)
				if err := os.WriteFile(cfg.recordPath(stray), []byte(fmt.Sprintf(`{"id":%q,"bundle":"/nonexistent","pid":%d}`, stray, 1<<30)), 0o644); err != nil {
					t.Fatal(err)
				}
				_, errOut, delErr := d.ctr("task", "delete", id)
				t.Logf("ctr task delete %s: err=%v %s", id, delErr, strings.TrimSpace(errOut))
				ctrdCheckFailedPoststop(t, failMarker)
				if strayGone, err := recordGone(cfg, stray); err != nil {
					t.Fatal(err)
				} else if strayGone != sc.recordGone {
					t.Errorf("the dead container's record %s gone after the delete: %v, want %v (the greenboost shim collects after its release)", stray, strayGone, sc.recordGone)
				}
				_ = os.Remove(cfg.recordPath(stray))
				gone, err := recordGone(cfg, id)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case sc.recordGone && !gone:
					t.Errorf("the record of %s is still there after `ctr task delete` although the poststop hook failed: the shim's delete did not release it", id)
				case sc.recordGone && !d.logged("greenboost: releasing the container's budget and record", "id="+id, `on="task delete"`):
					// containerd 1.6 also runs `shim delete` (the other
					// release path) after every shim exit; make sure the task
					// API's Delete did its part.
					t.Errorf("the shim's task Delete did not release %s (no such line in the containerd log)", id)
				case !sc.recordGone && gone:
					t.Errorf("the record of %s is gone with containerd's runc shim: the failing hook did not keep it, so the greenboost case proves nothing", id)
				}
				if delErr != nil {
					if _, errOut, err := d.ctr("task", "delete", id); err != nil && !strings.Contains(errOut, "not found") {
						t.Errorf("second ctr task delete %s: %v %s", id, err, errOut)
					}
				}
				d.mustCtr(t, "containers", "delete", id)
				_ = os.Remove(cfg.recordPath(id))
			})
		}
	})
	// A crashed shim: containerd cleans up with `<shim> delete`, which
	// force-deletes the container (poststop fails again) and, for the
	// greenboost shim, releases the record.
	t.Run("shim killed", func(t *testing.T) {
		for i, sc := range shims {
			t.Run(sc.name, func(t *testing.T) {
				id := fmt.Sprintf("gb-failpost-crash-%d", i)
				ctrdStartSleeper(t, d, cfg, failMarker, id, sc.runtime)
				pids := d.shimPids(id)
				if len(pids) != 1 {
					t.Fatalf("found %d shim processes for %s (%v), want 1", len(pids), id, pids)
				}
				if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				// A killed shim cannot remove its socket.
				defer os.Remove(ctrdShimSocket(d.sock, id))
				// containerd runs `<shim> delete` in the bundle, then removes it.
				bundle := filepath.Join(d.dir, "state", "io.containerd.runtime.v2.task", ctrdNamespace, id)
				if !waitFor(30*time.Second, func() bool { _, err := os.Stat(bundle); return os.IsNotExist(err) }) {
					t.Fatalf("containerd did not clean up %s within 30s after the shim was killed", bundle)
				}
				ctrdCheckFailedPoststop(t, failMarker)
				gone, err := recordGone(cfg, id)
				if err != nil {
					t.Fatal(err)
				}
				if sc.recordGone && !gone {
					t.Errorf("the record of %s is still there after its shim was killed and containerd cleaned up: `%s delete` did not release it", id, ctrdShimBinary)
				}
				if !sc.recordGone && gone {
					t.Errorf("the record of %s is gone with containerd's runc shim: the failing hook did not keep it, so the greenboost case proves nothing", id)
				}
				d.mustCtr(t, "containers", "delete", id)
				_ = os.Remove(cfg.recordPath(id))
			})
		}
	})
}

// ctrdStartSleeper starts a detached sleeping container and checks its
// record; it clears the failing hook's marker first.
func ctrdStartSleeper(t *testing.T, d *ctrd, cfg gbConfig, failMarker, id string, runtime []string) {
	t.Helper()
	_ = os.Remove(failMarker)
	d.track(id)
	args := append([]string{"run", "-d"}, runtime...)
	d.mustCtr(t, append(args, ctrdImage, id, "/bin/sleep", "600")...)
	if _, err := cfg.readRecord(id); err != nil {
		t.Fatalf("no GreenBoost record after the container started: %v", err)
	}
}

// ctrdCheckFailedPoststop makes sure the failing poststop hook ran, which is
// the premise of TestContainerdDeleteAfterFailedPoststop.
func ctrdCheckFailedPoststop(t *testing.T, failMarker string) {
	t.Helper()
	if marker, err := os.ReadFile(failMarker); err != nil || !strings.Contains(string(marker), "poststop") {
		t.Fatalf("the failing poststop hook did not run (%v): the test's premise does not hold", err)
	}
}

// TestContainerdNerdctlRun: nerdctl v1.7.7 `run --rm --runtime
// io.containerd.greenboost.v2 --network none`: the same wiring as with ctr,
// the record created while it runs and removed after.
func TestContainerdNerdctlRun(t *testing.T) {
	s := getSuite(t)
	bin := nerdctlBinary(t)
	forEachContainerd(t, func(t *testing.T, rel ctrdRelease) {
		cfg := s.writeConfig(t, s.testDir(t), s.runc)
		nerdctlRun(t, s, startContainerdRelease(t, s, cfg, rel), cfg, bin)
	})
}

// nerdctlRun is TestContainerdNerdctlRun on containerd d with nerdctl bin.
func nerdctlRun(t *testing.T, s *suite, d *ctrd, cfg gbConfig, bin string) {
	d.importImage(t)

	const id = "gb-nerdctl-run"
	ctl := d.ctlDir(t, id)
	d.track(id)
	var out lockedBuffer
	cmd := d.nerdctlCmd(bin, "run", "--rm", "--name", id, "--runtime", ctrdRuntimeType, "--network", "none",
		"-e", "GREENBOOST_RAM_LIMIT=512M",
		"-v", ctl+":/gbctl", ctrdImageShort, "/bin/sh", "-c", probeScript+ctrdWaitScript)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if !waitFor(120*time.Second, func() bool { return strings.Contains(out.String(), "GB:DONE=1") }) {
		_ = cmd.Process.Kill()
		t.Fatalf("nerdctl run: the probe did not finish (%v); output:\n%s", <-done, out.String())
	}
	// nerdctl gives the container a generated id; find its record by name.
	cid := strings.TrimSpace(d.mustNerdctl(t, bin, "inspect", "--format", "{{.ID}}", id))
	if rec, err := cfg.readRecord(cid); err != nil {
		t.Errorf("no GreenBoost record for container %s (%s) while it runs: %v", id, cid, err)
	} else if rec.ID != cid || rec.Pid <= 0 || rec.Limits.RAM != 512<<20 {
		t.Errorf("record of the running container: %+v, want id %s, its pid and RAM limit %d (GREENBOOST_RAM_LIMIT=512M)", rec, cid, 512<<20)
	}
	if err := os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("nerdctl run: %v; output:\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("nerdctl run did not finish within 60s after the stop file; output:\n%s", out.String())
	}
	s.checkGreenBoostProbe(t, out.String(), "")
	if gone, err := recordGone(cfg, cid); !gone {
		t.Errorf("the GreenBoost record of %s is still there after nerdctl run --rm (%v)", cid, err)
	}
	if ls := d.mustCtr(t, "containers", "ls", "-q"); strings.Contains(ls, cid) {
		t.Errorf("nerdctl run --rm left the container behind: %s", ls)
	}
}

func (d *ctrd) mustNerdctl(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := d.nerdctlCmd(bin, args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("nerdctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// withCDIDevices is containerd v2's pkg/cdi.WithCDIDevices (what nerdctl
// v2's `run --device greenboost.io/vram=ext` applies), on containerd v1.7's
// oci.SpecOpts: refresh the CDI cache, inject the devices into the spec on
// the client side. containerd v1.7 has the same code only inside CRI
// (pkg/cri/opts.WithCDI).
func withCDIDevices(devices ...string) oci.SpecOpts {
	return func(ctx context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if len(devices) == 0 {
			return nil
		}
		if err := cdi.Refresh(); err != nil {
			// As containerd: a refresh error is not fatal, injection decides.
			fmt.Fprintf(os.Stderr, "CDI registry refresh: %v\n", err)
		}
		if _, err := cdi.InjectDevices(s, devices...); err != nil {
			return fmt.Errorf("CDI device injection failed: %w", err)
		}
		return nil
	}
}

// TestContainerdCDIClient: the nerdctl CDI path. A spec written by
// `greenboost-ctk cdi generate` into a CDI dir; a containerd v1.7 Go client
// creates a container on plain runc (io.containerd.runc.v2, no greenboost
// runtime) with greenboost.io/vram=ext injected client-side, as nerdctl v2
// does for --device. The container sees the device, the read-only library
// and LD_PRELOAD; the spec's hooks write the record and remove it on delete.
func TestContainerdCDIClient(t *testing.T) {
	s := getSuite(t)
	dir := s.testDir(t)
	cfg := s.writeConfig(t, dir, s.runc)
	cdiDir := filepath.Join(dir, "cdi")
	specPath := filepath.Join(cdiDir, "greenboost.io-vram.yaml")
	s.generateCDISpec(t, cfg, specPath)
	if err := cdi.Configure(cdi.WithSpecDirs(cdiDir), cdi.WithAutoRefresh(false)); err != nil {
		t.Fatalf("configuring the CDI cache for %s: %v", cdiDir, err)
	}
	forEachContainerd(t, func(t *testing.T, rel ctrdRelease) {
		cdiClient(t, s, startContainerdRelease(t, s, cfg, rel), cfg)
	})
}

// cdiClient is TestContainerdCDIClient on containerd d.
func cdiClient(t *testing.T, s *suite, d *ctrd, cfg gbConfig) {
	d.importImage(t)
	client, err := containerd.New(d.sock, containerd.WithDefaultNamespace(ctrdNamespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("containerd client: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ctrdNamespace), 3*time.Minute)
	defer cancel()

	image, err := client.GetImage(ctx, ctrdImage)
	if err != nil {
		t.Fatal(err)
	}
	const id = "gb-cdi-client"
	ctl := d.ctlDir(t, id)
	d.track(id)
	ctr, err := client.NewContainer(ctx, id,
		containerd.WithImage(image),
		containerd.WithNewSnapshot(id+"-snapshot", image),
		containerd.WithRuntime("io.containerd.runc.v2", nil),
		containerd.WithNewSpec(
			oci.WithImageConfig(image),
			oci.WithProcessArgs("/bin/sh", "-c", probeScript+ctrdWaitScript),
			oci.WithMounts([]specs.Mount{{Type: "bind", Source: ctl, Destination: "/gbctl", Options: []string{"rbind", "rw"}}}),
			withCDIDevices("greenboost.io/vram=ext"),
		))
	if err != nil {
		t.Fatalf("creating the container with CDI device greenboost.io/vram=ext: %v", err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup) //nolint:errcheck

	// The injection happened on the client: containerd stores the edited spec.
	spec, err := ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hooks []string
	if spec.Hooks != nil {
		for _, h := range append(append([]specs.Hook(nil), spec.Hooks.Prestart...), spec.Hooks.Poststop...) {
			hooks = append(hooks, strings.Join(h.Args, " "))
		}
	}
	if !strings.Contains(strings.Join(hooks, "\n"), "prestart") || !strings.Contains(strings.Join(hooks, "\n"), "poststop") {
		t.Errorf("the stored spec lacks the CDI spec's prestart/poststop hooks: %q", hooks)
	}

	var out lockedBuffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &out, &out)))
	if err != nil {
		t.Fatalf("creating the task: %v", err)
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("starting the task: %v", err)
	}
	if !waitFor(90*time.Second, func() bool { return strings.Contains(out.String(), "GB:DONE=1") }) {
		_ = task.Kill(ctx, 9)
		t.Fatalf("the probe did not finish; output:\n%s", out.String())
	}
	if rec, err := cfg.readRecord(id); err != nil {
		t.Errorf("no GreenBoost record while the container runs (the CDI spec's prestart hook): %v", err)
	} else if rec.ID != id || rec.Pid <= 0 {
		t.Errorf("record of the running container: %+v", rec)
	}
	if err := os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-exitC:
		if code, _, err := st.Result(); err != nil || code != 0 {
			t.Errorf("the container exited %d (%v); output:\n%s", code, err, out.String())
		}
	case <-time.After(60 * time.Second):
		_ = task.Kill(ctx, 9)
		t.Fatalf("the container did not exit after the stop file; output:\n%s", out.String())
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Fatalf("deleting the task: %v", err)
	}
	s.checkGreenBoostProbe(t, out.String(), "")
	if gone, err := recordGone(cfg, id); !gone {
		t.Errorf("the GreenBoost record of %s is still there after the task was deleted (the CDI spec's poststop hook) (%v)", id, err)
	}
}
