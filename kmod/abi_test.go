package kmod

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// abiStructs lists every struct of greenboost_ioctl.h with its Go mirror and
// the C field names in Go field order.
var abiStructs = []struct {
	c      string
	goType reflect.Type
	fields []string
}{
	{"gb_alloc_req", reflect.TypeFor[AllocReq](), []string{"size", "fd", "flags"}},
	{"gb_info", reflect.TypeFor[Info](), []string{"vram_physical_mb", "total_ram_mb", "free_ram_mb",
		"allocated_mb", "max_pool_mb", "safety_reserve_mb", "available_mb", "active_buffers",
		"oom_active", "nvme_swap_total_mb", "nvme_swap_used_mb", "nvme_swap_free_mb",
		"nvme_t3_allocated_mb", "swap_pressure", "kv_reserve_mb", "kv_used_mb", "kv_t2_mb",
		"t2_pressure", "phase_reset_seq", "gaming_mode", "_pad0", "total_combined_mb"}},
	{"gb_pin_req", reflect.TypeFor[PinReq](), []string{"vaddr", "size", "fd", "flags"}},
	{"gb_pool_cap_req", reflect.TypeFor[PoolCapReq](), []string{"cap_mb", "prev_mb"}},
	{"gb_pool_info_v3", reflect.TypeFor[PoolInfoV3](), []string{"t1_physical_mb",
		"t1_nvlink_total_mb", "t2_total_mb", "t2_used_mb", "t2_available_mb", "t3_total_mb",
		"t3_used_mb", "nvlink_ready", "compute_domain_active", "watchdog_pressure",
		"active_buffers", "oom_active", "gpu_count", "kv_reserve_mb", "_pad"}},
	{"gb_release_pid_req", reflect.TypeFor[ReleasePIDReq](), []string{"pid", "_pad"}},
	{"gb_t3_cap_req", reflect.TypeFor[T3CapReq](), []string{"cap_mb", "prev_mb"}},
	{"gb_cg_query", reflect.TypeFor[CgQuery](), []string{"size", "abi_version", "hierarchy",
		"level", "cgroup_id", "features"}},
	{"gb_cg_limit", reflect.TypeFor[CgLimit](), []string{"size", "flags", "hierarchy",
		"reserved0", "cgroup_id", "t2_max_bytes", "t3_max_bytes", "prev_t2_max_bytes",
		"prev_t3_max_bytes"}},
	{"gb_cg_usage", reflect.TypeFor[CgUsage](), []string{"size", "flags", "hierarchy",
		"reserved0", "cgroup_id", "t2_usage_bytes", "t3_usage_bytes", "t2_max_bytes",
		"t3_max_bytes", "t2_effective_max_bytes", "t3_effective_max_bytes", "t2_failcnt",
		"t3_failcnt", "nr_buffers", "node_flags"}},
	{"gb_cg_release", reflect.TypeFor[CgRelease](), []string{"size", "flags", "hierarchy",
		"reserved0", "cgroup_id", "t2_live_bytes", "t3_live_bytes", "nr_live_buffers",
		"nr_nodes_released"}},
	{"gb_cg_entry", reflect.TypeFor[CgEntry](), []string{"cgroup_id", "t2_usage_bytes",
		"t3_usage_bytes", "t2_max_bytes", "t3_max_bytes", "hierarchy", "node_flags",
		"nr_buffers", "level"}},
	{"gb_cg_list", reflect.TypeFor[CgList](), []string{"size", "flags", "entry_size",
		"max_entries", "entries_ptr", "start_after_id", "nr_entries", "nr_total"}},
	{"dma_buf_sync", reflect.TypeFor[DMABufSync](), []string{"flags"}},
}

