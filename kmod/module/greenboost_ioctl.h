/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * GreenBoost ioctl ABI, shared by the kernel module and user space.
 *
 * Ioctls 1-17 keep the numbers and struct layouts of upstream GreenBoost's
 * ioctl header, because GreenBoost's CUDA library calls them.  Ioctls
 * 27-31 are the cgroup ABI of the GreenBoost Container Toolkit.  Every
 * struct has a fixed layout without implicit padding.
 */
#ifndef _UAPI_GREENBOOST_IOCTL_H
#define _UAPI_GREENBOOST_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define GB_IOCTL_MAGIC 'G'

/*
 * gb_alloc_req.flags / gb_pin_req.flags.  GB_ALLOC_NO_HUGEPAGE means 4 KiB
 * pages only; GB_ALLOC_KV_CACHE and GB_ALLOC_FROZEN keep the buffer out of
 * T3 (never evicted); the others are accepted hints.
 */
#define GB_ALLOC_WEIGHTS		(1u << 0)
#define GB_ALLOC_KV_CACHE		(1u << 1)
#define GB_ALLOC_ACTIVATIONS		(1u << 2)
#define GB_ALLOC_FROZEN			(1u << 3)
#define GB_ALLOC_NO_HUGEPAGE		(1u << 4)
#define GB_ALLOC_T1_PRIORITY		(1u << 5)
/* bit 6 is reserved upstream */
#define GB_ALLOC_SESSION_PROTECTED	(1u << 7)
#define GB_ALLOC_FLAGS_MASK		0xbfu

/*
 * GB_IOCTL_ALLOC: zeroed, pinned RAM as an O_CLOEXEC DMA-BUF fd.  A size of
 * 2 MiB or more is rounded up to whole 2 MiB chunks (unless
 * GB_ALLOC_NO_HUGEPAGE), a smaller one to pages; the rounded size is the
 * DMA-BUF's size and is what gets charged, whether a chunk ends up one
 * compound page or 512 single pages.  Errors: EDQUOT over a cgroup budget,
 * ENOSPC over the pool cap, ENOMEM when the safety reserve would be touched.
 * mmap() needs MAP_SHARED and must stay inside the buffer (else EINVAL).
 *
 * T3 (module loaded with t3_path, a file on a disk file system; tmpfs and
 * ramfs are refused): when an ALLOC or PIN_USER_PTR finds its cgroup's T2
 * budget (EDQUOT) or the pool (ENOSPC/ENOMEM) full, idle buffers are evicted
 * first, the coldest (least recently mapped or unmapped) first: for a cgroup
 * budget those charged to one of the caller's limited cgroups, for the pool
 * any.  Idle = allocated by ALLOC (not pinned user memory), neither
 * GB_ALLOC_KV_CACHE nor GB_ALLOC_FROZEN, and with no importer mapping
 * (map_dma_buf), no mmap and no vmap.  An eviction writes the pages to the
 * store, frees them, and moves the charge from T2 to T3 at every level; it
 * is skipped when a T3 budget (counted in t3_failcnt) or the store cap
 * (SET_T3_CAP) has no room, and the allocation then fails with its own
 * error.  The next map_dma_buf, mmap, vmap or begin_cpu_access
 * (DMA_BUF_IOCTL_SYNC) reads the buffer back and moves the charge back,
 * evicting the owner's other idle buffers if its T2 budget is full; if even
 * that makes no room, the buffer is still read back and charged to T2 past
 * the budget (and to the pool past its cap), its store space freed, and the
 * owner's next allocations evict first: a map never fails for want of
 * budget.  A buffer is never evicted while a map of it is in progress, and a
 * map waits for an eviction in progress to end.
 */
struct gb_alloc_req {
	__u64 size;		/* in: bytes */
	__s32 fd;		/* out: DMA-BUF fd */
	__u32 flags;		/* in: GB_ALLOC_* */
};

/*
 * GB_IOCTL_GET_INFO: pool statistics, sizes in MiB (136 bytes).  This module
 * does not know the GPU (vram_physical_mb is 0) and has no KV or gaming
 * state; the nvme_* fields describe the T3 store: total = the cap (t3_mb),
 * or without one the bytes stored plus the file system's free space (0 with
 * no store); used = bytes held for evicted buffers; t3_allocated = bytes of
 * buffers now evicted.
 */
