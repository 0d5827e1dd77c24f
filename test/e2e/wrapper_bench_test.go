//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Budgets of DESIGN.md §8; the benchmark reports against them and fails only
// on errors.
const (
	benchRounds       = 40  // interleaved create+start+delete rounds per arm
	benchPassRuns     = 200 // pass-through verb runs per arm
	benchCreateRuns   = 100 // create edit runs per arm
	benchHookRuns     = 100 // hook runs per stage
	benchBusyRecords  = 200 // running containers' records for the busy prestart
	benchDockerRounds = 40  // interleaved docker run rounds per arm (a run varies by ±10 %)
	targetDockerRatio = 1.05
	targetRatio       = 1.15
	targetPassMs      = 1.5
	targetCreateEdit  = 3.0
	targetHookProcess = 3.0
)

// sample is one measured run: wall time and the CPU time (user + system) of
// the process and the children it waited for (a hook is runc's child). CPU
// time says what a run costs even when other work makes wall times noisy.
type sample struct {
	wall, cpu time.Duration
}

func (a sample) add(b sample) sample { return sample{a.wall + b.wall, a.cpu + b.cpu} }

// TestBench measures greenboost-runtime against plain runc (make bench).
// Numbers are medians; the output lines start with BENCH.
func TestBench(t *testing.T) {
	s := getSuite(t)
	// Bundles, runtime state and records live on tmpfs, as under /run in
	// production (engines keep bundles under /run/containerd, the records
	// go to /run/greenboost); this host's /run may be on disk.
	dir := s.testDir(t)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256m,mode=0755"); err != nil {
		t.Fatalf("mounting a tmpfs for the benchmark at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	cfg := s.writeConfig(t, filepath.Join(dir, "gb"), s.runc)
	setLogLevel(t, cfg.path, "info") // the default level, as in production
	rtRoot := filepath.Join(dir, "rt")
	env := append(os.Environ(), "GREENBOOST_CONFIG="+cfg.path)

	trueOpts := bundleOpts{args: []string{"/bin/true"}}
	gbBundle := s.newBundle(t, filepath.Join(dir, "bundle-gb"), trueOpts)
	plainBundle := s.newBundle(t, filepath.Join(dir, "bundle-plain"), trueOpts)

	// A low-level runtime that does nothing (busybox true), for the create
	// edit alone.
	fakeDir := filepath.Join(dir, "fake")
	if err := os.MkdirAll(fakeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(fakeDir, "true")
	if err := os.Symlink("/bin/busybox", fake); err != nil {
		t.Fatal(err)
	}
	fakeCfg := s.writeConfig(t, filepath.Join(dir, "gb-fake"), fake)
	setLogLevel(t, fakeCfg.path, "info")
	fakeEnv := append(os.Environ(), "GREENBOOST_CONFIG="+fakeCfg.path)

	// The Go floor: what any Go wrapper and Go hooks cost on this host. A
	// static Go program that only execs its target stands in for the wrapper,
	// one that only exits for each hook, on a spec with our edits (device,
	// read-only mount, env) whose hooks are that no-op program.
	goFloor := buildGoProgram(t, filepath.Join(dir, "hello"), "func main() { os.Exit(0) }\n")
	goExec := buildGoProgram(t, filepath.Join(dir, "goexec"),
		"func main() {\n\tt := os.Getenv(\"GB_BENCH_EXEC\")\n\tpanic(syscall.Exec(t, append([]string{t}, os.Args[1:]...), os.Environ()))\n}\n", "syscall")
	floorBundle := s.newBundle(t, filepath.Join(dir, "bundle-floor"), trueOpts)
	floorBundle.spec = floorSpec(t, s.runtimeBin, fakeEnv, floorBundle, goFloor)
	floorEnv := append(slices.Clone(env), "GB_BENCH_EXEC="+s.runc)

	loadBefore := loadAvg()

	// 1. Whole container lifecycle, interleaved, alternating which goes first.
	n := 0
	lifecycle := func(bin string, b *bundle) sample {
		env := env
		if bin == goExec {
			env = floorEnv
		}
		t.Helper()
		if err := os.WriteFile(filepath.Join(b.dir, "config.json"), b.spec, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
		id := fmt.Sprintf("gb-bench-%d-%d", os.Getpid(), n)
		pidFile := filepath.Join(b.dir, "pid")
		t0 := time.Now()
		c := timeExec(t, env, nil, bin, "--root", rtRoot, "create", "--bundle", b.dir, "--pid-file", pidFile, id)
		pid := readPid(t, pidFile)
		if bin == s.runtimeBin { // the prestart hook ran: what is measured is the whole of it
			if _, err := os.Stat(cfg.recordPath(id)); err != nil {
				t.Fatalf("no record of %s after create: %v", id, err)
			}
		}
		c = c.add(timeExec(t, env, nil, bin, "--root", rtRoot, "start", id))
		if err := waitExit(pid, cmdTimeout); err != nil {
			t.Fatal(err)
		}
		c = c.add(timeExec(t, env, nil, bin, "--root", rtRoot, "delete", id))
		c.wall = time.Since(t0)
		if bin == s.runtimeBin {
			if _, err := os.Stat(cfg.recordPath(id)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("record of %s left after delete (stat: %v)", id, err)
			}
		}
		return c
	}
	arms := []struct {
		bin    string
		bundle *bundle
		runs   *[]sample
	}{{s.runtimeBin, gbBundle, new([]sample)}, {s.runc, plainBundle, new([]sample)}, {goExec, floorBundle, new([]sample)}}
	for i := 0; i < 3; i++ { // warm caches
		for _, a := range arms {
			lifecycle(a.bin, a.bundle)
		}
	}
	for i := 0; i < benchRounds; i++ { // rotate which arm goes first
		for j := range arms {
			a := arms[(i+j)%len(arms)]
			*a.runs = append(*a.runs, lifecycle(a.bin, a.bundle))
		}
	}
	gbRuns, plainRuns, floorRuns := *arms[0].runs, *arms[1].runs, *arms[2].runs
	gbWall, plainWall, floorWall := medianWall(gbRuns), medianWall(plainRuns), medianWall(floorRuns)
	ratio := float64(gbWall) / float64(plainWall)
	cpuRatio := float64(medianCPU(gbRuns)) / float64(medianCPU(plainRuns))

	// 2. Pass-through: a verb that is not create/run, on a created container.
	if err := os.WriteFile(filepath.Join(plainBundle.dir, "config.json"), plainBundle.spec, 0o644); err != nil {
		t.Fatal(err)
	}
	stateID := fmt.Sprintf("gb-bench-state-%d", os.Getpid())
	timeExec(t, env, nil, s.runc, "--root", rtRoot, "create", "--bundle", plainBundle.dir, stateID)
	t.Cleanup(func() { _ = exec.Command(s.runc, "--root", rtRoot, "delete", "--force", stateID).Run() })
	var passGB, passPlain, passFloor []sample
	for i := 0; i < benchPassRuns; i++ {
		passGB = append(passGB, timeExec(t, env, nil, s.runtimeBin, "--root", rtRoot, "state", stateID))
		passPlain = append(passPlain, timeExec(t, env, nil, s.runc, "--root", rtRoot, "state", stateID))
		passFloor = append(passFloor, timeExec(t, floorEnv, nil, goExec, "--root", rtRoot, "state", stateID))
	}
	passDiff := ms(medianWall(passGB)) - ms(medianWall(passPlain))
	passFloorDiff := ms(medianWall(passFloor)) - ms(medianWall(passPlain))
	passCPUDiff := ms(medianCPU(passGB)) - ms(medianCPU(passPlain))

	// 3. The create edit: the wrapper in front of the no-op runtime, against
	// that runtime alone.
	editBundle := s.newBundle(t, filepath.Join(dir, "bundle-edit"), trueOpts)
	var createGB, createFake []sample
	for i := 0; i < benchCreateRuns; i++ {
		if err := os.WriteFile(filepath.Join(editBundle.dir, "config.json"), editBundle.spec, 0o644); err != nil {
			t.Fatal(err)
		}
		createGB = append(createGB, timeExec(t, fakeEnv, nil, s.runtimeBin, "create", "--bundle", editBundle.dir, "bench-edit"))
		createFake = append(createFake, timeExec(t, fakeEnv, nil, fake, "create", "--bundle", editBundle.dir, "bench-edit"))
	}
	if spec := editBundle.readSpec(t); spec.Hooks == nil || len(spec.Hooks.Prestart) == 0 {
		t.Fatalf("the create runs did not edit the spec")
	}
	createDiff := ms(medianWall(createGB)) - ms(medianWall(createFake))
	// The same with a spec the size of Docker's, most of it its seccomp
	// profile, which the wrapper copies without decoding.
	seccompSpec := withSeccompProfile(t, editBundle.spec)
	var createSeccompGB, createSeccompFake []sample
	for i := 0; i < benchCreateRuns; i++ {
		if err := os.WriteFile(filepath.Join(editBundle.dir, "config.json"), seccompSpec, 0o644); err != nil {
			t.Fatal(err)
		}
		createSeccompGB = append(createSeccompGB, timeExec(t, fakeEnv, nil, s.runtimeBin, "create", "--bundle", editBundle.dir, "bench-edit"))
		createSeccompFake = append(createSeccompFake, timeExec(t, fakeEnv, nil, fake, "create", "--bundle", editBundle.dir, "bench-edit"))
	}
	if spec := editBundle.readSpec(t); spec.Linux == nil || spec.Linux.Seccomp == nil || spec.Hooks == nil || len(spec.Hooks.Prestart) == 0 {
		t.Fatalf("the create runs did not edit the spec, or lost its seccomp profile")
	}
	createSeccompDiff := ms(medianWall(createSeccompGB)) - ms(medianWall(createSeccompFake))

	// 4. Each hook process, run directly with an OCI state on stdin (the
	// bundle edited above; pid = this test process, so cgroup resolution is
	// real), against spawning busybox true the same way. Before poststop
	// the record names a cgroup that is gone, as runc leaves it.
	statePath := filepath.Join(dir, "state.json")
	state := fmt.Sprintf(`{"ociVersion":"1.0.2","id":"gb-bench-hook","status":"created","pid":%d,"bundle":%q}`, os.Getpid(), editBundle.dir)
	if err := os.WriteFile(statePath, []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	hookEnv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"} // what runc gives it
	var pre, post, spawn, goSpawn []sample
	for i := 0; i < benchHookRuns; i++ {
		goSpawn = append(goSpawn, timeExec(t, hookEnv, &statePath, goFloor))
		pre = append(pre, timeExec(t, hookEnv, &statePath, s.hookBin, "--config", cfg.path, "prestart"))
		stopContainer(t, cfg.recordPath("gb-bench-hook"), filepath.Join(dir, "gone-cgroup"))
		post = append(post, timeExec(t, hookEnv, &statePath, s.hookBin, "--config", cfg.path, "poststop"))
		if _, err := os.Stat(cfg.recordPath("gb-bench-hook")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("poststop left the record (stat: %v)", err)
		}
		spawn = append(spawn, timeExec(t, hookEnv, &statePath, fake))
	}
	// The prestart hook on a busy host: the records of many running
	// containers (this test process), which its gc reads only now and then.
	for i := 0; i < benchBusyRecords; i++ {
		record := fmt.Sprintf(`{"id":"gb-bench-busy-%d","bundle":%q,"pid":%d}`, i, editBundle.dir, os.Getpid())
		if err := os.WriteFile(cfg.recordPath(fmt.Sprintf("gb-bench-busy-%d", i)), []byte(record), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var preBusy []sample
	for i := 0; i < benchHookRuns; i++ {
		preBusy = append(preBusy, timeExec(t, hookEnv, &statePath, s.hookBin, "--config", cfg.path, "prestart"))
	}
	for i := 0; i < benchBusyRecords; i++ {
		if _, err := os.Stat(cfg.recordPath(fmt.Sprintf("gb-bench-busy-%d", i))); err != nil {
			t.Fatalf("a running container's record went: %v", err)
		}
	}

	// 5. A whole `docker run --rm` with and without the wrapper.
	d := startDockerd(t, s)
	d.importImage(t, s.baseRootfs, dockerBaseImage)
	dockerRun := func(extra ...string) sample {
		args := append([]string{"run", "--rm", "--network", "none"}, extra...)
		args = append(args, dockerBaseImage, "/bin/true")
		t0 := time.Now()
		if _, stderr, err := d.docker(args...); err != nil {
			t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
		return sample{wall: time.Since(t0)}
	}
	dockerRun("--runtime=greenboost")
	dockerRun()
	editsBefore := strings.Count(readFrom(d.cfg.logFile, 0), "applied GreenBoost edits")
	var dockerGB, dockerPlain []sample
	for i := 0; i < benchDockerRounds; i++ {
		if i%2 == 0 {
			dockerGB = append(dockerGB, dockerRun("--runtime=greenboost"))
			dockerPlain = append(dockerPlain, dockerRun())
		} else {
			dockerPlain = append(dockerPlain, dockerRun())
			dockerGB = append(dockerGB, dockerRun("--runtime=greenboost"))
		}
	}
	// Each timed greenboost run went through the wrapper's edits, and no
	// plain one did.
	if edits := strings.Count(readFrom(d.cfg.logFile, 0), "applied GreenBoost edits") - editsBefore; edits != len(dockerGB) {
		t.Fatalf("%d docker runs with --runtime=greenboost, %d edits in %s", len(dockerGB), edits, d.cfg.logFile)
	}
	dockerRatio := float64(medianWall(dockerGB)) / float64(medianWall(dockerPlain))
	dockerLow, dockerHigh := pairedRatioQuartiles(dockerGB, dockerPlain)

	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "OVER"
	}
	preMs, postMs, spawnMs, goMs := ms(medianWall(pre)), ms(medianWall(post)), ms(medianWall(spawn)), ms(medianWall(goSpawn))
	lines := []string{
		fmt.Sprintf("BENCH host cpus=%d load1_before=%s load1_after=%s (bundles, runtime state and records on tmpfs; medians)",
			runtime.NumCPU(), loadBefore, loadAvg()),
		fmt.Sprintf("BENCH lifecycle rounds=%d greenboost_ms=%.2f runc_ms=%.2f greenboost_cpu_ms=%.2f runc_cpu_ms=%.2f (create+start+wait+delete of busybox /bin/true)",
			benchRounds, ms(gbWall), ms(plainWall), ms(medianCPU(gbRuns)), ms(medianCPU(plainRuns))),
		fmt.Sprintf("BENCH ratio=%.3f target<=%.2f %s (cpu ratio %.3f)", ratio, targetRatio, verdict(ratio <= targetRatio), cpuRatio),
		fmt.Sprintf("BENCH go_floor_ratio=%.3f (%.2f ms: runc behind a Go wrapper that only execs it, with our edits and two Go hooks that only exit); greenboost over that floor: %.3f (+%.2f ms)",
			float64(floorWall)/float64(plainWall), ms(floorWall), float64(gbWall)/float64(floorWall), ms(gbWall)-ms(floorWall)),
		fmt.Sprintf("BENCH docker_ratio=%.3f target<=%.2f %s (docker run --rm busybox /bin/true: --runtime=greenboost %.1f ms, runc %.1f ms, rounds=%d; each round's ratio: p25 %.3f, p75 %.3f)",
			dockerRatio, targetDockerRatio, verdict(dockerRatio <= targetDockerRatio), ms(medianWall(dockerGB)), ms(medianWall(dockerPlain)), benchDockerRounds,
			dockerLow, dockerHigh),
		fmt.Sprintf("BENCH passthrough_ms=%.3f target<=%.1f %s (`state`: greenboost-runtime %.3f ms, runc %.3f ms, runs=%d; cpu +%.3f ms; a Go program that only execs runc: +%.3f ms)",
			passDiff, targetPassMs, verdict(passDiff <= targetPassMs), ms(medianWall(passGB)), ms(medianWall(passPlain)), benchPassRuns, passCPUDiff, passFloorDiff),
		fmt.Sprintf("BENCH create_edit_ms=%.3f target<=%.1f %s (create through the wrapper to a no-op runtime %.3f ms, the no-op runtime alone %.3f ms, runs=%d; cpu +%.3f ms)",
			createDiff, targetCreateEdit, verdict(createDiff <= targetCreateEdit), ms(medianWall(createGB)), ms(medianWall(createFake)), benchCreateRuns,
			ms(medianCPU(createGB))-ms(medianCPU(createFake))),
		fmt.Sprintf("BENCH create_edit_seccomp_ms=%.3f (the same on a %d KiB spec with a seccomp profile of %d syscalls, as Docker writes)",
			createSeccompDiff, len(seccompSpec)/1024, benchSeccompSyscalls),
		fmt.Sprintf("BENCH process_floor busybox_true_ms=%.3f go_hello_ms=%.3f go_hello_cpu_ms=%.3f (what any process / any static Go program costs on this host now)",
			spawnMs, goMs, ms(medianCPU(goSpawn))),
		fmt.Sprintf("BENCH hook_prestart_ms=%.3f target<=%.1f %s (cpu %.3f ms; over a Go hello world %.3f ms)",
			preMs, targetHookProcess, verdict(preMs <= targetHookProcess), ms(medianCPU(pre)), preMs-goMs),
		fmt.Sprintf("BENCH hook_poststop_ms=%.3f target<=%.1f %s (cpu %.3f ms; over a Go hello world %.3f ms)",
			postMs, targetHookProcess, verdict(postMs <= targetHookProcess), ms(medianCPU(post)), postMs-goMs),
		fmt.Sprintf("BENCH hook_prestart_busy_ms=%.3f target<=%.1f %s (with the records of %d running containers, whose gc one prestart in 10 s runs; slowest of %d runs %.3f ms)",
			ms(medianWall(preBusy)), targetHookProcess, verdict(ms(medianWall(preBusy)) <= targetHookProcess), benchBusyRecords, benchHookRuns, ms(slices.MaxFunc(preBusy, func(a, b sample) int { return int(a.wall - b.wall) }).wall)),
	}
	for _, l := range lines {
		fmt.Println(l)
	}
}

// benchSeccompSyscalls is about the number of syscalls Docker's default
// seccomp profile allows.
const benchSeccompSyscalls = 350

// withSeccompProfile returns spec with a seccomp profile shaped like
// Docker's default: one rule allowing most syscalls by name, and rules with
// argument conditions.
func withSeccompProfile(t testing.TB, spec []byte) []byte {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(spec, &s); err != nil {
		t.Fatal(err)
	}
	names := make([]string, benchSeccompSyscalls)
	for i := range names {
		names[i] = fmt.Sprintf("syscall_%d", i)
	}
	profile := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}},
	}
	for i := 0; i < 40; i++ {
		profile.Syscalls = append(profile.Syscalls, specs.LinuxSyscall{
			Names: []string{fmt.Sprintf("conditional_%d", i)}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 2114060288, Op: specs.OpMaskedEqual}},
		})
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.Seccomp = profile
	data, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// stopContainer makes a container's record look as it does when its
// poststop runs: the runtime has removed its cgroup (here this test
// process's, which lives on), so poststop releases and drops the record.
func stopContainer(t testing.TB, record, goneCgroup string) {
	t.Helper()
	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("prestart wrote no record: %v", err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	cg, ok := rec["cgroup"].(map[string]any)
	if !ok {
		t.Fatalf("record %s has no cgroup: %s", record, data)
	}
	cg["path"] = goneCgroup
	if data, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(record, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func setLogLevel(t testing.TB, path, level string) {
	t.Helper()
	editConfig(t, path, `log-level = "debug"`, fmt.Sprintf("log-level = %q", level))
}

// timeExec runs bin with stdout on /dev/null and stderr in a file (no pipes:
// a container inherits create's stdio and would hold a pipe open), stdin
// from a file path or /dev/null, and fails the test on error.
func timeExec(t testing.TB, env []string, stdin *string, bin string, args ...string) sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if stdin != nil {
		f, err := os.Open(*stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	errF, err := os.CreateTemp("", "gb-bench-stderr-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd.Stderr = errF
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		out, _ := os.ReadFile(errF.Name())
		t.Fatalf("%s %s: %v: %s", bin, strings.Join(args, " "), err, out)
	}
	return sample{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
}

func readPid(t testing.TB, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func medianWall(ss []sample) time.Duration {
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.wall
	}
	return median(ds)
}

// pairedRatioQuartiles returns the lower and upper quartiles of a[i]/b[i],
// the wall time ratios of interleaved rounds: how far one round's ratio
// strays, which a single run's median cannot show.
func pairedRatioQuartiles(a, b []sample) (float64, float64) {
	ratios := make([]float64, len(a))
	for i := range a {
		ratios[i] = float64(a[i].wall) / float64(b[i].wall)
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/4], ratios[len(ratios)*3/4]
}

func medianCPU(ss []sample) time.Duration {
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.cpu
	}
	return median(ds)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadAvg returns the 1-minute load average: a busy host makes every number
// here larger and noisier.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// buildGoProgram builds a static Go program from the body of its main
// package (which imports os and the extra packages): the floors of the
// wrapper's and the hooks' process costs.
func buildGoProgram(t testing.TB, dir, body string, imports ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package main\n\nimport \"os\"\n"
	for _, imp := range imports {
		src += fmt.Sprintf("import %q\n", imp)
	}
	files := map[string]string{
		"go.mod":  "module floor\n\ngo 1.21\n",
		"main.go": src + "\n" + body,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, filepath.Base(dir))
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a Go program for the process floor: %v: %s", err, o)
	}
	return out
}

// floorSpec returns the spec of b as greenboost-runtime edits it (with env
// naming a no-op low-level runtime), with both hooks replaced by noop.
func floorSpec(t testing.TB, runtimeBin string, env []string, b *bundle, noop string) []byte {
	t.Helper()
	timeExec(t, env, nil, runtimeBin, "create", "--bundle", b.dir, "floor-edit")
	spec := b.readSpec(t)
	if spec.Hooks == nil || len(spec.Hooks.Prestart) != 1 || len(spec.Hooks.Poststop) != 1 {
		t.Fatalf("the edited spec has not one prestart and one poststop hook: %+v", spec.Hooks)
	}
	for _, h := range []*specs.Hook{&spec.Hooks.Prestart[0], &spec.Hooks.Poststop[0]} {
		h.Path, h.Args = noop, []string{noop}
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
