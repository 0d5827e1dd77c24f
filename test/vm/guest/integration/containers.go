package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// defaultCaps are runc spec's default capabilities.
var defaultCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// allCaps are the capabilities of Linux 6.1 (0..40).
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// specOpts shape a container's spec.
type specOpts struct {
	env     []string
	userns  bool // a user namespace mapping root to 100000, all capabilities
	annots  map[string]string
	devices []specs.LinuxDevice // extra device nodes (no cgroup rule)
	mounts  []specs.Mount       // extra mounts
}

// newSpec returns a spec like `runc spec` makes: a read-only busybox root,
// the usual namespaces and mounts, and a device cgroup that denies every
// device but runc's defaults.
func newSpec(id string, args []string, o specOpts) *specs.Spec {
	caps := defaultCaps
	if o.userns {
		caps = allCaps
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: id,
		Root:     &specs.Root{Path: RootfsDir, Readonly: true},
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: args,
			Env:  append([]string{"PATH=/bin", "HOME=/"}, o.env...),
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=16m"}},
		},
		Annotations: o.annots,
		Linux: &specs.Linux{
			CgroupsPath: "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	s.Mounts = append(s.Mounts, o.mounts...)
	s.Linux.Devices = append(s.Linux.Devices, o.devices...)
	if o.userns {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Process.Capabilities.Inheritable = caps
		s.Process.Capabilities.Ambient = caps
		s.Process.NoNewPrivileges = false
	}
	return s
}

// container is one bundle under BundleDir.
type container struct {
	id     string
	bundle string
	log    string // the container's stdout+stderr, and runc's
}

// newContainer writes the bundle of id with spec s.
func newContainer(t *T, id string, s *specs.Spec) *container {
	c := &container{id: id, bundle: filepath.Join(BundleDir, id), log: filepath.Join(BundleDir, id+".log")}
	t.Check(os.MkdirAll(c.bundle, 0o755), "bundle dir")
	data, err := json.MarshalIndent(s, "", "  ")
	t.Check(err, "encode spec")
	t.Check(os.WriteFile(filepath.Join(c.bundle, "config.json"), data, 0o644), "write config.json")
	os.Remove(c.log)
	return c
}

// cmdResult is a finished command.
type cmdResult struct {
	out string
	err error
	dur time.Duration
}

// runCmd runs a host command (stdin /dev/null), its output collected.
func runCmd(name string, args ...string) cmdResult {
	return runCmdAs(nil, name, args...)
}

// runCmdAs is runCmd as the user cred names (nil: root).
func runCmdAs(cred *syscall.Credential, name string, args ...string) cmdResult {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	start := time.Now()
	err := cmd.Run()
	return cmdResult{out: b.String(), err: err, dur: time.Since(start)}
}

// runtimeCmd runs `greenboost-runtime ARGS` with its stdio (and so the
// container's, on create) on the container's log file: a file, not a pipe,
// so that nothing waits for the container to close it.
func (c *container) runtime(bin string, args ...string) cmdResult {
	f, err := os.OpenFile(c.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return cmdResult{err: err}
	}
	defer f.Close()
	before, _ := f.Seek(0, 2)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = f, f
	start := time.Now()
	err = cmd.Run()
	res := cmdResult{err: err, dur: time.Since(start)}
	if data, rerr := os.ReadFile(c.log); rerr == nil && int64(len(data)) >= before {
		res.out = string(data[before:])
	}
	return res
}

// create and start the container through greenboost-runtime.
func (c *container) create(t *T) {
	r := c.runtime(RuntimeBin, "create", "--bundle", c.bundle, c.id)
	if r.err != nil {
		t.Fatalf("greenboost-runtime create %s: %v: %s", c.id, r.err, strings.TrimSpace(r.out))
	}
	t.Logf("greenboost-runtime create --bundle %s %s (%v)", c.bundle, c.id, r.dur.Round(time.Millisecond))
}

func (c *container) start(t *T) {
	r := c.runtime(RuntimeBin, "start", c.id)
	if r.err != nil {
		t.Fatalf("greenboost-runtime start %s: %v: %s", c.id, r.err, strings.TrimSpace(r.out))
	}
	t.Logf("greenboost-runtime start %s (%v)", c.id, r.dur.Round(time.Millisecond))
}

// delete removes the container through greenboost-runtime (poststop runs).
func (c *container) delete(t *T) {
	r := runCmd(RuntimeBin, "delete", c.id)
	if r.err != nil {
		t.Errorf("greenboost-runtime delete %s: %v: %s", c.id, r.err, strings.TrimSpace(r.out))
		return
	}
	t.Logf("greenboost-runtime delete %s (%v)", c.id, r.dur.Round(time.Millisecond))
}

// forceDelete is the cleanup of a case that failed half way.
func (c *container) forceDelete() {
	runCmd(RuncBin, "delete", "--force", c.id)
}

// output returns the container's log so far.
func (c *container) output() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// waitOutput waits until the log holds want.
func (c *container) waitOutput(t *T, want string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		o := c.output()
		if strings.Contains(o, want) {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: no %q within %v; output:\n%s", c.id, want, timeout, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runcState is the part of `runc state` used here.
type runcState struct {
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

func (c *container) state() (runcState, error) {
	r := runCmd(RuncBin, "state", c.id)
	var s runcState
	if r.err != nil {
		return s, fmt.Errorf("runc state %s: %v: %s", c.id, r.err, strings.TrimSpace(r.out))
	}
	err := json.Unmarshal([]byte(r.out), &s)
	return s, err
}

// waitStopped waits until runc sees the container stopped.
func (c *container) waitStopped(t *T, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := c.state()
		t.Check(err, "state")
		if s.Status == "stopped" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %s after %v", c.id, s.Status, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig through greenboost-runtime (a pass-through verb).
func (c *container) signal(t *T, sig string) {
	r := runCmd(RuntimeBin, "kill", c.id, sig)
	if r.err != nil {
		t.Fatalf("greenboost-runtime kill %s %s: %v: %s", c.id, sig, r.err, r.out)
	}
}

// kv parses the key=value fields of the first line starting with prefix.
func kv(output, prefix string) (map[string]string, bool) {
	for _, l := range strings.Split(output, "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		m := map[string]string{}
		for _, f := range strings.Fields(strings.TrimPrefix(l, prefix)) {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k] = strings.Trim(v, `"`)
			}
		}
		return m, true
	}
	return nil, false
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// status is the JSON of `greenboost-ctk status --json` as the tests read it.
type status struct {
	Module struct {
		Loaded      bool   `json:"loaded"`
		Version     string `json:"version"`
		Hierarchy   string `json:"cgroup_hierarchy"`
		T2TotalMB   uint64 `json:"t2_total_mb"`
		T2UsedMB    uint64 `json:"t2_used_mb"`
		Buffers     uint32 `json:"buffers"`
		Unavailable string `json:"unavailable"`
	} `json:"module"`
	Containers []struct {
		ID     string `json:"id"`
		Cgroup struct {
			Hierarchy uint32 `json:"hierarchy"`
			ID        uint64 `json:"id"`
			Path      string `json:"path"`
		} `json:"cgroup"`
		T2Used   uint64 `json:"t2_used_bytes"`
		T2Limit  uint64 `json:"t2_limit_bytes"`
		T3Used   uint64 `json:"t3_used_bytes"`
		T3Limit  uint64 `json:"t3_limit_bytes"`
		Buffers  uint32 `json:"buffers"`
		Enforced bool   `json:"enforced"`
		Pending  bool   `json:"pending"`
	} `json:"containers"`
	UnclaimedNodes []json.RawMessage `json:"unclaimed_nodes"`
}

// ctkStatus runs `greenboost-ctk status --json` and decodes it.
func ctkStatus(t *T) (*status, string) {
	r := runCmd(CtkBin, "status", "--json")
	if r.err != nil {
		t.Fatalf("greenboost-ctk status --json: %v: %s", r.err, r.out)
	}
	var s status
	if err := json.Unmarshal([]byte(r.out), &s); err != nil {
		t.Fatalf("greenboost-ctk status --json: bad JSON: %v:\n%s", err, r.out)
	}
	return &s, r.out
}

// records lists the hook's container records.
func records() []string {
	entries, err := os.ReadDir(filepath.Join(StateDir, "containers"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return []string{"(" + err.Error() + ")"}
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
