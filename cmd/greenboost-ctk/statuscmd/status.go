// Package statuscmd is `greenboost-ctk status` and `greenboost-ctk gc`.
package statuscmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// Module describes the loaded module. Every field is always in the JSON
// (scripts read a fixed schema): Version and Hierarchy are "" when not
// known, Unavailable is "" when the module could be read.
type Module struct {
	Loaded      bool   `json:"loaded"`
	Version     string `json:"version"`
	Device      string `json:"device"`
	Hierarchy   string `json:"cgroup_hierarchy"`
	T2TotalMB   uint64 `json:"t2_total_mb"`
	T2UsedMB    uint64 `json:"t2_used_mb"`
	T3TotalMB   uint64 `json:"t3_total_mb"`
	T3UsedMB    uint64 `json:"t3_used_mb"`
	Buffers     uint32 `json:"buffers"`
	Unavailable string `json:"unavailable"`
}

// Status is the whole report.
type Status struct {
	Module     Module                `json:"module"`
	Containers []hook.ContainerUsage `json:"containers"`
	// UnclaimedNodes are module nodes no record names (for example cgroups
	// limited by hand, or records lost with /run).
	UnclaimedNodes []Node `json:"unclaimed_nodes"`
}

// Node is a module accounting node; limits in bytes, 0 = unlimited.
type Node struct {
	Hierarchy uint32 `json:"hierarchy"`
	ID        uint64 `json:"id"`
	T2Used    uint64 `json:"t2_used_bytes"`
	T2Limit   uint64 `json:"t2_limit_bytes"`
	T3Used    uint64 `json:"t3_used_bytes"`
	T3Limit   uint64 `json:"t3_limit_bytes"`
	Buffers   uint32 `json:"buffers"`
	Alive     bool   `json:"alive"`
	Released  bool   `json:"released"`
}

func newNode(e kmod.CgEntry) Node {
	return Node{
		Hierarchy: e.Hierarchy, ID: e.CgroupID,
		T2Used: e.T2Usage, T2Limit: hook.LimitFromKernel(e.T2Max),
		T3Used: e.T3Usage, T3Limit: hook.LimitFromKernel(e.T3Max),
		Buffers:  e.NrBuffers,
		Alive:    e.NodeFlags&kmod.CgNodeAlive != 0,
		Released: e.NodeFlags&kmod.CgNodeReleased != 0,
	}
}

// NewStatus returns the status command.
func NewStatus() *cli.Command {
	var asJSON bool
	return &cli.Command{
		Name:  "status",
		Usage: "show the module, its pools and each container's usage and budgets",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts", Destination: &asJSON}},
		Action: func(c *cli.Context) error {
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			st, err := collectStatus(cfg, c.App.ErrWriter)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(c.App.Writer, st)
			return nil
		},
	}
}

// collectStatus gathers the report; files in the record dir it cannot use
// are named on warn, one line each.
func collectStatus(cfg *config.Config, warn io.Writer) (*Status, error) {
	recs, leftOut, err := hook.ReadRecords(cfg.Hook.StateDir)
	if err != nil {
		// An empty list would say that nothing is held.
		return nil, fmt.Errorf("reading the records of %s: %w", cfg.Hook.StateDir, err)
	}
	// One bad record must not hide the module and the other containers.
	for _, e := range splitErrors(leftOut) {
		fmt.Fprintf(warn, "greenboost-ctk: warning: record left out: %v\n", e)
	}
	st := &Status{Module: Module{Device: cfg.Device.HostPath}, UnclaimedNodes: []Node{}}
	dev, err := kmod.OpenLoaded(cfg.Device.HostPath)
	var nodes []kmod.CgEntry
	switch {
	case err != nil:
		st.Module.Loaded = true
		st.Module.Unavailable = err.Error()
	case dev == nil:
		st.Module.Unavailable = "module not loaded"
	default:
		defer dev.Close()
		st.Module.Loaded = true
		if v, err := os.ReadFile(kmod.SysModule + "/version"); err == nil {
			st.Module.Version = strings.TrimSpace(string(v))
		}
		q, err := dev.Query()
		if hook.LacksCgroupABI(err) {
			// An upstream module, or another driver at the path: it holds
			// no budgets and lists no nodes, but the records still show.
			st.Module.Unavailable = fmt.Sprintf("%s is not a GreenBoost module with the cgroup ABI (an upstream module?), so no budget is enforced: %v", cfg.Device.HostPath, err)
			break
		}
		if err == nil {
			st.Module.Hierarchy = map[uint32]string{kmod.HierarchyV2: "v2", kmod.HierarchyV1Memory: "v1-memory"}[q.Hierarchy]
		}
		pool, err := dev.PoolInfoV3()
		if err != nil {
			return nil, err
		}
		st.Module.T2TotalMB, st.Module.T2UsedMB = pool.T2TotalMB, pool.T2UsedMB
		st.Module.T3TotalMB, st.Module.T3UsedMB = pool.T3TotalMB, pool.T3UsedMB
		st.Module.Buffers = pool.ActiveBuffers
		if nodes, err = dev.List(); err != nil {
			if errors.Is(err, unix.EPERM) {
				return nil, fmt.Errorf("%w: the module lists containers' budgets only to CAP_SYS_ADMIN: run greenboost-ctk status as root", err)
			}
			return nil, err
		}
	}
	var orphans []kmod.CgEntry
	st.Containers, orphans = hook.JoinUsage(recs, nodes)
	for _, n := range orphans {
		st.UnclaimedNodes = append(st.UnclaimedNodes, newNode(n))
	}
	return st, nil
}

