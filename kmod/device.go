package kmod

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultDevicePath is where udev (or Ensure) puts the module's device node.
const DefaultDevicePath = "/dev/greenboost"

// Cgroup names a cgroup the way the module does: a hierarchy (HierarchyV2 or
// HierarchyV1Memory) and the inode number of its directory (see CgroupID).
type Cgroup struct {
	Hierarchy uint32
	ID        uint64
}

func (c Cgroup) String() string {
	switch c.Hierarchy {
	case HierarchyV2:
		return fmt.Sprintf("v2:%d", c.ID)
	case HierarchyV1Memory:
		return fmt.Sprintf("v1-memory:%d", c.ID)
	}
	return fmt.Sprintf("hierarchy%d:%d", c.Hierarchy, c.ID)
}

// Device is an open /dev/greenboost. Its methods may be called from several
// goroutines at once.
type Device struct {
	fd   int
	path string
}

// Open opens the greenboost device node (DefaultDevicePath when path is "").
func Open(path string) (*Device, error) {
	if path == "" {
		path = DefaultDevicePath
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open greenboost device %s: %w", path, err)
	}
	return &Device{fd: fd, path: path}, nil
}

// OpenLoaded opens the device node at path where the module is loaded; nil
// and no error where it is not (whatever node is at path then is not the
// module's to answer for).
func OpenLoaded(path string) (*Device, error) {
	if !Loaded() {
		return nil, nil
	}
	return Open(path)
}

// NewDevice wraps an already open device descriptor (for example one
// inherited from a parent process); Close closes it.
func NewDevice(fd int, path string) *Device {
	return &Device{fd: fd, path: path}
}

// Fd returns the device's file descriptor.
func (d *Device) Fd() int { return d.fd }

// Path returns the path the device was opened with.
func (d *Device) Path() string { return d.path }

// Close closes the device. Buffers allocated through it stay valid for as
// long as their DMA-BUF descriptors are open.
func (d *Device) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	if err != nil {
		return fmt.Errorf("close greenboost device %s: %w", d.path, err)
	}
	return nil
}

// ioctl issues one request; arg points at the request's struct. It retries
// on EINTR and returns the ioctl's non-negative result.
func (d *Device) ioctl(op string, req uintptr, arg unsafe.Pointer) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, fmt.Errorf("greenboost %s on %s: %w", op, d.path, errno)
		}
		return int(r), nil
	}
}

// Alloc allocates size bytes of pinned RAM (rounded up by the module to the
// page or 2 MiB chunk it uses), charged to the caller's cgroup, and returns
// the DMA-BUF descriptor (O_CLOEXEC). Over a cgroup budget the error wraps
// unix.EDQUOT; over the global pool ENOMEM or ENOSPC.
func (d *Device) Alloc(size uint64, flags uint32) (int, error) {
	req := AllocReq{Size: size, FD: -1, Flags: flags}
	if _, err := d.ioctl("ALLOC", IoctlAlloc, unsafe.Pointer(&req)); err != nil {
		return -1, fmt.Errorf("allocate %d bytes: %w", size, err)
	}
	return int(req.FD), nil
}

// Info returns the pool statistics of GB_IOCTL_GET_INFO.
func (d *Device) Info() (Info, error) {
	var info Info
	_, err := d.ioctl("GET_INFO", IoctlGetInfo, unsafe.Pointer(&info))
	return info, err
}

// PinUserPtr pins the caller's memory [vaddr, vaddr+size) (vaddr page
// aligned), charges it like Alloc and exports it as a DMA-BUF descriptor.
func (d *Device) PinUserPtr(vaddr, size uint64, flags uint32) (int, error) {
	req := PinReq{VAddr: vaddr, Size: size, FD: -1, Flags: flags}
	if _, err := d.ioctl("PIN_USER_PTR", IoctlPinUserPtr, unsafe.Pointer(&req)); err != nil {
		return -1, fmt.Errorf("pin %d bytes at %#x: %w", size, vaddr, err)
	}
	return int(req.FD), nil
}

// SetPoolCap sets the T2 pool cap in MiB (CAP_SYS_ADMIN) and returns the
// previous cap.
func (d *Device) SetPoolCap(capMB uint64) (uint64, error) {
	req := PoolCapReq{CapMB: capMB}
	_, err := d.ioctl("SET_POOL_CAP", IoctlSetPoolCap, unsafe.Pointer(&req))
	return req.PrevMB, err
}

// PoolInfoV3 returns GB_IOCTL_GET_POOL_INFO_V3.
func (d *Device) PoolInfoV3() (PoolInfoV3, error) {
	var info PoolInfoV3
	_, err := d.ioctl("GET_POOL_INFO_V3", IoctlGetPoolInfoV3, unsafe.Pointer(&info))
	return info, err
}

// ReleasePID drops the module's ownership records of pid's buffers (0 = the
// caller; another pid is an initial-namespace TGID and needs CAP_SYS_ADMIN)
// and returns how many there were.
func (d *Device) ReleasePID(pid uint32) (int, error) {
	req := ReleasePIDReq{PID: pid}
	return d.ioctl("RELEASE_PID", IoctlReleasePID, unsafe.Pointer(&req))
}

// SetT3Cap sets the T3 store cap in MiB (0 = limited by the disk;
// CAP_SYS_ADMIN) and returns the previous cap.
func (d *Device) SetT3Cap(capMB uint64) (uint64, error) {
	req := T3CapReq{CapMB: capMB}
	_, err := d.ioctl("SET_T3_CAP", IoctlSetT3Cap, unsafe.Pointer(&req))
	return req.PrevMB, err
}