struct gb_info {
	__u64 vram_physical_mb;
	__u64 total_ram_mb;
	__u64 free_ram_mb;
	__u64 allocated_mb;		/* T2 bytes pinned by the module */
	__u64 max_pool_mb;		/* T2 pool cap */
	__u64 safety_reserve_mb;
	__u64 available_mb;
	__u32 active_buffers;
	__u32 oom_active;		/* 1 while the RAM guard refuses */
	__u64 nvme_swap_total_mb;
	__u64 nvme_swap_used_mb;
	__u64 nvme_swap_free_mb;
	__u64 nvme_t3_allocated_mb;
	__u32 swap_pressure;		/* GB_SWAP_PRESSURE_* */
	__u32 kv_reserve_mb;
	__u32 kv_used_mb;
	__u32 kv_t2_mb;
	__u32 t2_pressure;		/* GB_T2_PRESSURE_* */
	__u32 phase_reset_seq;
	__u32 gaming_mode;
	__u32 _pad0;			/* upstream's implicit padding */
	__u64 total_combined_mb;
};

#define GB_SWAP_PRESSURE_OK		0
#define GB_SWAP_PRESSURE_WARN		1	/* > 75 % used */
#define GB_SWAP_PRESSURE_CRITICAL	2	/* > 90 % used */
#define GB_T2_PRESSURE_OK		0
#define GB_T2_PRESSURE_WARN		1
#define GB_T2_PRESSURE_CRITICAL		2

/*
 * GB_IOCTL_PIN_USER_PTR: pin [vaddr, vaddr + size) long-term and export it;
 * charged (cgroups and pool) like an allocation of the page-rounded size.
 */
struct gb_pin_req {
	__u64 vaddr;		/* in: page aligned */
	__u64 size;		/* in: bytes, rounded up to pages */
	__s32 fd;		/* out: DMA-BUF fd */
	__u32 flags;		/* in: GB_ALLOC_* */
};

/*
 * GB_IOCTL_SET_POOL_CAP (CAP_SYS_ADMIN): new T2 pool cap, clamped to RAM
 * minus the safety reserve; 0 is EINVAL.
 */
struct gb_pool_cap_req {
	__u64 cap_mb;		/* in */
	__u64 prev_mb;		/* out */
};

/* GB_IOCTL_GET_POOL_INFO_V3: machine-readable pool state in MiB (88 bytes). */
struct gb_pool_info_v3 {
	__u64 t1_physical_mb;
	__u64 t1_nvlink_total_mb;
	__u64 t2_total_mb;
	__u64 t2_used_mb;
	__u64 t2_available_mb;
	__u64 t3_total_mb;
	__u64 t3_used_mb;
	__u32 nvlink_ready;
	__u32 compute_domain_active;
	__u32 watchdog_pressure;
	__u32 active_buffers;
	__u32 oom_active;
	__u32 gpu_count;
	__u32 kv_reserve_mb;
	__u32 _pad;
};

/*
 * GB_IOCTL_RELEASE_PID: pid 0 = the caller's process; another process is
 * named by its initial-namespace TGID and needs CAP_SYS_ADMIN.  The module
 * drops its ownership record of that process's buffers and returns how many
 * there were (the ioctl's return value); pages are never freed under a user:
 * they go when the last fd, mapping or importer does.
 */
struct gb_release_pid_req {
	__u32 pid;
	__u32 _pad;		/* must be 0 */
};

/*
 * GB_IOCTL_SET_T3_CAP (CAP_SYS_ADMIN): T3 store cap, 0 = disk limited; a cap
 * below what is stored only makes later evictions skip.
 */
struct gb_t3_cap_req {
	__u64 cap_mb;		/* in */
	__u64 prev_mb;		/* out */
};

#define GB_IOCTL_ALLOC		_IOWR(GB_IOCTL_MAGIC, 1, struct gb_alloc_req)
#define GB_IOCTL_GET_INFO	_IOR(GB_IOCTL_MAGIC, 2, struct gb_info)
#define GB_IOCTL_PIN_USER_PTR	_IOWR(GB_IOCTL_MAGIC, 8, struct gb_pin_req)
#define GB_IOCTL_SET_POOL_CAP	_IOWR(GB_IOCTL_MAGIC, 11, struct gb_pool_cap_req)
#define GB_IOCTL_GET_POOL_INFO_V3 _IOR(GB_IOCTL_MAGIC, 14, struct gb_pool_info_v3)
#define GB_IOCTL_RELEASE_PID	_IOW(GB_IOCTL_MAGIC, 16, struct gb_release_pid_req)
#define GB_IOCTL_SET_T3_CAP	_IOWR(GB_IOCTL_MAGIC, 17, struct gb_t3_cap_req)