// splitErrors returns the errors errors.Join put together, err itself when
// it is a single one, none for nil.
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	return []error{err}
}

func printStatus(out io.Writer, st *Status) {
	m := st.Module
	switch {
	case !m.Loaded:
		fmt.Fprintf(out, "Module:  not loaded (device %s)\n", m.Device)
	case m.Unavailable != "":
		fmt.Fprintf(out, "Module:  loaded, unavailable: %s\n", m.Unavailable)
	default:
		fmt.Fprintf(out, "Module:  greenboost %s loaded, device %s, cgroup hierarchy %s\n", m.Version, m.Device, m.Hierarchy)
		fmt.Fprintf(out, "Pools:   T2 (RAM) %d of %d MiB used, T3 (NVMe) %d of %d MiB used, %d buffer(s)\n",
			m.T2UsedMB, m.T2TotalMB, m.T3UsedMB, m.T3TotalMB, m.Buffers)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CONTAINER\tCGROUP\tT2 USED/LIMIT\tT3 USED/LIMIT\tBUFFERS\tSTATE")
	anyLost := false
	for _, c := range st.Containers {
		var state string
		switch {
		case c.Pending:
			state = "pending release"
		case c.Enforced:
			state = "enforced"
		case c.Lost:
			state, anyLost = budgetLost, true
		default:
			state = "NOT enforced"
		}
		fmt.Fprintf(w, "%s\t%s\t%s/%s\t%s/%s\t%d\t%s\n", shortID(c.ID), cgroupCell(c.Cgroup),
			bytes(c.T2Used), config.FormatSize(c.T2Limit), bytes(c.T3Used), config.FormatSize(c.T3Limit), c.Buffers, state)
	}
	for _, n := range st.UnclaimedNodes {
		fmt.Fprintf(w, "-\t%s\t%s/%s\t%s/%s\t%d\tno record\n", kmod.Cgroup{Hierarchy: n.Hierarchy, ID: n.ID},
			bytes(n.T2Used), config.FormatSize(n.T2Limit), bytes(n.T3Used), config.FormatSize(n.T3Limit), n.Buffers)
	}
	w.Flush()
	if anyLost {
		fmt.Fprintf(out, "\n%s: the module holds no budget for the container's cgroup (it was unloaded, reloaded or replaced after the container started), so none is enforced; restart the container to set it again\n", budgetLost)
	}
}

// cgroupCell names a container's cgroup, or "-" where its record has none
// (no device and enforce = false: the hook records without resolving it).
func cgroupCell(c hook.Cgroup) string {
	if c.ID == 0 && c.Path == "" {
		return "-"
	}
	return kmod.Cgroup{Hierarchy: c.Hierarchy, ID: c.ID}.String()
}

// budgetLost is the state of a container whose budget the module no longer
// holds (ContainerUsage.Lost).
const budgetLost = "budget lost"

// shortID is a container id's first 12 characters, as `docker ps` shows
// it, quoted where it holds anything but printable text: ids come from
// engines and users (crun takes control characters), and must not drive the
// terminal.
func shortID(id string) string {
	if r := []rune(id); len(r) > 12 {
		id = string(r[:12])
	}
	if !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(id)
	}
	return id
}

func bytes(b uint64) string {
	if b == 0 {
		return "0"
	}
	return config.FormatSize(b)
}

// NewGC returns the gc command.
func NewGC() *cli.Command {
	var asJSON bool
	var timeout time.Duration
	return &cli.Command{
		Name:  "gc",
		Usage: "release budgets and pools of containers that are gone, and drop their records",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts", Destination: &asJSON},
			&cli.DurationFlag{Name: "timeout", Value: hook.GCDeadline, Usage: "stop after this long", Destination: &timeout},
		},
		Before: func(c *cli.Context) error {
			// A deadline already past would do nothing and say little.
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: expected a duration above zero like 30s, 2m or 1m30s", timeout)
			}
			return nil
		},
		Action: func(c *cli.Context) error {
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			dev, err := kmod.OpenLoaded(cfg.Device.HostPath)
			if err != nil {
				return err
			}
			var k kmod.Kernel
			if dev != nil {
				defer dev.Close()
				k = dev
			}
			res, err := hook.Collect(cfg, k, time.Now().Add(timeout), true)
			// A file that is not a record greenboost-hook wrote is the
			// admin's to remove: name it, but do not fail the run (the timer
			// would fail every minute until then).
			for _, e := range res.LeftAlone {
				fmt.Fprintf(c.App.ErrWriter, "greenboost-ctk: warning: gc left a file alone: %v\n", e)
			}
			// Stopping at the deadline is no failure either (the next run
			// goes on), but what is left undone must not pass unnoticed.
			if res.Incomplete {
				fmt.Fprintf(c.App.ErrWriter, "greenboost-ctk: warning: gc stopped at its time limit (--timeout %s) before it was done; run it again, or with a longer --timeout\n", timeout)
			}
			// A failed run reports what it did; one that did nothing prints
			// nothing, as a summary of zeros would say that nothing is held.
			if err != nil && len(res.RecordsDropped)+len(res.NodesReleased)+len(res.Pending) == 0 {
				return err
			}
			if asJSON {
				if encErr := json.NewEncoder(c.App.Writer).Encode(res); encErr != nil {
					return encErr
				}
			} else {
				incomplete := ""
				if res.Incomplete {
					incomplete = " (incomplete: time limit reached)"
				}
				fmt.Fprintf(c.App.Writer, "gc: %d record(s) dropped, %d module node(s) released, %d pending%s\n",
					len(res.RecordsDropped), len(res.NodesReleased), len(res.Pending), incomplete)
			}
			return err
		},
	}
}
