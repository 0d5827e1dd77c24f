//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// dockerNofileSoft is the soft nofile limit of dockerd's daemon.json:
	// seen in a container, the file kept what `runtime configure` merged into.
	dockerNofileSoft = 12345

	dockerBaseImage    = "gb-e2e/base:1"
	dockerPreloadImage = "gb-e2e/preload:1"
	dockerEvilImage    = "gb-e2e/evil:1"
)

// dockerRelease is a dockerd the tests start.
type dockerRelease struct {
	dockerd, cli string
	// binDir, when set, comes first on dockerd's PATH: the containerd (and
	// its runc shim) dockerd starts.
	binDir string
	// cdi: `docker run --device` takes CDI device names (Docker 25 and
	// later), from the spec dir the daemon.json names.
	cdi bool
}

// debianDocker is Debian 12's docker.io (20.10): its dockerd and CLI.
var debianDocker = dockerRelease{dockerd: "/usr/sbin/dockerd", cli: "/usr/bin/docker"}

// TestDocker runs a real dockerd started by the test with greenboost-runtime
// registered as runtime "greenboost": Debian's docker.io (20.10), and
// Docker 28 (docker28_test.go), where `--device greenboost.io/vram=ext`
// also reaches us through our CDI spec.
func TestDocker(t *testing.T) {
	s := getSuite(t)
	for _, r := range []struct {
		name  string
		ready func(*testing.T) dockerRelease
	}{
		{"docker-20.10", func(*testing.T) dockerRelease { return debianDocker }},
		{"docker-" + strings.TrimSuffix(strings.TrimPrefix(docker28Version, "v"), "+incompatible"), docker28},
	} {
		t.Run(r.name, func(t *testing.T) { testDocker(t, s, r.ready(t)) })
	}
}