/*
 * Cgroup ABI.  A cgroup is (hierarchy, id): GB_CG_HIER_V2 with the inode
 * number of its cgroup2 directory (== cgroup_id()), or GB_CG_HIER_V1_MEMORY
 * with the inode number of its v1 memory-controller directory.  Every struct
 * starts with its size as the caller compiled it; fields the kernel does not
 * know must be zero (else E2BIG), a size below the first version is EINVAL,
 * as are unknown flags and non-zero reserved fields.  A size above the page
 * size is E2BIG, as for clone3() and openat2().
 *
 * ALLOC and PIN_USER_PTR charge the caller's cgroup and every ancestor that
 * has a node (one made by CG_SET_LIMIT and not released); a level over its
 * limit fails the call with EDQUOT.  Nodes are only made by CG_SET_LIMIT, so
 * a buffer made before its cgroup's node existed is not counted there.
 *
 * The hierarchy is chosen at load (cgroup_mode; auto = v2 unless the memory
 * controller is bound to cgroup v1); other hierarchy values are EINVAL.
 *
 * CG_QUERY: anyone; every field but size is an output, ignored on input
 *	(a filled struct may be passed again).  Returns the caller's cgroup
 *	in the hierarchy the module accounts in.  features: GB_CG_FEAT_*.
 * Ids are global: a caller in a cgroup namespace names cgroups outside it
 * too.
 *
 * CG_SET_LIMIT: CAP_SYS_ADMIN; flags pick which limits change; creates the
 *	node (the cgroup must exist, else ENOENT); returns the previous
 *	limits.  A limit below current usage only makes later charges fail.
 * CG_GET_USAGE: GB_CG_F_SELF or the caller's own cgroup or a descendant:
 *	anyone; other cgroups: CAP_SYS_ADMIN (else EPERM).  A cgroup without
 *	a node reads as zero usage, unlimited, with node_flags telling only
 *	whether it is alive.  The effective max is the lowest limit on the
 *	path from the cgroup to the root.  A failcnt counts the charges the
 *	level refused: each EDQUOT, each eviction skipped for the T3 budget,
 *	each promotion charged past the T2 budget.
 * CG_RELEASE: CAP_SYS_ADMIN; clears the limits and marks the node (and with
 *	GB_CG_F_RECURSIVE every descendant node) released; reports the live
 *	buffers charged to any of them, each counted once, and the number of
 *	nodes released.  GB_CG_F_FAIL_IF_BUSY: EBUSY and no change while any
 *	buffer is live (the report is still filled in).  No node (with
 *	GB_CG_F_RECURSIVE: none in the subtree either): ENOENT.
 *	Live buffers stay valid; a released node is no longer charged and is
 *	freed when its last buffer goes (a buffer still being created when
 *	the node is released is not charged to it).  CG_SET_LIMIT on it takes
 *	it back if the cgroup still exists, else ENOENT.
 * CG_LIST: CAP_SYS_ADMIN; nodes with id > start_after_id in id order, at
 *	most max_entries (and at most 1024) per call; entry_size must be in
 *	[sizeof(struct gb_cg_entry), 4096], entries are written entry_size
 *	apart with any tail beyond the known fields zeroed.  nr_total counts
 *	all nodes.  ALIVE says whether the cgroup still exists (both
 *	hierarchies; ALIVE_UNKNOWN is reserved for hosts where that cannot be
 *	told).
 */
#define GB_CG_ABI_VERSION		1u
#define GB_CG_UNLIMITED			(~(__u64)0)

#define GB_CG_HIER_V2			0u
#define GB_CG_HIER_V1_MEMORY		1u

#define GB_CG_F_T2			(1u << 0)	/* SET_LIMIT: apply t2_max_bytes */
#define GB_CG_F_T3			(1u << 1)	/* SET_LIMIT: apply t3_max_bytes */
#define GB_CG_F_SELF			(1u << 2)	/* GET_USAGE: the caller's own cgroup */
#define GB_CG_F_RECURSIVE		(1u << 3)	/* RELEASE: descendants too */
#define GB_CG_F_FAIL_IF_BUSY		(1u << 4)	/* RELEASE: EBUSY if bytes still live */

#define GB_CG_NODE_HAS_LIMIT		(1u << 0)
#define GB_CG_NODE_RELEASED		(1u << 1)
#define GB_CG_NODE_ALIVE		(1u << 2)
#define GB_CG_NODE_ALIVE_UNKNOWN	(1u << 3)

#define GB_CG_FEAT_T2			(1ull << 0)	/* T2 bytes are charged */
#define GB_CG_FEAT_T3			(1ull << 1)	/* a T3 store is configured */

struct gb_cg_query {
	__u32 size;
	__u32 abi_version;	/* out */
	__u32 hierarchy;	/* out */
	__u32 level;		/* out: 0 = root */
	__u64 cgroup_id;	/* out */
	__u64 features;		/* out */
};

struct gb_cg_limit {
	__u32 size;
	__u32 flags;		/* GB_CG_F_T2 | GB_CG_F_T3 */
	__u32 hierarchy;
	__u32 reserved0;
	__u64 cgroup_id;
	__u64 t2_max_bytes;	/* in, GB_CG_UNLIMITED = no limit */
	__u64 t3_max_bytes;	/* in */
	__u64 prev_t2_max_bytes; /* out */
	__u64 prev_t3_max_bytes; /* out */
};

