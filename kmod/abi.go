// Package kmod loads the greenboost kernel module, finds or creates its
// device node, and talks to it through the ioctl ABI of
// kmod/module/greenboost_ioctl.h.
//
// The structs in this file mirror the C header field by field with fixed-size
// types and no implicit padding; abi_test.go compiles the header and checks
// every size and ioctl number against these definitions.
package kmod

import "unsafe"

// Linux asm-generic ioctl encoding (x86, arm64, riscv: not alpha/mips/ppc/sparc).
const (
	iocNRBits   = 8
	iocTypeBits = 8
	iocSizeBits = 14

	iocNRShift   = 0
	iocTypeShift = iocNRShift + iocNRBits
	iocSizeShift = iocTypeShift + iocTypeBits
	iocDirShift  = iocSizeShift + iocSizeBits

	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<iocDirShift | typ<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift
}

// ioR, ioW and ioWR are the kernel's _IOR, _IOW and _IOWR.
func ioR(typ, nr, size uintptr) uintptr  { return ioc(iocRead, typ, nr, size) }
func ioW(typ, nr, size uintptr) uintptr  { return ioc(iocWrite, typ, nr, size) }
func ioWR(typ, nr, size uintptr) uintptr { return ioc(iocRead|iocWrite, typ, nr, size) }

// Magic is GB_IOCTL_MAGIC.
const Magic = 'G'

// Allocation flags (gb_alloc_req.flags, gb_pin_req.flags). Only
// AllocNoHugepage changes what the module does; the others are hints.
const (
	AllocWeights          uint32 = 1 << 0
	AllocKVCache          uint32 = 1 << 1
	AllocActivations      uint32 = 1 << 2
	AllocFrozen           uint32 = 1 << 3
	AllocNoHugepage       uint32 = 1 << 4
	AllocT1Priority       uint32 = 1 << 5
	AllocSessionProtected uint32 = 1 << 7
	AllocFlagsMask        uint32 = 0xbf
)

// AllocReq is struct gb_alloc_req.
type AllocReq struct {
	Size  uint64 // in: bytes
	FD    int32  // out: DMA-BUF fd
	Flags uint32 // in: Alloc*
}

// Info is struct gb_info (136 bytes); sizes in MiB.
type Info struct {
	VRAMPhysicalMB    uint64
	TotalRAMMB        uint64
	FreeRAMMB         uint64
	AllocatedMB       uint64
	MaxPoolMB         uint64
	SafetyReserveMB   uint64
	AvailableMB       uint64
	ActiveBuffers     uint32
	OOMActive         uint32
	NVMeSwapTotalMB   uint64
	NVMeSwapUsedMB    uint64
	NVMeSwapFreeMB    uint64
	NVMeT3AllocatedMB uint64
	SwapPressure      uint32
	KVReserveMB       uint32
	KVUsedMB          uint32
	KVT2MB            uint32
	T2Pressure        uint32
	PhaseResetSeq     uint32
	GamingMode        uint32
	Pad0              uint32
	TotalCombinedMB   uint64
}

// Pressure levels of Info.SwapPressure and Info.T2Pressure.
const (
	PressureOK       = 0
	PressureWarn     = 1
	PressureCritical = 2
)

// PinReq is struct gb_pin_req.
type PinReq struct {
	VAddr uint64 // in: page aligned
	Size  uint64 // in: bytes, rounded up to pages
	FD    int32  // out: DMA-BUF fd
	Flags uint32 // in: Alloc*
}

// PoolCapReq is struct gb_pool_cap_req.
type PoolCapReq struct {
	CapMB  uint64 // in
	PrevMB uint64 // out
}

// PoolInfoV3 is struct gb_pool_info_v3 (88 bytes); sizes in MiB.
type PoolInfoV3 struct {
	T1PhysicalMB        uint64
	T1NVLinkTotalMB     uint64
	T2TotalMB           uint64
	T2UsedMB            uint64
	T2AvailableMB       uint64
	T3TotalMB           uint64
	T3UsedMB            uint64
	NVLinkReady         uint32
	ComputeDomainActive uint32
	WatchdogPressure    uint32
	ActiveBuffers       uint32
	OOMActive           uint32
	GPUCount            uint32
	KVReserveMB         uint32
	Pad                 uint32
}

// ReleasePIDReq is struct gb_release_pid_req.
type ReleasePIDReq struct {
	PID uint32
	Pad uint32 // must be 0
}

// T3CapReq is struct gb_t3_cap_req.
type T3CapReq struct {
	CapMB  uint64 // in, 0 = disk limited
	PrevMB uint64 // out
}

// Cgroup ABI constants.
const (
	CgABIVersion uint32 = 1
	// Unlimited is GB_CG_UNLIMITED: no limit.
	Unlimited = ^uint64(0)

	HierarchyV2       uint32 = 0 // cgroup v2; id = inode of the cgroup2 directory
	HierarchyV1Memory uint32 = 1 // the v1 memory hierarchy

	CgFlagT2         uint32 = 1 << 0 // SET_LIMIT: apply T2Max
	CgFlagT3         uint32 = 1 << 1 // SET_LIMIT: apply T3Max
	CgFlagSelf       uint32 = 1 << 2 // GET_USAGE: the caller's own cgroup
	CgFlagRecursive  uint32 = 1 << 3 // RELEASE: descendants too
	CgFlagFailIfBusy uint32 = 1 << 4 // RELEASE: EBUSY if bytes still live

	CgNodeHasLimit     uint32 = 1 << 0
	CgNodeReleased     uint32 = 1 << 1
	CgNodeAlive        uint32 = 1 << 2
	CgNodeAliveUnknown uint32 = 1 << 3

	CgFeatT2 uint64 = 1 << 0 // T2 bytes are charged
	CgFeatT3 uint64 = 1 << 1 // a T3 store is configured
)