// abiConstants maps C macros to the Go values that mirror them.
var abiConstants = map[string]uint64{
	"GB_IOCTL_MAGIC":             Magic,
	"GB_ALLOC_WEIGHTS":           uint64(AllocWeights),
	"GB_ALLOC_KV_CACHE":          uint64(AllocKVCache),
	"GB_ALLOC_ACTIVATIONS":       uint64(AllocActivations),
	"GB_ALLOC_FROZEN":            uint64(AllocFrozen),
	"GB_ALLOC_NO_HUGEPAGE":       uint64(AllocNoHugepage),
	"GB_ALLOC_T1_PRIORITY":       uint64(AllocT1Priority),
	"GB_ALLOC_SESSION_PROTECTED": uint64(AllocSessionProtected),
	"GB_ALLOC_FLAGS_MASK":        uint64(AllocFlagsMask),
	"GB_SWAP_PRESSURE_OK":        PressureOK,
	"GB_SWAP_PRESSURE_WARN":      PressureWarn,
	"GB_SWAP_PRESSURE_CRITICAL":  PressureCritical,
	"GB_T2_PRESSURE_OK":          PressureOK,
	"GB_T2_PRESSURE_WARN":        PressureWarn,
	"GB_T2_PRESSURE_CRITICAL":    PressureCritical,
	"GB_CG_ABI_VERSION":          uint64(CgABIVersion),
	"GB_CG_UNLIMITED":            Unlimited,
	"GB_CG_HIER_V2":              uint64(HierarchyV2),
	"GB_CG_HIER_V1_MEMORY":       uint64(HierarchyV1Memory),
	"GB_CG_F_T2":                 uint64(CgFlagT2),
	"GB_CG_F_T3":                 uint64(CgFlagT3),
	"GB_CG_F_SELF":               uint64(CgFlagSelf),
	"GB_CG_F_RECURSIVE":          uint64(CgFlagRecursive),
	"GB_CG_F_FAIL_IF_BUSY":       uint64(CgFlagFailIfBusy),
	"GB_CG_NODE_HAS_LIMIT":       uint64(CgNodeHasLimit),
	"GB_CG_NODE_RELEASED":        uint64(CgNodeReleased),
	"GB_CG_NODE_ALIVE":           uint64(CgNodeAlive),
	"GB_CG_NODE_ALIVE_UNKNOWN":   uint64(CgNodeAliveUnknown),
	"GB_CG_FEAT_T2":              CgFeatT2,
	"GB_CG_FEAT_T3":              CgFeatT3,
	"GB_CG_QUERY_SIZE_VER0":      32,
	"GB_CG_LIMIT_SIZE_VER0":      56,
	"GB_CG_USAGE_SIZE_VER0":      96,
	"GB_CG_RELEASE_SIZE_VER0":    48,
	"GB_CG_ENTRY_SIZE_VER0":      56,
	"GB_CG_LIST_SIZE_VER0":       40,
	"DMA_BUF_SYNC_READ":          DMABufSyncRead,
	"DMA_BUF_SYNC_WRITE":         DMABufSyncWrite,
	"DMA_BUF_SYNC_RW":            DMABufSyncRW,
	"DMA_BUF_SYNC_START":         DMABufSyncStart,
	"DMA_BUF_SYNC_END":           DMABufSyncEnd,
	// ioctl numbers
	"GB_IOCTL_ALLOC":            uint64(IoctlAlloc),
	"GB_IOCTL_GET_INFO":         uint64(IoctlGetInfo),
	"GB_IOCTL_PIN_USER_PTR":     uint64(IoctlPinUserPtr),
	"GB_IOCTL_SET_POOL_CAP":     uint64(IoctlSetPoolCap),
	"GB_IOCTL_GET_POOL_INFO_V3": uint64(IoctlGetPoolInfoV3),
	"GB_IOCTL_RELEASE_PID":      uint64(IoctlReleasePID),
	"GB_IOCTL_SET_T3_CAP":       uint64(IoctlSetT3Cap),
	"GB_IOCTL_CG_QUERY":         uint64(IoctlCgQuery),
	"GB_IOCTL_CG_SET_LIMIT":     uint64(IoctlCgSetLimit),
	"GB_IOCTL_CG_GET_USAGE":     uint64(IoctlCgGetUsage),
	"GB_IOCTL_CG_RELEASE":       uint64(IoctlCgRelease),
	"GB_IOCTL_CG_LIST":          uint64(IoctlCgList),
	"DMA_BUF_IOCTL_SYNC":        uint64(IoctlDMABufSync),
}