// testDocker is TestDocker on one release.
func testDocker(t *testing.T, s *suite, rel dockerRelease) {
	d := startDockerdRelease(t, s, rel, nil)
	d.importImage(t, s.baseRootfs, dockerBaseImage)
	d.importImage(t, s.baseRootfs, dockerPreloadImage, "ENV LD_PRELOAD="+imageLibPath)

	t.Run("greenboost", func(t *testing.T) {
		out := d.mustRun(t, "run", "--rm", "--runtime=greenboost", "--network", "none", "-e", "GREENBOOST_RAM_LIMIT=1G",
			dockerBaseImage, "/bin/sh", "-c", probeScript)
		s.checkGreenBoostProbe(t, out, "")
		if t.Failed() {
			t.Logf("container output:\n%s", out)
		}
		// GREENBOOST_CONFIG in dockerd's environment reached the wrapper
		// (through containerd and its shim): it logged to our log file.
		log, _ := os.ReadFile(d.cfg.logFile)
		if !bytes.Contains(log, []byte("applied GreenBoost edits")) {
			t.Errorf("the wrapper did not log to %s (GREENBOOST_CONFIG from dockerd's env not seen?); log: %q", d.cfg.logFile, log)
		}
		if recs := d.cfg.records(t); len(recs) != 0 {
			t.Errorf("records left after docker run --rm: %v", recs)
		}
	})

	t.Run("runtime-configure-kept-daemon-json", func(t *testing.T) {
		out := d.mustRun(t, "run", "--rm", "--runtime=greenboost", "--network", "none", dockerBaseImage, "/bin/sh", "-c", "ulimit -n")
		if got := strings.TrimSpace(out); got != fmt.Sprint(dockerNofileSoft) {
			t.Errorf("ulimit -n in the container = %q, want %d from daemon.json's default-ulimits", got, dockerNofileSoft)
		}
	})

	t.Run("image-ld-preload-kept", func(t *testing.T) {
		out := d.mustRun(t, "run", "--rm", "--runtime=greenboost", "--network", "none",
			dockerPreloadImage, "/bin/sh", "-c", probeScript)
		s.checkGreenBoostProbe(t, out, imageLibPath)
		if t.Failed() {
			t.Logf("container output:\n%s", out)
		}
	})

	t.Run("record-lifecycle", func(t *testing.T) {
		id := strings.TrimSpace(d.mustRun(t, "run", "-d", "--runtime=greenboost", "--network", "none",
			"-e", "GREENBOOST_RAM_LIMIT=512M", dockerBaseImage, "sleep", "60"))
		t.Cleanup(func() { _, _, _ = d.docker("rm", "-f", id) })
		rec, err := d.cfg.readRecord(id)
		if err != nil {
			t.Fatalf("record of running container %s: %v", id, err)
		}
		if rec.ID != id || rec.Pid <= 0 || rec.Cgroup.Path == "" {
			t.Errorf("record: %+v", rec)
		}
		// (docker run --annotation needs API 1.43; dockerd 20.10 speaks 1.41.)
		if rec.Limits.RAM != 512<<20 {
			t.Errorf("record ram limit %d, want %d (GREENBOOST_RAM_LIMIT=512M)", rec.Limits.RAM, 512<<20)
		}
		// docker exec builds the process from docker's own copy of the
		// config: the wrapper must give it the container's GreenBoost env.
		env := d.mustRun(t, "exec", id, "env")
		if !strings.Contains(env, "LD_PRELOAD="+libContainerPath) || !strings.Contains(env, "GREENBOOST_ACTIVE=1") {
			t.Errorf("docker exec lacks the GreenBoost env:\n%s", env)
		}
		d.removeExpectingNoRecord(t, id)
	})

	t.Run("opt-out-env", func(t *testing.T) {
		out := d.mustRun(t, "run", "--rm", "--runtime=greenboost", "--network", "none", "-e", "GREENBOOST_DISABLE=1",
			dockerBaseImage, "/bin/sh", "-c", probeScript)
		checkUntouchedProbe(t, out)
	})

	t.Run("bogus-ram-limit", func(t *testing.T) {
		stdout, stderr, err := d.docker("run", "--rm", "--runtime=greenboost", "--network", "none",
			"-e", "GREENBOOST_RAM_LIMIT=bogus", dockerBaseImage, "true")
		if err == nil {
			t.Fatalf("docker run succeeded with GREENBOOST_RAM_LIMIT=bogus; stdout %q stderr %q", stdout, stderr)
		}
		want := `invalid GREENBOOST_RAM_LIMIT "bogus": expected`
		if !containsMessage(stderr, want) {
			t.Errorf("docker's error output lacks %q:\n%s", want, stderr)
		}
		if recs := d.cfg.records(t); len(recs) != 0 {
			t.Errorf("records left after a failed docker run: %v", recs)
		}
	})

	t.Run("plain-runtime-untouched", func(t *testing.T) {
		out := d.mustRun(t, "run", "--rm", "--network", "none", dockerBaseImage, "/bin/sh", "-c", probeScript)
		checkUntouchedProbe(t, out)
	})

	if rel.cdi {
		t.Run("cdi-device", func(t *testing.T) { dockerCDI(t, s, d) })
	}

	t.Run("evil-image", func(t *testing.T) {
		root := filepath.Join(s.testDir(t), "rootfs")
		if err := copyTree(s.baseRootfs, root); err != nil {
			t.Fatal(err)
		}
		if err := s.makeEvilRootfs(root); err != nil {
			t.Fatal(err)
		}
		d.importImage(t, root, dockerEvilImage, "ENV LD_PRELOAD="+s.evilLib)
		s.assertEvilLibWorksOnHost(t)
		clearDir(t, s.evilDir)
		out := d.mustRun(t, "run", "--rm", "--runtime=greenboost", "--network", "none", dockerEvilImage,
			"/bin/sh", "-c", dynProgram+" true; ls "+s.evilDir)
		if !strings.Contains(out, "evil-") {
			t.Errorf("the evil library did not run inside the container, so this test proves nothing; output: %q", out)
		}
		if m := s.evilMarkers(t); len(m) != 0 {
			t.Errorf("the image's library ran in a host process during docker run --runtime=greenboost: %v", m)
		}
	})
}

// dockerd is a daemon started by a test, with its own state under dir.
type dockerd struct {
	cli  string
	dir  string
	sock string
	cmd  *exec.Cmd
	done chan error
	cfg  gbConfig
	env  []string
}

// startDockerd starts Debian's dockerd; see startDockerdRelease.
func startDockerd(t *testing.T, s *suite) *dockerd {
	return startDockerdRelease(t, s, debianDocker, nil)
}

