package integration

import (
	"os"
	"strings"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// Podman inside the VM (the CDI path of DESIGN.md §1): Debian's podman with
// conmon and runc, the vfs storage driver, no network, and the container
// root given with --rootfs (no image store, no registry).
const (
	PodmanBin = "/usr/bin/podman"
	ConmonBin = "/usr/bin/conmon"
	// CDISpecPath is where `greenboost-ctk cdi generate` writes by default.
	CDISpecPath = "/var/run/cdi/greenboost.io-vram.yaml"
)

// PodmanConfigs are the engine's config files in the VM.
var PodmanConfigs = map[string]string{
	"/etc/containers/containers.conf": `[containers]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
conmon_path = ["` + ConmonBin + `"]

[engine.runtimes]
runc = ["` + RuncBin + `"]
`,
	"/etc/containers/storage.conf": `[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
`,
	"/etc/containers/policy.json": `{"default": [{"type": "insecureAcceptAnything"}]}
`,
}

// testPodmanCDI: podman applies the CDI spec written by greenboost-ctk to
// two containers at once; their budgets (64M, 128M) come from the
// annotation, are enforced, show in status, and are released when podman
// removes the containers.
func testPodmanCDI(t *T) {
	if !exists(PodmanBin) || !exists(ConmonBin) {
		t.Fatalf("podman or conmon is not in the VM image (the host had none: apt-get install podman)")
	}
	if !exists("/sys/module/" + kmod.ModuleName) {
		t.Fatalf("the module is not loaded (see runtime-loads-module)")
	}
	r := runCmd(CtkBin, "cdi", "generate")
	t.Logf("greenboost-ctk cdi generate (%v): %s", r.dur.Round(time.Millisecond), strings.TrimSpace(r.out))
	if r.err != nil {
		t.Fatalf("greenboost-ctk cdi generate: %v", r.err)
	}
	if spec, err := os.ReadFile(CDISpecPath); err != nil {
		t.Fatalf("no CDI spec at %s: %v", CDISpecPath, err)
	} else {
		t.Logf("%s:\n%s", CDISpecPath, spec)
		// The node is at the same path on the host and in containers: no
		// hostPath, so the spec needs only cdiVersion 0.4.0 (the mount's type).
		if !strings.Contains(string(spec), "cdiVersion: 0.4.0\n") || strings.Contains(string(spec), "hostPath: /dev/greenboost") {
			t.Errorf("the spec for the default node should have cdiVersion 0.4.0 and no hostPath for it")
		}
	}
	type pctr struct {
		name, limit string
		budget      uint64
		cg          kmod.Cgroup
	}
	ps := []*pctr{{name: "p64", limit: "64M", budget: 64 * miB}, {name: "p128", limit: "128M", budget: 128 * miB}}
	for _, p := range ps {
		args := []string{"--log-level=error", "run", "-d", "--name", p.name, "--network", "none",
			"--device", "greenboost.io/vram=ext",
			"--annotation", "greenboost.io/ram-limit=" + p.limit,
			"--rootfs", RootfsDir, // --rootfs is a switch: the root is the first argument
			"/bin/gbdyn", "/bin/gballoc", "alloc", "-step", "8M", "-hold"}
		t.Cleanup(func() { runCmd(PodmanBin, "rm", "-f", p.name) })
		r = runCmd(PodmanBin, args...)
		t.Logf("podman %s (%v): %s", strings.Join(args, " "), r.dur.Round(time.Millisecond), strings.TrimSpace(r.out))
		if r.err != nil {
			t.Fatalf("podman run: %v", r.err)
		}
	}
	for _, p := range ps {
		o := podmanWaitLogs(t, p.name, "GBALLOC hold")
		t.Logf("podman logs %s:\n%s", p.name, o)
		p.cg = allocResult(t, p.name, o, p.budget)
	}
	st, raw := ctkStatus(t)
	t.Logf("greenboost-ctk status (both podman containers running):\n%s", runCmd(CtkBin, "status").out)
	for _, p := range ps {
		found := false
		for _, row := range st.Containers {
			if row.Cgroup.ID == p.cg.ID {
				found = true
				if row.T2Used != p.budget || row.T2Limit != p.budget || !row.Enforced {
					t.Errorf("status of %s: used %d limit %d enforced %v, want %d/%d enforced", p.name, row.T2Used, row.T2Limit, row.Enforced, p.budget, p.budget)
				}
			}
		}
		if !found {
			t.Errorf("status --json does not list podman container %s (cgroup %d):\n%s", p.name, p.cg.ID, raw)
		}
	}
	for _, p := range ps {
		if r := runCmd(PodmanBin, "kill", "--signal", "USR1", p.name); r.err != nil {
			t.Errorf("podman kill %s: %v: %s", p.name, r.err, r.out)
		}
	}
	for _, p := range ps {
		podmanWaitLogs(t, p.name, "GBALLOC done")
		if r := runCmd(PodmanBin, "wait", p.name); r.err != nil {
			t.Errorf("podman wait %s: %v: %s", p.name, r.err, r.out)
		}
		rm := runCmd(PodmanBin, "rm", p.name)
		t.Logf("podman rm %s (%v): %s", p.name, rm.dur.Round(time.Millisecond), strings.TrimSpace(rm.out))
		if rm.err != nil {
			t.Errorf("podman rm: %v", rm.err)
		}
	}
	// The poststop hook ran (through conmon's cleanup or podman rm).
	deadline := time.Now().Add(10 * time.Second)
	for len(records()) != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if recs := records(); len(recs) != 0 {
		t.Errorf("records left after podman rm: %v", recs)
	}
	st, raw = ctkStatus(t)
	if len(st.Containers) != 0 || len(st.UnclaimedNodes) != 0 || st.Module.T2UsedMB != 0 {
		t.Errorf("status after podman rm, want nothing:\n%s", raw)
	}
	dev := openModule(t)
	nodes, err := dev.List()
	t.Check(err, "CG_LIST")
	for _, n := range nodes {
		if n.NodeFlags&kmod.CgNodeHasLimit != 0 {
			t.Errorf("node left with a limit: %s", nodeString(n))
		}
	}
}

// podmanWaitLogs waits until `podman logs name` holds want.
func podmanWaitLogs(t *T, name, want string) string {
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := runCmd(PodmanBin, "logs", name)
		if strings.Contains(r.out, want) {
			return r.out
		}
		if time.Now().After(deadline) {
			t.Fatalf("podman logs %s: no %q within 60s:\n%s", name, want, r.out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