// CgQuery is struct gb_cg_query (32 bytes).
type CgQuery struct {
	Size       uint32
	ABIVersion uint32 // out
	Hierarchy  uint32 // out
	Level      uint32 // out: 0 = root
	CgroupID   uint64 // out
	Features   uint64 // out: CgFeat*
}

// CgLimit is struct gb_cg_limit (56 bytes).
type CgLimit struct {
	Size      uint32
	Flags     uint32 // CgFlagT2 | CgFlagT3
	Hierarchy uint32
	Reserved0 uint32
	CgroupID  uint64
	T2Max     uint64 // in, Unlimited = no limit
	T3Max     uint64 // in
	PrevT2Max uint64 // out
	PrevT3Max uint64 // out
}

// CgUsage is struct gb_cg_usage (96 bytes).
type CgUsage struct {
	Size           uint32
	Flags          uint32 // CgFlagSelf
	Hierarchy      uint32
	Reserved0      uint32
	CgroupID       uint64 // in; out with CgFlagSelf
	T2Usage        uint64
	T3Usage        uint64
	T2Max          uint64
	T3Max          uint64
	T2EffectiveMax uint64
	T3EffectiveMax uint64
	T2Failcnt      uint64
	T3Failcnt      uint64
	NrBuffers      uint32
	NodeFlags      uint32 // CgNode*
}

// CgRelease is struct gb_cg_release (48 bytes).
type CgRelease struct {
	Size            uint32
	Flags           uint32 // CgFlagRecursive | CgFlagFailIfBusy
	Hierarchy       uint32
	Reserved0       uint32
	CgroupID        uint64
	T2Live          uint64 // out
	T3Live          uint64 // out
	NrLiveBuffers   uint32 // out
	NrNodesReleased uint32 // out
}

// CgEntry is struct gb_cg_entry (56 bytes), one node in a CG_LIST answer.
type CgEntry struct {
	CgroupID  uint64
	T2Usage   uint64
	T3Usage   uint64
	T2Max     uint64
	T3Max     uint64
	Hierarchy uint32
	NodeFlags uint32 // CgNode*
	NrBuffers uint32
	Level     uint32
}

// CgList is struct gb_cg_list (40 bytes).
type CgList struct {
	Size         uint32
	Flags        uint32 // must be 0
	EntrySize    uint32 // >= sizeof(CgEntry)
	MaxEntries   uint32
	EntriesPtr   uint64 // user pointer to MaxEntries*EntrySize bytes
	StartAfterID uint64
	NrEntries    uint32 // out
	NrTotal      uint32 // out
}

// Ioctl request numbers.
var (
	IoctlAlloc         = ioWR(Magic, 1, unsafe.Sizeof(AllocReq{}))
	IoctlGetInfo       = ioR(Magic, 2, unsafe.Sizeof(Info{}))
	IoctlPinUserPtr    = ioWR(Magic, 8, unsafe.Sizeof(PinReq{}))
	IoctlSetPoolCap    = ioWR(Magic, 11, unsafe.Sizeof(PoolCapReq{}))
	IoctlGetPoolInfoV3 = ioR(Magic, 14, unsafe.Sizeof(PoolInfoV3{}))
	IoctlReleasePID    = ioW(Magic, 16, unsafe.Sizeof(ReleasePIDReq{}))
	IoctlSetT3Cap      = ioWR(Magic, 17, unsafe.Sizeof(T3CapReq{}))

	IoctlCgQuery    = ioWR(Magic, 27, unsafe.Sizeof(CgQuery{}))
	IoctlCgSetLimit = ioWR(Magic, 28, unsafe.Sizeof(CgLimit{}))
	IoctlCgGetUsage = ioWR(Magic, 29, unsafe.Sizeof(CgUsage{}))
	IoctlCgRelease  = ioWR(Magic, 30, unsafe.Sizeof(CgRelease{}))
	IoctlCgList     = ioWR(Magic, 31, unsafe.Sizeof(CgList{}))
)

// DMA-BUF uapi (linux/dma-buf.h): DMA_BUF_IOCTL_SYNC and its flags, for
// mapping a buffer from user space.
const (
	DMABufSyncRead  uint64 = 1 << 0
	DMABufSyncWrite uint64 = 2 << 0
	DMABufSyncRW    uint64 = DMABufSyncRead | DMABufSyncWrite
	DMABufSyncStart uint64 = 0 << 2
	DMABufSyncEnd   uint64 = 1 << 2
)

// DMABufSync is struct dma_buf_sync.
type DMABufSync struct{ Flags uint64 }

// IoctlDMABufSync is DMA_BUF_IOCTL_SYNC = _IOW('b', 0, struct dma_buf_sync).
var IoctlDMABufSync = ioW('b', 0, unsafe.Sizeof(DMABufSync{}))
