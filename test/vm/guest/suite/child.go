package suite

import (
	"bufio"
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

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// A helper process ("gbguest child serve") runs requests from the test
// process, one JSON object per line on stdin, answering one per line on
// stdout. It is started in a cgroup (clone3 CLONE_INTO_CGROUP), a user
// namespace or under another uid, and exits on "exit" without closing its
// descriptors, so the module's cleanup on process exit is what gets tested.
//
// Descriptors it inherits: 3 = /dev/greenboost when the parent passes it
// (else it opens the node itself), 4 = a unix socket for SCM_RIGHTS.
type request struct {
	Op     string
	Size   uint64
	Flags  uint32
	FD     int
	Cg     kmod.Cgroup
	Self   bool
	T2, T3 uint64
	Off    uint64
}

type response struct {
	Errno  int // 0 = success
	Err    string
	FD     int
	N      int64
	Query  kmod.CgQuery
	Usage  kmod.CgUsage
	Limit  kmod.CgLimit
	Rel    kmod.CgRelease
	List   []kmod.CgEntry
	Output string
}

func errnoOf(err error) int {
	var e unix.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	if err != nil {
		return -1
	}
	return 0
}

func childMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "child: no operation")
		return 2
	}
	switch args[0] {
	case "serve":
		return childServe()
	case "forkwrite":
		return childForkWrite(args[1:])
	case "stress":
		return childStress(args[1:])
	case "bench":
		return childBench(args[1:])
	}
	fmt.Fprintf(os.Stderr, "child: unknown operation %q\n", args[0])
	return 2
}

func childDevice() (*kmod.Device, error) {
	if os.Getenv("GB_DEVFD") == "3" {
		return kmod.NewDevice(3, "/dev/greenboost (inherited)"), nil
	}
	return kmod.Open("")
}

func childServe() int {
	dev, err := childDevice()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<16), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	pinned := map[int][]byte{} // PIN_USER_PTR memory, by fd
	for in.Scan() {
		var req request
		var resp response
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			resp.Errno, resp.Err = -1, err.Error()
			enc.Encode(resp)
			continue
		}
		var err error
		switch req.Op {
		case "exit":
			os.Exit(0) // descriptors and mappings stay open: the kernel closes them
		case "query":
			resp.Query, err = dev.Query()
		case "alloc":
			resp.FD, err = dev.Alloc(req.Size, req.Flags)
		case "close":
			err = unix.Close(req.FD)
		case "usage":
			resp.Usage, err = dev.Usage(req.Cg, req.Self)
		case "setlimit":
			resp.Limit, err = dev.SetLimit(req.Cg, req.T2, req.T3)
		case "release":
			resp.Rel, err = dev.Release(req.Cg, req.Flags)
		case "list":
			resp.List, err = dev.List()
		case "setpoolcap":
			var prev uint64
			prev, err = dev.SetPoolCap(req.Size)
			resp.N = int64(prev)
		case "releasepid":
			var n int
			n, err = dev.ReleasePID(uint32(req.Size))
			resp.N = int64(n)
		case "pin":
			var mem []byte
			mem, err = unix.Mmap(-1, 0, int(req.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err == nil {
				for i := 0; i < len(mem); i += 4096 {
					mem[i] = 1
				}
				addr := uint64(uintptrOf(mem)) + req.Off
				resp.FD, err = dev.PinUserPtr(addr, req.Size-req.Off, req.Flags)
				if err == nil {
					pinned[resp.FD] = mem
				} else {
					unix.Munmap(mem)
				}
			}
		case "mmap":
			// map a buffer and leave the mapping in place
			var mem []byte
			mem, err = unix.Mmap(req.FD, 0, int(req.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err == nil {
				mem[0] = 0x5a
			}
		case "sendfd":
			err = unix.Sendmsg(4, []byte{'f'}, unix.UnixRights(req.FD), nil, 0)
		case "recvfd":
			resp.FD, err = recvFD(4)
		case "size":
			var off int64
			off, err = unix.Seek(req.FD, 0, 2)
			resp.N = off
		case "fsize":
			// a file size limit, as `docker run --ulimit fsize=N` sets
			err = unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: req.Size, Max: req.Size})
		case "cgroup":
			var b []byte
			b, err = os.ReadFile("/proc/self/cgroup")
			resp.Output = strings.TrimSpace(string(b))
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		if err != nil {
			resp.Errno, resp.Err = errnoOf(err), err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			return 1
		}
	}
	return 0
}

func recvFD(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, 0)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("recvmsg: no SCM_RIGHTS message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("recvmsg: want one fd (%v)", err)
	}
	return fds[0], nil
}

// childOpts say where and as whom a helper runs.
type childOpts struct {
	cgroupDir string   // cgroup of cgLayout to start in ("" = the parent's)
	uid       int      // run as this uid/gid (with passDev: the node may not be open to it)
	userns    bool     // in a new user namespace, mapping root to root
	cgns      bool     // in a new cgroup namespace rooted at its cgroup
	passDev   bool     // inherit the parent's /dev/greenboost as fd 3
	sock      *os.File // inherited as fd 4
	args      []string // "serve" by default
}