// Query returns the caller's cgroup in the hierarchy the module accounts in,
// the ABI version and the features.
func (d *Device) Query() (CgQuery, error) {
	q := CgQuery{Size: uint32(unsafe.Sizeof(CgQuery{}))}
	_, err := d.ioctl("CG_QUERY", IoctlCgQuery, unsafe.Pointer(&q))
	return q, err
}

// SetLimit sets both the T2 (RAM) and T3 (NVMe) budgets of cg (Unlimited =
// no limit; CAP_SYS_ADMIN in the initial user namespace) and returns the
// request with the previous limits filled in.
func (d *Device) SetLimit(cg Cgroup, t2, t3 uint64) (CgLimit, error) {
	return d.SetLimits(cg, CgFlagT2|CgFlagT3, t2, t3)
}

// SetLimits is SetLimit for the tiers picked by flags (CgFlagT2, CgFlagT3).
func (d *Device) SetLimits(cg Cgroup, flags uint32, t2, t3 uint64) (CgLimit, error) {
	l := CgLimit{
		Size:      uint32(unsafe.Sizeof(CgLimit{})),
		Flags:     flags,
		Hierarchy: cg.Hierarchy,
		CgroupID:  cg.ID,
		T2Max:     t2,
		T3Max:     t3,
	}
	if _, err := d.ioctl("CG_SET_LIMIT", IoctlCgSetLimit, unsafe.Pointer(&l)); err != nil {
		return l, fmt.Errorf("set limits of cgroup %s: %w", cg, err)
	}
	return l, nil
}

// Usage returns the usage and limits of cg, or with self of the caller's own
// cgroup (cg is then ignored and the answer names it).
func (d *Device) Usage(cg Cgroup, self bool) (CgUsage, error) {
	u := CgUsage{Size: uint32(unsafe.Sizeof(CgUsage{}))}
	if self {
		u.Flags = CgFlagSelf
	} else {
		u.Hierarchy = cg.Hierarchy
		u.CgroupID = cg.ID
	}
	if _, err := d.ioctl("CG_GET_USAGE", IoctlCgGetUsage, unsafe.Pointer(&u)); err != nil {
		if self {
			return u, fmt.Errorf("usage of the own cgroup: %w", err)
		}
		return u, fmt.Errorf("usage of cgroup %s: %w", cg, err)
	}
	return u, nil
}

// Release clears the limits of cg and marks its node released (flags:
// CgFlagRecursive, CgFlagFailIfBusy); the answer reports what is still
// charged. No node: the error wraps unix.ENOENT; busy with
// CgFlagFailIfBusy: unix.EBUSY.
func (d *Device) Release(cg Cgroup, flags uint32) (CgRelease, error) {
	r := CgRelease{
		Size:      uint32(unsafe.Sizeof(CgRelease{})),
		Flags:     flags,
		Hierarchy: cg.Hierarchy,
		CgroupID:  cg.ID,
	}
	if _, err := d.ioctl("CG_RELEASE", IoctlCgRelease, unsafe.Pointer(&r)); err != nil {
		return r, fmt.Errorf("release cgroup %s: %w", cg, err)
	}
	return r, nil
}

// listPage is how many entries List asks for per ioctl.
const listPage = 64

// List returns every accounting node, in id order, paging through CG_LIST.
func (d *Device) List() ([]CgEntry, error) {
	var out []CgEntry
	buf := make([]CgEntry, listPage)
	// The kernel writes to buf through an address inside the request: pin
	// it (this also keeps it off the stack, which may move).
	var pin runtime.Pinner
	pin.Pin(&buf[0])
	defer pin.Unpin()
	var after uint64
	for {
		l := CgList{
			Size:         uint32(unsafe.Sizeof(CgList{})),
			EntrySize:    uint32(unsafe.Sizeof(CgEntry{})),
			MaxEntries:   uint32(len(buf)),
			EntriesPtr:   uint64(uintptr(unsafe.Pointer(&buf[0]))),
			StartAfterID: after,
		}
		_, err := d.ioctl("CG_LIST", IoctlCgList, unsafe.Pointer(&l))
		runtime.KeepAlive(buf)
		if err != nil {
			return nil, fmt.Errorf("list cgroup nodes: %w", err)
		}
		n := int(l.NrEntries)
		if n > len(buf) {
			return nil, fmt.Errorf("list cgroup nodes: module returned %d entries for a page of %d", n, len(buf))
		}
		out = append(out, buf[:n]...)
		if n < len(buf) {
			return out, nil
		}
		last := buf[n-1].CgroupID
		if last <= after {
			return nil, errors.New("list cgroup nodes: module returned ids out of order")
		}
		after = last
	}
}

// DMABufSyncIoctl issues DMA_BUF_IOCTL_SYNC on a DMA-BUF descriptor
// (DMABufSyncStart or DMABufSyncEnd, with DMABufSyncRead/Write/RW), as CPU
// access to a mapped buffer requires.
func DMABufSyncIoctl(fd int, flags uint64) error {
	s := DMABufSync{Flags: flags}
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), IoctlDMABufSync, uintptr(unsafe.Pointer(&s)))
		if errno == unix.EINTR || errno == unix.EAGAIN {
			continue
		}
		if errno != 0 {
			return fmt.Errorf("DMA_BUF_IOCTL_SYNC %#x on fd %d: %w", flags, fd, errno)
		}
		return nil
	}
}