// TestDockerUsernsRemap runs Debian's dockerd with userns-remap: a
// container's root is an unprivileged host user, and dockerd gives it a
// rootfs it owns. GreenBoost reaches it whole through greenboost-runtime.
func TestDockerUsernsRemap(t *testing.T) {
	s := getSuite(t)
	const first, count = 300000, 65536
	addSubordinateIDs(t, "daemon", first, count) // an existing user other than root, which dockerd does not remap to
	d := startDockerdRelease(t, s, debianDocker, map[string]any{"userns-remap": "daemon"})
	d.importImage(t, s.baseRootfs, dockerBaseImage)
	out := d.mustRun(t, "run", "--rm", "--runtime=greenboost", "--network", "none", "-e", "GREENBOOST_RAM_LIMIT=1G",
		dockerBaseImage, "/bin/sh", "-c", probeScript+"echo GB:UIDMAP=$(cat /proc/self/uid_map)\n")
	s.checkGreenBoostProbe(t, out, "")
	if got, want := strings.Join(strings.Fields(parseProbe(out).get("UIDMAP")), " "), fmt.Sprintf("0 %d %d", first, count); got != want {
		t.Errorf("the container's uid_map is %q, want %q: not a remapped container, so this test proves nothing", got, want)
	}
	if recs := d.cfg.records(t); len(recs) != 0 {
		t.Errorf("records left after docker run --rm: %v", recs)
	}
	if log, _ := os.ReadFile(d.cfg.logFile); bytes.Contains(log, []byte("could not make a mount point")) {
		t.Errorf("the wrapper could not make the mount point in dockerd's remapped rootfs:\n%s", log)
	}
	if t.Failed() {
		t.Logf("container output:\n%s", out)
	}
}

