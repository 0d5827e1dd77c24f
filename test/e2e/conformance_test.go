//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runtimeToolsModule holds the OCI runtime conformance suite (validation/,
// run against a runtime named by $RUNTIME), at the version this module
// already requires through the CDI library.
const runtimeToolsModule = "github.com/opencontainers/runtime-tools"

// conformanceRetries are tests that fail now and then on this host for a
// reason that is runc's, and the message that shows it: process_rlimits
// gives the container RLIMIT_AS 1 GiB, and runc 1.1's init, a Go program
// with cgo, sometimes exhausts that address space (each thread's malloc
// arena reserves 64 MiB) before it loads seccomp: in 2 to 6 runs out of 30
// here, plain or wrapped (a shell script that only execs runc fails as
// often as greenboost-runtime). Such a run is repeated.
var conformanceRetries = map[string]string{
	"process_rlimits": "error adding seccomp filter rule for syscall geteuid: cannot allocate memory",
}

// conformanceAttempts bounds the runs of a test in conformanceRetries.
const conformanceAttempts = 5

// TestOCIConformance runs runtime-tools' validation suite, the OCI runtime
// conformance tests, against plain runc and crun and against
// greenboost-runtime wrapping each (with the GreenBoost edits and hooks), and
// requires every assertion the plain runtime passes on this host to pass
// through the wrapper too.
// runtimetest prints "not ok # TODO we need an (r)bind spec" for any bind
// mount, so a spec with our library mount carries that TODO; tests that
// wrap runtimetest's output count it as a failure, and such a failure is
// accepted when the TODO is its only inner failure.
func TestOCIConformance(t *testing.T) {
	s := getSuite(t)
	suiteDir := runtimeToolsSuite(t, s.repo)
	tests, _ := filepath.Glob(filepath.Join(suiteDir, "validation", "*", "*.t"))
	if len(tests) < 40 {
		t.Fatalf("runtime-tools suite in %s has %d tests, want the whole validation/ directory", suiteDir, len(tests))
	}
	for _, ll := range s.lowLevels() {
		t.Run(ll.name, func(t *testing.T) {
			if ll.name == "crun" {
				prepareCrun(t)
			}
			cfg := s.writeConfig(t, s.testDir(t), ll.path)
			// Many tests pass nothing on a host (hooks, blkio, apparmor), so
			// each may compare nothing; most passing nothing is a suite that
			// did not run (runtimetest, its rootfs, TMPDIR), not a pass.
			comparing := 0
			// Tests whose run through the wrapper edited a spec and ran our
			// prestart hook (its warning: the stand-in enforces nothing): a
			// wrapper that took no verb for create would pass everything.
			withGreenBoost := 0
			for _, exe := range tests {
				name := strings.TrimSuffix(filepath.Base(exe), ".t")
				t.Run(name, func(t *testing.T) {
					run := func(runtime string, env []string) tapResult {
						r := runValidation(t, suiteDir, exe, runtime, env)
						for i := 1; i < conformanceAttempts && conformanceRetries[name] != "" && strings.Contains(r.output, conformanceRetries[name]); i++ {
							t.Logf("%s with %s failed with runc's %q: run %d of %d", name, filepath.Base(runtime), conformanceRetries[name], i+1, conformanceAttempts)
							r = runValidation(t, suiteDir, exe, runtime, env)
						}
						return r
					}
					plain := run(ll.path, nil)
					logged := fileSize(cfg.logFile)
					gb := run(s.runtimeBin, []string{"GREENBOOST_CONFIG=" + cfg.path})
					if len(plain.passed) > 0 {
						comparing++
					}
					if log := readFrom(cfg.logFile, logged); strings.Contains(log, "applied GreenBoost edits") && strings.Contains(log, "are NOT enforced") {
						withGreenBoost++
					}
					compareConformance(t, ll.name, plain, gb)
				})
			}
			if comparing*2 < len(tests) {
				t.Errorf("only %d of %d validation tests passed any assertion with plain %s: the suite did not really run (see their output)", comparing, len(tests), ll.name)
			}
			t.Logf("%d of %d validation tests ran containers with the GreenBoost edits and hooks (%d compared assertions)", withGreenBoost, len(tests), comparing)
			if withGreenBoost*2 < comparing {
				t.Errorf("only %d validation tests ran a container with the GreenBoost edits and prestart hook (see %s), %d compared assertions: the wrapper passed the suite's creates through", withGreenBoost, cfg.logFile, comparing)
			}
		})
	}
}

