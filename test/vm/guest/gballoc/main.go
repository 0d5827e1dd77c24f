// Command gballoc is the in-container allocator of the VM integration tests
// and the demo (test/vm): a static program that allocates from
// /dev/greenboost the way the preload library would, and prints what the
// module answered. Lines starting with "GBALLOC " are for the test to parse
// (key=value fields); the others are for people.
//
//	gballoc alloc [-step 8M] [-max 512M] [-hold]   allocate until an error
//	gballoc probe                                   the device and own cgroup
//	gballoc userns                                  what a namespaced root may do
//
// With -hold it keeps the buffers until SIGUSR1 or SIGTERM, so the host can
// look at the usage while the container runs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

const miB = 1 << 20

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gballoc alloc|probe|userns [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "alloc":
		err = allocCmd(os.Args[2:])
	case "probe":
		err = probeCmd()
	case "userns":
		err = usernsCmd()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Printf("GBALLOC error msg=%q\n", err.Error())
		os.Exit(1)
	}
}

// errnoName returns the symbolic errno of err ("EDQUOT"), "0" for nil.
func errnoName(err error) string {
	if err == nil {
		return "0"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return strconv.Itoa(int(e))
	}
	return "EUNKNOWN"
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "M"):
		mult, s = miB, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n * mult, err
}

func mib(b uint64) string {
	if b%miB == 0 {
		return fmt.Sprintf("%d MiB", b/miB)
	}
	return fmt.Sprintf("%d bytes", b)
}

func allocCmd(args []string) error {
	fs := flag.NewFlagSet("alloc", flag.ContinueOnError)
	stepS := fs.String("step", "8M", "allocation size")
	maxS := fs.String("max", "512M", "stop after this much even without an error")
	hold := fs.Bool("hold", false, "keep the buffers until SIGUSR1/SIGTERM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	step, err := parseSize(*stepS)
	if err != nil || step == 0 {
		return fmt.Errorf("bad -step %q", *stepS)
	}
	limit, err := parseSize(*maxS)
	if err != nil {
		return fmt.Errorf("bad -max %q", *maxS)
	}
	// Ask for the signal before anything can be seen by the host.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)

	dev, err := kmod.Open("")
	if err != nil {
		return err
	}
	defer dev.Close()
	q, err := dev.Query()
	if err != nil {
		return err
	}
	fmt.Printf("gballoc: /dev/greenboost open, my cgroup is %s; allocating in %s steps\n",
		kmod.Cgroup{Hierarchy: q.Hierarchy, ID: q.CgroupID}, mib(step))
	var fds []int
	var total uint64
	var allocErr error
	for total+step <= limit {
		fd, err := dev.Alloc(step, 0)
		if err != nil {
			allocErr = err
			break
		}
		fds = append(fds, fd)
		total += step
		fmt.Printf("gballoc: allocated %s (total %s)\n", mib(step), mib(total))
	}
	if allocErr != nil {
		var e unix.Errno
		errors.As(allocErr, &e)
		fmt.Printf("gballoc: allocating %s more failed: %s (%v)\n", mib(step), errnoName(allocErr), e)
	} else {
		fmt.Printf("gballoc: stopped at -max %s without an error\n", mib(limit))
	}
	u, uerr := dev.Usage(kmod.Cgroup{}, true)
	fmt.Printf("GBALLOC result total=%d buffers=%d errno=%s cgroup=%d usage=%d usage_errno=%s limit=%d\n",
		total, len(fds), errnoName(allocErr), q.CgroupID, u.T2Usage, errnoName(uerr), u.T2Max)
	if *hold {
		fmt.Println("GBALLOC hold")
		s := <-sigs
		fmt.Printf("gballoc: got %v, freeing %d buffer(s)\n", s, len(fds))
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	fmt.Println("GBALLOC done")
	return nil
}

// probeCmd describes /dev/greenboost as the container sees it.
func probeCmd() error {
	var st unix.Stat_t
	if err := unix.Stat(kmod.DefaultDevicePath, &st); err != nil {
		fmt.Printf("GBALLOC probe dev=absent errno=%s\n", errnoName(err))
		return nil
	}
	kind := "other"
	if st.Mode&unix.S_IFMT == unix.S_IFCHR {
		kind = "char"
	}
	dev, err := kmod.Open("")
	if err != nil {
		fmt.Printf("GBALLOC probe dev=%s rdev=%d:%d open=%s\n", kind, unix.Major(st.Rdev), unix.Minor(st.Rdev), errnoName(err))
		return nil
	}
	defer dev.Close()
	q, qerr := dev.Query()
	fmt.Printf("GBALLOC probe dev=%s rdev=%d:%d open=0 query=%s abi=%d cgroup=%d\n",
		kind, unix.Major(st.Rdev), unix.Minor(st.Rdev), errnoName(qerr), q.ABIVersion, q.CgroupID)
	return nil
}

// capEff returns the CapEff line of /proc/self/status.
func capEff() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// usernsCmd: root with every capability of its user namespace tries what
// only the initial namespace's CAP_SYS_ADMIN may do, and what anyone may.
func usernsCmd() error {
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	dev, err := kmod.Open("")
	if err != nil {
		return err
	}
	defer dev.Close()
	q, err := dev.Query()
	if err != nil {
		return err
	}
	self := kmod.Cgroup{Hierarchy: q.Hierarchy, ID: q.CgroupID}
	fd, aerr := dev.Alloc(8*miB, 0)
	if aerr == nil {
		defer unix.Close(fd)
	}
	u, uerr := dev.Usage(self, true)
	_, serr := dev.SetLimit(self, kmod.Unlimited, kmod.Unlimited)
	_, s2err := dev.SetLimit(self, 1<<40, kmod.Unlimited)
	_, rerr := dev.Release(self, 0)
	_, lerr := dev.List()
	fmt.Printf("GBALLOC userns uid=%d capeff=%s uidmap=%s cgroup=%d alloc=%s usage_errno=%s usage=%d limit=%d setlimit=%s setlimit_raise=%s release=%s list=%s\n",
		os.Getuid(), capEff(), strings.Join(strings.Fields(string(uidMap)), ":"), q.CgroupID,
		errnoName(aerr), errnoName(uerr), u.T2Usage, u.T2Max, errnoName(serr), errnoName(s2err), errnoName(rerr), errnoName(lerr))
	return nil
}