// TestABIMatchesHeader compiles a C program against the module's header and
// compares every struct size, field offset, constant and ioctl number with
// the Go mirrors.
func TestABIMatchesHeader(t *testing.T) {
	header, err := filepath.Abs(filepath.Join("module", "greenboost_ioctl.h"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(header); err != nil {
		t.Fatalf("the C header the Go ABI mirrors is missing: %v", err)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Fatalf("a C compiler is needed to check the ABI against %s: %v (apt-get install gcc)", header, err)
	}

	var src strings.Builder
	fmt.Fprintf(&src, "#include <stdio.h>\n#include <stddef.h>\n#include <linux/dma-buf.h>\n#include %q\n", header)
	src.WriteString("int main(void)\n{\n")
	for _, s := range abiStructs {
		fmt.Fprintf(&src, "\tprintf(\"sizeof.%s %%zu\\n\", sizeof(struct %s));\n", s.c, s.c)
		for _, f := range s.fields {
			fmt.Fprintf(&src, "\tprintf(\"offsetof.%s.%s %%zu\\n\", offsetof(struct %s, %s));\n", s.c, f, s.c, f)
			fmt.Fprintf(&src, "\tprintf(\"sizeof.%s.%s %%zu\\n\", sizeof(((struct %s *)0)->%s));\n", s.c, f, s.c, f)
		}
	}
	for name := range abiConstants {
		fmt.Fprintf(&src, "\tprintf(\"%s %%llu\\n\", (unsigned long long)(%s));\n", name, name)
	}
	src.WriteString("\treturn 0;\n}\n")

	dir := t.TempDir()
	cfile := filepath.Join(dir, "abi.c")
	bin := filepath.Join(dir, "abi")
	if err := os.WriteFile(cfile, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-std=gnu11", "-Wall", "-Werror", "-o", bin, cfile).CombinedOutput(); err != nil {
		t.Fatalf("compile the ABI probe against %s: %v\n%s", header, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run the ABI probe: %v", err)
	}
	got := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("bad probe line %q", sc.Text())
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("bad probe line %q: %v", sc.Text(), err)
		}
		got[k] = n
	}

	for _, s := range abiStructs {
		if g, c := uint64(s.goType.Size()), got["sizeof."+s.c]; g != c {
			t.Errorf("struct %s: C sizeof %d, Go %s %d", s.c, c, s.goType.Name(), g)
		}
		if s.goType.NumField() != len(s.fields) {
			t.Errorf("struct %s: %d C fields listed, Go %s has %d", s.c, len(s.fields), s.goType.Name(), s.goType.NumField())
			continue
		}
		var end uintptr
		for i, f := range s.fields {
			gf := s.goType.Field(i)
			if gf.Offset != end {
				t.Errorf("Go %s.%s: implicit padding before it (offset %d, previous field ends at %d)", s.goType.Name(), gf.Name, gf.Offset, end)
			}
			end = gf.Offset + gf.Type.Size()
			if c := got["offsetof."+s.c+"."+f]; uint64(gf.Offset) != c {
				t.Errorf("struct %s.%s: C offset %d, Go %s.%s offset %d", s.c, f, c, s.goType.Name(), gf.Name, gf.Offset)
			}
			if c := got["sizeof."+s.c+"."+f]; uint64(gf.Type.Size()) != c {
				t.Errorf("struct %s.%s: C size %d, Go %s.%s size %d", s.c, f, c, s.goType.Name(), gf.Name, gf.Type.Size())
			}
		}
		if end != s.goType.Size() {
			t.Errorf("Go %s: implicit tail padding (%d bytes of fields, size %d)", s.goType.Name(), end, s.goType.Size())
		}
	}
	for name, g := range abiConstants {
		c, ok := got[name]
		if !ok {
			t.Errorf("%s: not printed by the probe", name)
			continue
		}
		if c != g {
			t.Errorf("%s: C %#x, Go %#x", name, c, g)
		}
	}
}

// TestIoctlEncoding checks the _IOC helpers against numbers computed by hand.
func TestIoctlEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"_IOWR('G', 27, 32)", ioWR('G', 27, 32), 0xc020471b},
		{"_IOR('G', 2, 136)", ioR('G', 2, 136), 0x80884702},
		{"_IOW('b', 0, 8)", ioW('b', 0, 8), 0x40086200},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}