// compareConformance requires every assertion that passed on the plain
// runtime to pass through greenboost-runtime, with the same exit status.
func compareConformance(t *testing.T, runtime string, plain, gb tapResult) {
	t.Helper()
	for desc := range plain.passed {
		if !gb.passed[desc] {
			t.Errorf("%q passes with %s but not through greenboost-runtime:\n%s", desc, runtime, ctrdTail(gb.output, 60))
		}
	}
	if gb.exitCode != plain.exitCode {
		t.Errorf("exit status %d through greenboost-runtime, %d with %s:\n%s", gb.exitCode, plain.exitCode, runtime, ctrdTail(gb.output, 40))
	}
}

type tapResult struct {
	passed   map[string]bool // descriptions of passed (or only-TODO-failed) assertions
	exitCode int
	output   string
}

// runValidation runs one validation executable with $RUNTIME set, from the
// suite's directory (it reads runtimetest and the rootfs tarball from there).
func runValidation(t *testing.T, dir, exe, runtime string, env []string) tapResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Dir = dir
	cmd.Env = append(append(ctrdCleanEnv(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"RUNTIME="+runtime, "TMPDIR="+validationTmp(t)), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s with RUNTIME=%s did not finish in %v", filepath.Base(exe), runtime, 2*cmdTimeout)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	return tapResult{passed: parseTAP(string(out)), exitCode: code, output: string(out)}
}

// validationTmp returns a TMPDIR for one run of a validation test, where it
// makes its bundles, and detaches what is still mounted below it when the
// test ends: some tests (masked and read-only paths over symlinks, with runc
// and crun alike) leave their rootfs, proc, dev and sys mounted on the host,
// where every later mountinfo read, the Go runtime's at start-up included,
// pays for them.
// Not t.TempDir: its directories are 0700, which a container whose root is
// mapped to another user (linux_uid_mappings) cannot enter.
func validationTmp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gb-validation-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mounts, err := mountsBelow(dir)
		if err != nil {
			t.Errorf("listing the mounts a validation test left: %v", err)
			return
		}
		for _, m := range mounts {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Errorf("unmounting %s, left by a validation test: %v", m, err)
				return // never remove what is still mounted
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// mountsBelow returns the mount points strictly below dir, deepest first.
func mountsBelow(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var below []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			below = append(below, f[4])
		}
	}
	sort.Slice(below, func(i, j int) bool { return len(below[i]) > len(below[j]) })
	return below, nil
}

var tapLine = regexp.MustCompile(`^(ok|not ok) [0-9]+ ?(.*)$`)

// parseTAP returns the descriptions of the top-level assertions that passed,
// counting a failure whose only cause is runtimetest's bind-mount TODO (in
// the runtimetest output it wraps, a YAML block just before or after the
// result line) as passed. Skips and TODOs are directives, not results, and
// are left out.
func parseTAP(out string) map[string]bool {
	passed := map[string]bool{}
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		m := tapLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		desc := strings.TrimPrefix(m[2], "- ")
		if strings.HasPrefix(desc, "# SKIP") || strings.HasPrefix(desc, "# TODO") {
			continue
		}
		if m[1] == "ok" || onlyBindTODO(yamlBlockBefore(lines, i)) || onlyBindTODO(yamlBlockAfter(lines, i)) {
			passed[desc] = true
		}
	}
	return passed
}