// addSubordinateIDs gives user the subordinate uids and gids first..+count
// in /etc/subuid and /etc/subgid (dockerd's userns-remap reads them), and
// puts the files back as they were when the test ends.
func addSubordinateIDs(t *testing.T, user string, first, count int) {
	t.Helper()
	for _, path := range []string{"/etc/subuid", "/etc/subgid"} {
		old, err := os.ReadFile(path)
		existed := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if existed {
				err = os.WriteFile(path, old, 0o644)
			} else {
				err = os.Remove(path)
			}
			if err != nil {
				t.Errorf("putting %s back: %v", path, err)
			}
		})
		entry := fmt.Sprintf("%s:%d:%d\n", user, first, count)
		if err := os.WriteFile(path, append(old, entry...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dockerCDI: Docker's own CDI injection of greenboost.io/vram=ext from the
// spec `greenboost-ctk cdi generate` wrote into the daemon's CDI spec dir,
// on plain runc: the probe sees the device, the read-only library and
// LD_PRELOAD; the spec's hooks record the budget of the container's
// annotation (over its env) while it runs and drop it after.
func dockerCDI(t *testing.T, s *suite, d *dockerd) {
	s.generateCDISpec(t, d.cfg, filepath.Join(d.cdiDir(), "greenboost.io-vram.yaml"))
	out := d.mustRun(t, "run", "--rm", "--network", "none", "--device", "greenboost.io/vram=ext",
		dockerBaseImage, "/bin/sh", "-c", probeScript)
	s.checkGreenBoostProbe(t, out, "")
	if t.Failed() {
		t.Logf("container output:\n%s", out)
	}

	id := strings.TrimSpace(d.mustRun(t, "run", "-d", "--network", "none", "--device", "greenboost.io/vram=ext",
		"--annotation", "greenboost.io/ram-limit=640M", "-e", "GREENBOOST_RAM_LIMIT=1G", dockerBaseImage, "sleep", "60"))
	t.Cleanup(func() { _, _, _ = d.docker("rm", "-f", id) })
	rec, err := d.cfg.readRecord(id)
	if err != nil {
		t.Fatalf("record of running container %s: %v", id, err)
	}
	if rec.Limits.RAM != 640<<20 {
		t.Errorf("record ram limit %d, want %d (the annotation, over the env)", rec.Limits.RAM, 640<<20)
	}
	d.removeExpectingNoRecord(t, id)
}

// removeExpectingNoRecord removes container id with `docker rm -f` and
// waits for its record to go (the poststop hook).
func (d *dockerd) removeExpectingNoRecord(t *testing.T, id string) {
	t.Helper()
	if _, stderr, err := d.docker("rm", "-f", id); err != nil {
		t.Fatalf("docker rm -f: %v: %s", err, stderr)
	}
	d.cfg.waitRecordGone(t, id, "docker rm -f")
}

// cdiDir is the CDI spec dir of a daemon whose release reads CDI specs.
func (d *dockerd) cdiDir() string { return filepath.Join(d.dir, "cdi") }

// startDockerdRelease starts dockerd rel with its own data root, exec root
// and socket under a test directory, greenboost-runtime registered by
// `greenboost-ctk runtime configure`, and no network. It is stopped by PID
// when the test ends.
// settings are daemon.json settings of the test's own.
func startDockerdRelease(t *testing.T, s *suite, rel dockerRelease, settings map[string]any) *dockerd {
	t.Helper()
	for _, b := range []string{rel.dockerd, rel.cli, "containerd", "tar"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not found: install docker.io (make deps); Docker 28 is built from the Go module proxy", b)
		}
	}
	dir := filepath.Join(s.tmp, fmt.Sprintf("docker%d", s.counter.next()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &dockerd{cli: rel.cli, dir: dir, sock: filepath.Join(dir, "d.sock"), done: make(chan error, 1)}
	d.cfg = s.writeConfig(t, filepath.Join(dir, "gb"), "runc")
	d.env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(dir, "cli"))
	logF, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	// The runtime comes from `greenboost-ctk runtime configure`, merged into
	// a daemon.json that has settings of its own (which must survive).
	daemonJSON := filepath.Join(dir, "daemon.json")
	settings = maps.Clone(settings)
	if settings == nil {
		settings = map[string]any{}
	}
	settings["default-ulimits"] = map[string]any{
		"nofile": map[string]any{"Name": "nofile", "Hard": 20000, "Soft": dockerNofileSoft},
		"nproc":  map[string]any{"Name": "nproc", "Hard": 32768, "Soft": 32768},
	}
	if rel.cdi {
		settings["features"] = map[string]bool{"cdi": true}
		settings["cdi-spec-dirs"] = []string{d.cdiDir()}
	}
	data, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(daemonJSON, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctk := filepath.Join(s.repo, "bin", "greenboost-ctk")
	if out, err := exec.Command(ctk, "runtime", "configure", "--config", daemonJSON, "--runtime-path", s.runtimeBin).CombinedOutput(); err != nil {
		t.Fatalf("greenboost-ctk runtime configure: %v\n%s", err, out)
	}
	d.cmd = exec.Command(rel.dockerd,
		"--config-file", daemonJSON,
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://"+d.sock,
	)
	// The wrapper finds its config through the environment dockerd passes
	// to containerd, the runc shim and so the runtime.
	d.cmd.Env = append(os.Environ(), "GREENBOOST_CONFIG="+d.cfg.path)
	if rel.binDir != "" {
		d.cmd.Env = append(d.cmd.Env, "PATH="+rel.binDir+":"+os.Getenv("PATH"))
	}
	d.cmd.Stdout, d.cmd.Stderr = logF, logF
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting dockerd: %v", err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })

	deadline := time.Now().Add(60 * time.Second)
	for {
		if conn, err := net.Dial("unix", d.sock); err == nil {
			conn.Close()
			if _, _, err := d.docker("version"); err == nil {
				break
			}
		}
		select {
		case err := <-d.done:
			d.done <- err
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd exited: %v\n%s", err, tail(string(log), 3000))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd not ready after 60 s:\n%s", tail(string(log), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d
}

// stop stops dockerd by PID, then any process of ours it left (containerd,
// shims: anything whose command line names our directory), by PID.
func (d *dockerd) stop(t *testing.T) {
	pid := d.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Errorf("dockerd (pid %d) did not stop in 30 s on SIGTERM; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-d.done
	}
	for _, p := range pidsMentioning(d.dir) {
		t.Logf("killing leftover process %d (%s)", p, cmdline(p))
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	if left := pidsMentioning(d.dir); len(left) > 0 {
		time.Sleep(500 * time.Millisecond)
		if left = pidsMentioning(d.dir); len(left) > 0 {
			t.Errorf("processes of the test's dockerd still alive: %v", left)
		}
	}
	removeAll(d.dir)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// docker runs the docker CLI against this daemon.
func (d *dockerd) docker(args ...string) (stdout, stderr string, err error) {
	return runTool(d.env, d.cli, args...)
}

func (d *dockerd) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := d.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// importImage makes image from a rootfs directory with `docker import`.
func (d *dockerd) importImage(t *testing.T, rootfs, image string, changes ...string) {
	t.Helper()
	args := []string{"import", "--change", "ENV PATH=/bin:/dyn"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	args = append(args, "-", image)
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()
	tarCmd := exec.CommandContext(ctx, "tar", "-C", rootfs, "-c", ".")
	imp := exec.CommandContext(ctx, d.cli, args...)
	imp.Env = d.env
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var out bytes.Buffer
	imp.Stdout, imp.Stderr = &out, &out
	if err := tarCmd.Start(); err != nil {
		t.Fatal(err)
	}
	impErr := imp.Run()
	tarErr := tarCmd.Wait()
	if impErr != nil || tarErr != nil {
		t.Fatalf("docker import %s: %v / tar: %v: %s", image, impErr, tarErr, out.String())
	}
}