// child is a running helper.
type child struct {
	t      *T
	cmd    *exec.Cmd
	stdin  *os.File
	out    *bufio.Scanner
	stderr *bytes.Buffer
	name   string
}

func startChild(t *T, name string, o childOpts) *child {
	args := o.args
	if args == nil {
		args = []string{"serve"}
	}
	cmd := exec.Command("/proc/self/exe", append([]string{"child"}, args...)...)
	cmd.Env = []string{"PATH=/bin"}
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// CLONE_INTO_CGROUP is for cgroup2; a v1 helper is moved after it
	// starts, before it gets any request.
	if o.cgroupDir != "" && cgLayout.hierarchy == kmod.HierarchyV2 {
		f, err := os.Open(o.cgroupDir)
		t.Check(err, "open cgroup "+o.cgroupDir)
		defer f.Close()
		attr.UseCgroupFD = true
		attr.CgroupFD = int(f.Fd())
	}
	if o.uid != 0 {
		attr.Credential = &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.uid)}
	}
	if o.userns {
		attr.Cloneflags = syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	}
	if o.cgns {
		// with CLONE_INTO_CGROUP, the namespace's root is cgroupDir
		attr.Cloneflags |= syscall.CLONE_NEWCGROUP
	}
	cmd.SysProcAttr = attr
	if o.passDev {
		// a duplicate: the os.File closes its descriptor when collected
		fd, err := unix.FcntlInt(uintptr(devFD(t)), unix.F_DUPFD_CLOEXEC, 3)
		t.Check(err, "dup /dev/greenboost")
		f := os.NewFile(uintptr(fd), "/dev/greenboost")
		defer f.Close()
		cmd.ExtraFiles = []*os.File{f}
		cmd.Env = append(cmd.Env, "GB_DEVFD=3")
	}
	if o.sock != nil {
		if len(cmd.ExtraFiles) == 0 {
			null, err := os.Open("/dev/null")
			t.Check(err, "open /dev/null")
			defer null.Close()
			cmd.ExtraFiles = []*os.File{null}
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, o.sock)
	}
	stdinR, stdinW, err := os.Pipe()
	t.Check(err, "pipe")
	stdoutR, stdoutW, err := os.Pipe()
	t.Check(err, "pipe")
	c := &child{t: t, cmd: cmd, stdin: stdinW, stderr: &bytes.Buffer{}, name: name}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", name, err)
	}
	stdinR.Close()
	stdoutW.Close()
	if o.cgroupDir != "" && cgLayout.hierarchy != kmod.HierarchyV2 {
		pid := []byte(strconv.Itoa(cmd.Process.Pid))
		t.Check(os.WriteFile(filepath.Join(o.cgroupDir, "cgroup.procs"), pid, 0o644), "move helper "+name+" into "+o.cgroupDir)
	}
	c.out = bufio.NewScanner(stdoutR)
	c.out.Buffer(make([]byte, 1<<16), 8<<20)
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	return c
}

// do runs one request and returns the answer; a broken helper fails the case.
func (c *child) do(req request) response {
	b, _ := json.Marshal(req)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("helper %s: write %s: %v (stderr: %s)", c.name, req.Op, err, c.stderr)
	}
	if !c.out.Scan() {
		c.t.Fatalf("helper %s: no answer to %s: %v (stderr: %s)", c.name, req.Op, c.out.Err(), c.stderr)
	}
	var resp response
	if err := json.Unmarshal(c.out.Bytes(), &resp); err != nil {
		c.t.Fatalf("helper %s: bad answer to %s: %v", c.name, req.Op, err)
	}
	return resp
}

// must runs a request that has to succeed.
func (c *child) must(req request) response {
	r := c.do(req)
	if r.Errno != 0 {
		c.t.Fatalf("helper %s: %s: %s", c.name, req.Op, r.Err)
	}
	return r
}

// alloc allocates in the helper and returns its fd.
func (c *child) alloc(size uint64) int {
	return c.must(request{Op: "alloc", Size: size}).FD
}

// exit ends the helper without closing anything and waits for it.
func (c *child) exit() {
	b, _ := json.Marshal(request{Op: "exit"})
	c.stdin.Write(append(b, '\n'))
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		c.t.Errorf("helper %s exited: %v (stderr: %s)", c.name, err, c.stderr)
	}
}

// wait waits for a helper started with other args than serve; it returns
// its stdout.
func (c *child) wait() (string, error) {
	c.stdin.Close()
	var out strings.Builder
	for c.out.Scan() {
		out.WriteString(c.out.Text() + "\n")
	}
	err := c.cmd.Wait()
	if err != nil {
		err = fmt.Errorf("%v (stderr: %s)", err, strings.TrimSpace(c.stderr.String()))
	}
	return out.String(), err
}

func itoa(n int) string { return strconv.Itoa(n) }