// yamlBlockAfter and yamlBlockBefore return the "  ---" … "  ..." block
// next to the result line at lines[i], or "".
func yamlBlockAfter(lines []string, i int) string {
	if i+1 >= len(lines) || lines[i+1] != "  ---" {
		return ""
	}
	for j := i + 2; j < len(lines); j++ {
		if lines[j] == "  ..." {
			return strings.Join(lines[i+2:j], "\n")
		}
	}
	return ""
}

func yamlBlockBefore(lines []string, i int) string {
	if i < 1 || lines[i-1] != "  ..." {
		return ""
	}
	for j := i - 2; j >= 0; j-- {
		if lines[j] == "  ---" {
			return strings.Join(lines[j+1:i-1], "\n")
		}
	}
	return ""
}

// onlyBindTODO reports whether a YAML block holds wrapped runtimetest
// output that failed only on its bind-mount TODO.
func onlyBindTODO(block string) bool {
	var wrapped struct {
		Stdout string `json:"stdout"`
	}
	if json.Unmarshal([]byte(block), &wrapped) != nil || !strings.Contains(wrapped.Stdout, "TAP version") {
		return false
	}
	sawTODO := false
	for _, l := range strings.Split(wrapped.Stdout, "\n") {
		if !strings.HasPrefix(l, "not ok") {
			continue
		}
		if !strings.Contains(l, "# TODO we need an (r)bind spec") {
			return false
		}
		sawTODO = true
	}
	return sawTODO
}

// runtimeToolsSuite builds runtimetest and the validation executables of the
// runtime-tools version go.mod requires, from the Go module proxy, into
// testBuildCache on first use, and returns that directory.
func runtimeToolsSuite(t *testing.T, repo string) string {
	t.Helper()
	out, err := exec.Command("go", "-C", repo, "list", "-m", "-f", "{{.Version}}", runtimeToolsModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", runtimeToolsModule, err)
	}
	version := strings.TrimSpace(string(out))
	dir := filepath.Join(testBuildCache, "runtime-tools-"+version)
	if _, err := os.Stat(filepath.Join(dir, ".built")); err == nil {
		return dir
	}
	dl, err := exec.Command("go", "mod", "download", "-json", runtimeToolsModule+"@"+version).Output()
	if err != nil {
		t.Fatalf("go mod download %s@%s (needs the Go module proxy): %v", runtimeToolsModule, version, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(dl, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %v (%s)", err, dl)
	}
	start := time.Now()
	t.Logf("building runtime-tools %s's validation suite into %s (once)", version, dir)
	src := filepath.Join(t.TempDir(), "runtime-tools")
	if err := copyTree(mod.Dir, src); err != nil {
		t.Fatal(err)
	}
	// The module zip has vendor/modules.txt without the packages: build in
	// module mode from the proxy instead.
	if err := os.RemoveAll(filepath.Join(src, "vendor")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	build := func(out, pkg string, extra ...string) {
		args := append([]string{"build", "-mod=mod", "-o", out}, extra...)
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s of runtime-tools %s: %v\n%s", pkg, version, err, ctrdTail(string(out), 30))
		}
	}
	build(filepath.Join(dir, "runtimetest"), "./cmd/runtimetest", "-tags", "netgo osusergo")
	pkgs, _ := filepath.Glob(filepath.Join(src, "validation", "*", "*.go"))
	for _, p := range pkgs {
		name := filepath.Base(filepath.Dir(p))
		if name == "util" || filepath.Base(p) != name+".go" {
			continue
		}
		build(filepath.Join(dir, "validation", name, name+".t"), "./validation/"+name)
	}
	if err := copyFile(filepath.Join(src, "rootfs-amd64.tar.gz"), filepath.Join(dir, "rootfs-amd64.tar.gz")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".built"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %v", time.Since(start).Round(time.Second))
	return dir
}