struct gb_cg_usage {
	__u32 size;
	__u32 flags;		/* GB_CG_F_SELF */
	__u32 hierarchy;
	__u32 reserved0;
	/* in; out with GB_CG_F_SELF, which ignores the hierarchy and cgroup_id passed in */
	__u64 cgroup_id;
	__u64 t2_usage_bytes;
	__u64 t3_usage_bytes;
	__u64 t2_max_bytes;
	__u64 t3_max_bytes;
	__u64 t2_effective_max_bytes;
	__u64 t3_effective_max_bytes;
	__u64 t2_failcnt;
	__u64 t3_failcnt;
	__u32 nr_buffers;
	__u32 node_flags;	/* GB_CG_NODE_* */
};

struct gb_cg_release {
	__u32 size;
	__u32 flags;		/* GB_CG_F_RECURSIVE | GB_CG_F_FAIL_IF_BUSY */
	__u32 hierarchy;
	__u32 reserved0;
	__u64 cgroup_id;
	__u64 t2_live_bytes;	/* out */
	__u64 t3_live_bytes;	/* out */
	__u32 nr_live_buffers;	/* out */
	__u32 nr_nodes_released; /* out */
};

struct gb_cg_entry {
	__u64 cgroup_id;
	__u64 t2_usage_bytes;
	__u64 t3_usage_bytes;
	__u64 t2_max_bytes;
	__u64 t3_max_bytes;
	__u32 hierarchy;
	__u32 node_flags;
	__u32 nr_buffers;
	__u32 level;
};

struct gb_cg_list {
	__u32 size;
	__u32 flags;		/* must be 0 */
	__u32 entry_size;	/* >= sizeof(struct gb_cg_entry) */
	__u32 max_entries;
	__u64 entries_ptr;	/* user pointer to max_entries * entry_size bytes */
	__u64 start_after_id;
	__u32 nr_entries;	/* out */
	__u32 nr_total;		/* out */
};

#define GB_CG_QUERY_SIZE_VER0		32
#define GB_CG_LIMIT_SIZE_VER0		56
#define GB_CG_USAGE_SIZE_VER0		96
#define GB_CG_RELEASE_SIZE_VER0		48
#define GB_CG_ENTRY_SIZE_VER0		56
#define GB_CG_LIST_SIZE_VER0		40

#define GB_IOCTL_CG_QUERY	_IOWR(GB_IOCTL_MAGIC, 27, struct gb_cg_query)
#define GB_IOCTL_CG_SET_LIMIT	_IOWR(GB_IOCTL_MAGIC, 28, struct gb_cg_limit)
#define GB_IOCTL_CG_GET_USAGE	_IOWR(GB_IOCTL_MAGIC, 29, struct gb_cg_usage)
#define GB_IOCTL_CG_RELEASE	_IOWR(GB_IOCTL_MAGIC, 30, struct gb_cg_release)
#define GB_IOCTL_CG_LIST	_IOWR(GB_IOCTL_MAGIC, 31, struct gb_cg_list)

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct gb_alloc_req) == 16, "gb_alloc_req");
_Static_assert(sizeof(struct gb_info) == 136, "gb_info");
_Static_assert(sizeof(struct gb_pin_req) == 24, "gb_pin_req");
_Static_assert(sizeof(struct gb_pool_cap_req) == 16, "gb_pool_cap_req");
_Static_assert(sizeof(struct gb_pool_info_v3) == 88, "gb_pool_info_v3");
_Static_assert(sizeof(struct gb_release_pid_req) == 8, "gb_release_pid_req");
_Static_assert(sizeof(struct gb_t3_cap_req) == 16, "gb_t3_cap_req");
_Static_assert(sizeof(struct gb_cg_query) == GB_CG_QUERY_SIZE_VER0, "gb_cg_query");
_Static_assert(sizeof(struct gb_cg_limit) == GB_CG_LIMIT_SIZE_VER0, "gb_cg_limit");
_Static_assert(sizeof(struct gb_cg_usage) == GB_CG_USAGE_SIZE_VER0, "gb_cg_usage");
_Static_assert(sizeof(struct gb_cg_release) == GB_CG_RELEASE_SIZE_VER0, "gb_cg_release");
_Static_assert(sizeof(struct gb_cg_entry) == GB_CG_ENTRY_SIZE_VER0, "gb_cg_entry");
_Static_assert(sizeof(struct gb_cg_list) == GB_CG_LIST_SIZE_VER0, "gb_cg_list");
#endif

#endif /* _UAPI_GREENBOOST_IOCTL_H */
