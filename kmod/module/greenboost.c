// SPDX-License-Identifier: GPL-2.0
/*
 * GreenBoost: pinned system RAM handed out as DMA-BUFs, with per-cgroup
 * budgets and an NVMe store (T3) that idle buffers are evicted to.
 *
 * The file reads in sections: the module parameters and the global T2 pool
 * and RAM guard; the T3 store; the per-cgroup budgets; the buffers; the
 * character device, the ioctl dispatch and module init.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/bvec.h>
#include <linux/capability.h>
#include <linux/cdev.h>
#include <linux/cgroup.h>
#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/magic.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/statfs.h>
#include <linux/string.h>
#include <linux/threads.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "compat.h"
#include "greenboost_ioctl.h"

#define GB_MODULE_VERSION	"0.1.0"

enum gb_tier {
	GB_T2,		/* pinned system RAM */
	GB_T3,		/* NVMe store */
	GB_NR_TIERS,
};

struct gb_cg_node;

/*
 * What one buffer has charged: the accounting nodes of its allocator's
 * cgroup and ancestors (each referenced) and the bytes per tier.
 */
struct gb_charge {
	struct gb_cg_node **nodes;
	unsigned int nr_nodes;
	u64 bytes[GB_NR_TIERS];
};

typedef void (*gb_charge_fn)(const struct gb_charge *c, void *arg);

/* Defined with the buffers; the budgets' CG_RELEASE walks their charges. */
static void gb_walk_charges(gb_charge_fn fn, void *arg);

#define GB_NAME		"greenboost"
#define GB_MB_SHIFT	20

/*
 * Sizes are in MiB.  0 (pool_mb) or -1 (safety_reserve_mb) at load time
 * means "derive from RAM"; after load the parameters show the values in
 * effect, and SET_POOL_CAP / SET_T3_CAP update them.
 */
static unsigned long pool_mb;
module_param(pool_mb, ulong, 0444);
MODULE_PARM_DESC(pool_mb, "T2 pool cap in MiB (default: 50% of RAM)");

static long safety_reserve_mb = -1;
module_param(safety_reserve_mb, long, 0444);
MODULE_PARM_DESC(safety_reserve_mb,
		 "RAM always left free in MiB (default: min(1024, 10% of RAM))");

static char *t3_path = "";
module_param(t3_path, charp, 0444);
MODULE_PARM_DESC(t3_path, "T3 store file (empty: no T3 store)");

static unsigned long t3_mb;
module_param(t3_mb, ulong, 0444);
MODULE_PARM_DESC(t3_mb, "T3 store cap in MiB (0: disk limited)");

/* For tests only: a store on tmpfs or ramfs frees no RAM. */
static bool t3_allow_tmpfs;
module_param(t3_allow_tmpfs, bool, 0444);
MODULE_PARM_DESC(t3_allow_tmpfs, "Accept a T3 store on tmpfs/ramfs (tests only)");

static char *cgroup_mode = "auto";
module_param(cgroup_mode, charp, 0444);
MODULE_PARM_DESC(cgroup_mode, "cgroup hierarchy to account in: auto, v2 or v1mem");

/*
 * Whole-GiB mirrors read by GreenBoost's CUDA library (rounded down).  An
 * upstream-style load that sets one of them instead of the MiB parameter is
 * honoured.
 */
static unsigned long virtual_vram_gb;
module_param(virtual_vram_gb, ulong, 0444);
MODULE_PARM_DESC(virtual_vram_gb, "T2 pool cap in GiB (mirror of pool_mb)");

static unsigned long safety_reserve_gb;
module_param(safety_reserve_gb, ulong, 0444);
MODULE_PARM_DESC(safety_reserve_gb, "Safety reserve in GiB (mirror)");

static unsigned long nvme_pool_gb;
module_param(nvme_pool_gb, ulong, 0444);
MODULE_PARM_DESC(nvme_pool_gb, "T3 cap in GiB (mirror of t3_mb)");

static unsigned int abi_version = GB_CG_ABI_VERSION;
module_param(abi_version, uint, 0444);
MODULE_PARM_DESC(abi_version, "Version of the cgroup ioctl ABI");

static atomic64_t gb_t2_used = ATOMIC64_INIT(0);	/* bytes */
static int gb_oom_active;
static DEFINE_MUTEX(gb_param_lock);	/* serialises SET_POOL_CAP/SET_T3_CAP */

static dev_t gb_devt;
static struct cdev gb_cdev;
static struct class *gb_class;
static struct device *gb_device;

static u64 gb_total_ram_bytes(void)
{
	return (u64)totalram_pages() << PAGE_SHIFT;
}

static u64 gb_total_ram_mb(void)
{
	return gb_total_ram_bytes() >> GB_MB_SHIFT;
}

static u64 gb_available_ram_bytes(void)
{
	long pages = si_mem_available();

	return pages > 0 ? (u64)pages << PAGE_SHIFT : 0;
}

/* The largest pool that still leaves the safety reserve free. */
static unsigned long gb_pool_limit_mb(void)
{
	u64 total = gb_total_ram_mb();
	u64 reserve = READ_ONCE(safety_reserve_mb);

	return total > reserve ? total - reserve : 0;
}

static void gb_update_mirrors(void)
{
	WRITE_ONCE(virtual_vram_gb, READ_ONCE(pool_mb) >> 10);
	WRITE_ONCE(safety_reserve_gb, (unsigned long)safety_reserve_mb >> 10);
	WRITE_ONCE(nvme_pool_gb, READ_ONCE(t3_mb) >> 10);
}

static int gb_params_init(void)
{
	u64 total = gb_total_ram_mb();

	if (safety_reserve_mb < 0)
		safety_reserve_mb = safety_reserve_gb ? safety_reserve_gb << 10 :
				    min_t(u64, 1024, total / 10);
	if (!pool_mb)
		pool_mb = virtual_vram_gb ? virtual_vram_gb << 10 : total / 2;
	pool_mb = min(pool_mb, gb_pool_limit_mb());
	if (!t3_mb && nvme_pool_gb)
		t3_mb = nvme_pool_gb << 10;
	if (!pool_mb) {
		pr_err("no RAM left for a pool (total %llu MiB, reserve %ld MiB)\n",
		       total, safety_reserve_mb);
		return -EINVAL;
	}
	gb_update_mirrors();
	return 0;
}

static bool gb_t3_configured(void)
{
	return t3_path && t3_path[0];
}

/* A cap too large for bytes (t3_mb or SET_T3_CAP) caps nothing. */
static u64 gb_t3_cap_bytes(void)
{
	u64 mb = READ_ONCE(t3_mb);

	return mb > U64_MAX >> GB_MB_SHIFT ? U64_MAX : mb << GB_MB_SHIFT;
}

static u64 gb_pool_cap_bytes(void)
{
	return (u64)READ_ONCE(pool_mb) << GB_MB_SHIFT;
}

static u64 gb_reserve_bytes(void)
{
	return (u64)READ_ONCE(safety_reserve_mb) << GB_MB_SHIFT;
}

/*
 * Charge bytes to the global T2 pool: ENOSPC past the pool cap, ENOMEM when
 * the allocation would eat into the safety reserve (the RAM guard).
 */
static int gb_pool_charge(u64 bytes)
{
	u64 reserve = gb_reserve_bytes();

	if ((u64)atomic64_add_return(bytes, &gb_t2_used) > gb_pool_cap_bytes()) {
		atomic64_sub(bytes, &gb_t2_used);
		return -ENOSPC;
	}
	if (gb_available_ram_bytes() < bytes + reserve) {
		atomic64_sub(bytes, &gb_t2_used);
		WRITE_ONCE(gb_oom_active, 1);
		return -ENOMEM;
	}
	if (READ_ONCE(gb_oom_active))
		WRITE_ONCE(gb_oom_active, 0);
	return 0;
}

/* A promotion that found no room: the pool goes over its cap for a while. */
static void gb_pool_charge_force(u64 bytes)
{
	atomic64_add(bytes, &gb_t2_used);
}

static void gb_pool_uncharge(u64 bytes)
{
	atomic64_sub(bytes, &gb_t2_used);
}

static u32 gb_t2_pressure(u64 used_mb, u64 cap_mb)
{
	if (!cap_mb || used_mb * 10 > cap_mb * 9)
		return GB_T2_PRESSURE_CRITICAL;
	if (used_mb * 4 > cap_mb * 3)
		return GB_T2_PRESSURE_WARN;
	return GB_T2_PRESSURE_OK;
}

static u64 gb_t2_available_mb(u64 used_mb, u64 cap_mb, u64 reserve_mb)
{
	u64 ram_mb = gb_available_ram_bytes() >> GB_MB_SHIFT;
	u64 pool_left = cap_mb > used_mb ? cap_mb - used_mb : 0;
	u64 ram_left = ram_mb > reserve_mb ? ram_mb - reserve_mb : 0;

	return min(pool_left, ram_left);
}

static u32 gb_swap_pressure(u64 used_mb, u64 total_mb)
{
	if (!used_mb)
		return GB_SWAP_PRESSURE_OK;
	if (used_mb * 10 > total_mb * 9)
		return GB_SWAP_PRESSURE_CRITICAL;
	if (used_mb * 4 > total_mb * 3)
		return GB_SWAP_PRESSURE_WARN;
	return GB_SWAP_PRESSURE_OK;
}

/*
 * The T3 store: one file (t3_path) that evicted buffers are written to.
 *
 * Space is handed out as extents, one per evicted buffer, from a list sorted
 * by offset.  A freed extent turns stale: its blocks stay written, so the
 * next eviction that fits in it overwrites them (no block allocation, the
 * cheap case for the file system).  Before the store takes new space from a
 * hole, and whenever it empties, every stale extent is punched out
 * (FALLOC_FL_PUNCH_HOLE), so the blocks the file holds never exceed the peak
 * of live bytes, and an empty store holds none.  New space is first fit
 * over the holes, so the file stays as compact as the live extents allow.
 * I/O goes
 * through bio_vec iterators straight from and to the buffer's pages,
 * O_DIRECT where the file system has it (no second copy in the page cache).
 */

struct gb_t3_extent {
	struct list_head link;	/* in gb_t3_extents, by offset */
	u64 off;
	u64 len;
	bool stale;		/* freed, blocks still written */
};

static struct file *gb_t3_file;
static struct workqueue_struct *gb_t3_wq;	/* runs the store's I/O */
static bool gb_t3_direct;
static LIST_HEAD(gb_t3_extents);
static DEFINE_MUTEX(gb_t3_lock);	/* the extents and byte counts */
static u64 gb_t3_used;			/* bytes in live extents */
static u64 gb_t3_stale;			/* bytes in stale extents */

static bool gb_t3_ready(void)
{
	return gb_t3_file;
}

static bool gb_t3_in_memory(struct file *f)
{
	unsigned long magic = file_inode(f)->i_sb->s_magic;

	return magic == TMPFS_MAGIC || magic == RAMFS_MAGIC;
}

/*
 * Open (create, empty) the store.  A store in memory (tmpfs, ramfs) would
 * free no RAM, so it is refused unless allow_mem says a test wants one.
 */
static int gb_t3_init(const char *path, bool allow_mem)
{
	const int flags = O_RDWR | O_CREAT | O_TRUNC | O_LARGEFILE | O_NOATIME;
	struct file *f;

	f = filp_open(path, flags | O_DIRECT, 0600);
	gb_t3_direct = !IS_ERR(f);
	if (IS_ERR(f) && PTR_ERR(f) == -EINVAL)
		f = filp_open(path, flags, 0600);
	if (IS_ERR(f)) {
		pr_err("t3_path=%s: cannot open the T3 store: %ld\n", path, PTR_ERR(f));
		return PTR_ERR(f);
	}
	if (!S_ISREG(file_inode(f)->i_mode)) {
		pr_err("t3_path=%s: the T3 store must be a regular file\n", path);
		filp_close(f, NULL);
		return -EINVAL;
	}
	if (gb_t3_in_memory(f) && !allow_mem) {
		pr_err("t3_path=%s is on tmpfs/ramfs: a T3 store in RAM frees nothing; put it on an NVMe file system\n",
		       path);
		filp_close(f, NULL);
		return -EINVAL;
	}
	if (!(f->f_mode & FMODE_CAN_WRITE) || !(f->f_mode & FMODE_CAN_READ) ||
	    !f->f_op->fallocate) {
		pr_err("t3_path=%s: the file system cannot hold a T3 store (read, write and hole punching needed)\n",
		       path);
		filp_close(f, NULL);
		return -EINVAL;
	}
	/*
	 * Evictions make room in RAM: their I/O must not wait for a new worker
	 * (MEM_RECLAIM). Bound and high-priority, the worker runs on the
	 * caller's CPU as soon as the caller sleeps waiting for it; an unbound
	 * one on another CPU made a 4 MiB evict+promote 1.6 times slower.
	 */
	gb_t3_wq = alloc_workqueue("greenboost_t3", WQ_HIGHPRI | WQ_MEM_RECLAIM, 0);
	if (!gb_t3_wq) {
		filp_close(f, NULL);
		return -ENOMEM;
	}
	gb_t3_file = f;
	pr_info("T3 store %s (%s I/O)\n", path, gb_t3_direct ? "direct" : "buffered");
	return 0;
}

/* Punch every stale extent out and forget it; gb_t3_lock held. */
static void gb_t3_punch_stale(void)
{
	struct gb_t3_extent *e, *tmp;
	const struct cred *old_cred;
	int ret;

	lockdep_assert_held(&gb_t3_lock);
	if (!gb_t3_stale)
		return;
	/* the store's, as its I/O: not the freeing process's label */
	old_cred = override_creds(gb_t3_file->f_cred);
	list_for_each_entry_safe(e, tmp, &gb_t3_extents, link) {
		if (!e->stale)
			continue;
		ret = vfs_fallocate(gb_t3_file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    e->off, e->len);
		if (ret)
			pr_warn_ratelimited("T3 store: punching %llu bytes at %llu: %d\n",
					    e->len, e->off, ret);
		gb_t3_stale -= e->len;
		list_del(&e->link);
		kfree(e);
	}
	revert_creds(old_cred);
}

/* Every buffer holds a module reference, so no live extent is left. */
static void gb_t3_exit(void)
{
	if (!gb_t3_file)
		return;
	mutex_lock(&gb_t3_lock);
	gb_t3_punch_stale();
	mutex_unlock(&gb_t3_lock);
	WARN_ON(!list_empty(&gb_t3_extents));
	destroy_workqueue(gb_t3_wq);
	filp_close(gb_t3_file, NULL);
	gb_t3_file = NULL;
}

/* Bytes in live extents, and the store's size (cap, else used + disk free). */
static void gb_t3_stats(u64 cap, u64 *used, u64 *total)
{
	struct kstatfs st;

	*used = READ_ONCE(gb_t3_used);
	*total = cap;
	if (!gb_t3_file || cap)
		return;
	if (!vfs_statfs(&gb_t3_file->f_path, &st))
		*total = *used + (u64)st.f_bavail * st.f_bsize;
}

/*
 * Reserve len bytes of the store: ENOSPC when the cap (0: none) would be
 * passed.  The first stale extent that is long enough is reused (its front
 * part); else the stale ones are punched out and the first hole that fits
 * is taken.
 */
static struct gb_t3_extent *gb_t3_reserve(u64 len, u64 cap)
{
	struct gb_t3_extent *e, *pos;
	u64 off = 0;

	e = kmalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return ERR_PTR(-ENOMEM);
	e->len = len;
	e->stale = false;
	mutex_lock(&gb_t3_lock);
	if (cap && gb_t3_used + len > cap) {
		mutex_unlock(&gb_t3_lock);
		kfree(e);
		return ERR_PTR(-ENOSPC);
	}
	gb_t3_used += len;
	list_for_each_entry(pos, &gb_t3_extents, link) {
		if (!pos->stale || pos->len < len)
			continue;
		gb_t3_stale -= len;
		if (pos->len == len) {
			pos->stale = false;
			mutex_unlock(&gb_t3_lock);
			kfree(e);
			return pos;
		}
		e->off = pos->off;
		pos->off += len;
		pos->len -= len;
		list_add_tail(&e->link, &pos->link);
		mutex_unlock(&gb_t3_lock);
		return e;
	}
	gb_t3_punch_stale();
	list_for_each_entry(pos, &gb_t3_extents, link) {
		if (pos->off - off >= len)
			break;
		off = pos->off + pos->len;
	}
	e->off = off;
	/* Before pos, or at the tail when the loop ran off the end. */
	list_add_tail(&e->link, &pos->link);
	mutex_unlock(&gb_t3_lock);
	return e;
}

/* Free an extent: stale until reused, punched out once the store is empty. */
static void gb_t3_release(struct gb_t3_extent *e)
{
	mutex_lock(&gb_t3_lock);
	e->stale = true;
	gb_t3_used -= e->len;
	gb_t3_stale += e->len;
	if (!gb_t3_used)
		gb_t3_punch_stale();
	mutex_unlock(&gb_t3_lock);
}

/* One transfer between pages and the store, run by a gb_t3_wq worker. */
struct gb_t3_xfer {
	struct work_struct work;
	struct iov_iter iter;
	loff_t pos;
	bool write;
	int ret;
};

static void gb_t3_xfer_work(struct work_struct *work)
{
	struct gb_t3_xfer *x = container_of(work, struct gb_t3_xfer, work);
	const struct cred *old_cred;
	ssize_t n;

	old_cred = override_creds(gb_t3_file->f_cred);
	while (iov_iter_count(&x->iter)) {
		if (x->write)
			n = gb_iter_write(gb_t3_file, &x->iter, &x->pos);
		else
			n = vfs_iter_read(gb_t3_file, &x->iter, &x->pos, 0);
		if (n <= 0) {
			x->ret = n ? n : -EIO;
			break;
		}
	}
	revert_creds(old_cred);
}

/*
 * Move nr_pages pages to (write) or from (read) the extent, one bio_vec per
 * physically contiguous run.
 *
 * The store is the module's, not the allocating process's, so its I/O runs
 * in a worker with the credentials that opened it: the caller's file size
 * limit would fail the write (EFBIG, and SIGXFSZ kills it), its security
 * label may not reach the store, and its memory cgroup would pay for the
 * store's page cache.
 */
static int gb_t3_io(struct gb_t3_extent *e, struct page **pages, unsigned long nr_pages,
		    bool write)
{
	struct gb_t3_xfer x = { .pos = e->off, .write = write };
	unsigned long i, run, nr_segs = 0;
	struct bio_vec *bv;

	if ((u64)nr_pages << PAGE_SHIFT > e->len)
		return -EINVAL;
	bv = kvmalloc_array(nr_pages, sizeof(*bv), GFP_KERNEL | __GFP_NOWARN);
	if (!bv)
		return -ENOMEM;
	for (i = 0; i < nr_pages; i += run) {
		unsigned long pfn = page_to_pfn(pages[i]);

		for (run = 1; i + run < nr_pages && run < (SZ_2M >> PAGE_SHIFT); run++)
			if (page_to_pfn(pages[i + run]) != pfn + run)
				break;
		bv[nr_segs].bv_page = pages[i];
		bv[nr_segs].bv_offset = 0;
		bv[nr_segs].bv_len = run << PAGE_SHIFT;
		nr_segs++;
	}
	iov_iter_bvec(&x.iter, write ? ITER_SOURCE : ITER_DEST, bv, nr_segs,
		      (size_t)nr_pages << PAGE_SHIFT);
	INIT_WORK_ONSTACK(&x.work, gb_t3_xfer_work);
	queue_work(gb_t3_wq, &x.work);
	flush_work(&x.work);
	destroy_work_on_stack(&x.work);
	kvfree(bv);
	if (x.ret)
		pr_warn_ratelimited("T3 store: %s of %lu pages at %llu: %d\n",
				    write ? "write" : "read", nr_pages, e->off, x.ret);
	return x.ret;
}

/*
 * Per-cgroup budgets.  A node holds the limits and usage of one cgroup of the
 * hierarchy the module accounts in (cgroup v2, or the v1 memory hierarchy).
 * Nodes live in an xarray keyed by cgroup id: lookups are RCU, creation and
 * removal take gb_cg_lock.  Charging is lock-free in the manner of
 * page_counter: add to each level's usage, back out if a level went over.
 *
 * The xarray holds one node reference and every buffer one per node it
 * charged, so a buffer uncharges the very nodes it charged even after its
 * cgroup is gone.  A released node leaves the xarray once nothing is charged
 * to it.
 */

#define GB_CG_LIST_BATCH	1024	/* most entries one CG_LIST returns */
#define GB_CG_LIST_ENTRY_MAX	4096	/* largest entry_size CG_LIST accepts */

struct gb_cg_counter {
	atomic64_t usage;	/* bytes */
	atomic64_t max;		/* bytes, GB_CG_UNLIMITED as -1 */
	atomic64_t failcnt;
};

struct gb_cg_node {
	struct kref ref;
	struct rcu_head rcu;
	u64 id;
	u32 level;
	bool released;		/* written under gb_cg_lock */
	atomic_t nr_buffers;
	struct gb_cg_counter tier[GB_NR_TIERS];
	u64 ancestor_ids[];	/* [0] the root .. [level] == id */
};

static DEFINE_MUTEX(gb_cg_lock);
static DEFINE_XARRAY(gb_cg_nodes);
static unsigned int gb_cg_nr_nodes;	/* under gb_cg_lock */
static u32 gb_cg_hier;

static struct cgroup *gb_task_cgroup(struct task_struct *task)
{
#ifdef CONFIG_MEMCG
	if (gb_cg_hier == GB_CG_HIER_V1_MEMORY)
		return task_css(task, memory_cgrp_id)->cgroup;
#endif
	return task_dfl_cgroup(task);
}

/* The caller's cgroup, referenced. */
static struct cgroup *gb_current_cgroup_get(void)
{
	struct cgroup *cgrp;

	rcu_read_lock();
	do {
		cgrp = gb_task_cgroup(current);
	} while (!cgroup_tryget(cgrp));
	rcu_read_unlock();
	return cgrp;
}

static bool gb_cgroup_alive(struct cgroup *cgrp)
{
	return cgrp && (READ_ONCE(cgrp->self.flags) & CSS_ONLINE);
}

/*
 * The root css of the hierarchy the module accounts in; rcu_read_lock()
 * held.  Ids of a v1 hierarchy are the kernfs ids of its own kernfs root, so
 * they are unique within it (never reused while the module runs) and equal
 * the inode numbers user space stats, as on cgroup2.
 */
static struct cgroup_subsys_state *gb_root_css(void)
{
#ifdef CONFIG_MEMCG
	if (gb_cg_hier == GB_CG_HIER_V1_MEMORY) {
		struct cgroup_subsys_state *root = task_css(current, memory_cgrp_id);

		while (root->parent)
			root = root->parent;
		return root;
	}
#endif
	return &cgrp_dfl_root.cgrp.self;
}

/*
 * A cgroup of the active hierarchy by id, referenced, or NULL.  Ids are
 * global, and an admin in a cgroup namespace (a nested container engine)
 * names cgroups outside it: with within NULL those are found too.
 * cgroup_get_from_id() finds only those inside the caller's namespace, and
 * v1 has no exported id lookup, so the rest walk the hierarchy.  Only
 * privileged callers may make every lookup a walk of it all; the others
 * (within: the caller's cgroup, the only subtree they may read) walk that
 * subtree on v1 and nothing on v2.  The walk finds offline (dying) cgroups
 * too, which the callers tell apart with gb_cgroup_alive().
 */
static struct cgroup *gb_cgroup_get_by_id(u64 id, struct cgroup *within)
{
	struct cgroup_subsys_state *pos;
	struct cgroup *cgrp = NULL;

	if (gb_cg_hier == GB_CG_HIER_V2) {
		cgrp = cgroup_get_from_id(id);
		if (!IS_ERR_OR_NULL(cgrp))
			return cgrp;
		if (within)
			return NULL;
		cgrp = NULL;
	}
	rcu_read_lock();
	css_for_each_descendant_pre(pos, within ? &within->self : gb_root_css()) {
		if (cgroup_id(pos->cgroup) != id)
			continue;
		if (cgroup_tryget(pos->cgroup))
			cgrp = pos->cgroup;
		break;
	}
	rcu_read_unlock();
	return cgrp;
}

static void gb_cgroup_ancestor_ids(struct cgroup *cgrp, u64 *ids)
{
	struct cgroup *pos;
	int i = cgrp->level;

	for (pos = cgrp; pos && i >= 0; pos = cgroup_parent(pos))
		ids[i--] = cgroup_id(pos);
}

static void gb_cg_node_free(struct kref *ref)
{
	struct gb_cg_node *node = container_of(ref, struct gb_cg_node, ref);

	kfree_rcu(node, rcu);
}

static bool gb_cg_node_has_limit(struct gb_cg_node *node)
{
	int t;

	for (t = 0; t < GB_NR_TIERS; t++)
		if ((u64)atomic64_read(&node->tier[t].max) != GB_CG_UNLIMITED)
			return true;
	return false;
}

/* Called with gb_cg_lock held. */
static struct gb_cg_node *gb_cg_node_create(struct cgroup *cgrp)
{
	struct gb_cg_node *node;
	int t, ret;

	node = kzalloc(struct_size(node, ancestor_ids, cgrp->level + 1), GFP_KERNEL);
	if (!node)
		return ERR_PTR(-ENOMEM);
	kref_init(&node->ref);
	node->id = cgroup_id(cgrp);
	node->level = cgrp->level;
	for (t = 0; t < GB_NR_TIERS; t++)
		atomic64_set(&node->tier[t].max, (s64)GB_CG_UNLIMITED);
	gb_cgroup_ancestor_ids(cgrp, node->ancestor_ids);

	ret = xa_insert(&gb_cg_nodes, node->id, node, GFP_KERNEL);
	if (ret) {
		kfree(node);
		return ERR_PTR(ret);
	}
	gb_cg_nr_nodes++;
	return node;
}

/* Called with gb_cg_lock held; drops the xarray's reference. */
static void gb_cg_node_remove(struct gb_cg_node *node)
{
	xa_erase(&gb_cg_nodes, node->id);
	gb_cg_nr_nodes--;
	kref_put(&node->ref, gb_cg_node_free);
}

static void gb_cg_node_reap(struct gb_cg_node *node)
{
	mutex_lock(&gb_cg_lock);
	if (node->released && !atomic_read(&node->nr_buffers) &&
	    xa_load(&gb_cg_nodes, node->id) == node)
		gb_cg_node_remove(node);
	mutex_unlock(&gb_cg_lock);
}

/*
 * Resolve the nodes a new buffer of the caller charges: its cgroup and every
 * ancestor that has a live (not released) node.
 */
static int gb_charge_init(struct gb_charge *c)
{
	struct gb_cg_node *node, **nodes;
	struct cgroup *cgrp, *pos;
	unsigned int n = 0, i;

	memset(c, 0, sizeof(*c));
	cgrp = gb_current_cgroup_get();
	nodes = kmalloc_array(cgrp->level + 1, sizeof(*nodes), GFP_KERNEL);
	if (!nodes) {
		cgroup_put(cgrp);
		return -ENOMEM;
	}

	/* The reference on cgrp pins its ancestors. */
	rcu_read_lock();
	for (pos = cgrp; pos && n <= cgrp->level; pos = cgroup_parent(pos)) {
		node = xa_load(&gb_cg_nodes, cgroup_id(pos));
		if (node && !READ_ONCE(node->released) && kref_get_unless_zero(&node->ref))
			nodes[n++] = node;
	}
	rcu_read_unlock();
	cgroup_put(cgrp);

	if (!n) {
		kfree(nodes);
		return 0;
	}
	for (i = 0; i < n; i++)
		atomic_inc(&nodes[i]->nr_buffers);
	c->nodes = nodes;
	c->nr_nodes = n;
	return 0;
}

/*
 * Charge bytes to every node of c, or to none and return the node that had
 * no room (its failcnt is the caller's to count).  An uncharge (bytes
 * holding a negative s64) never fails.
 */
static struct gb_cg_node *gb_charge_try(struct gb_charge *c, enum gb_tier tier, u64 bytes)
{
	bool uncharge = (s64)bytes < 0;
	unsigned int i, k;

	for (i = 0; i < c->nr_nodes; i++) {
		struct gb_cg_counter *cnt = &c->nodes[i]->tier[tier];
		u64 usage = atomic64_add_return(bytes, &cnt->usage);

		/* Giving bytes back always succeeds, even over a lowered limit. */
		if (!uncharge && usage > (u64)atomic64_read(&cnt->max)) {
			for (k = 0; k <= i; k++)
				atomic64_sub(bytes, &c->nodes[k]->tier[tier].usage);
			return c->nodes[i];
		}
	}
	c->bytes[tier] += bytes;
	return NULL;
}

/* The same, EDQUOT counted in the failcnt of the level that refused. */
static int gb_charge_add(struct gb_charge *c, enum gb_tier tier, u64 bytes)
{
	struct gb_cg_node *full = gb_charge_try(c, tier, bytes);

	if (!full)
		return 0;
	atomic64_inc(&full->tier[tier].failcnt);
	return -EDQUOT;
}

/*
 * Charge bytes to every node of c even past their limits: a promotion must
 * not fail a map.  The owner's next allocations then find the cgroup full
 * and evict its coldest idle buffers first.
 */
static void gb_charge_force(struct gb_charge *c, enum gb_tier tier, u64 bytes)
{
	unsigned int i;

	for (i = 0; i < c->nr_nodes; i++)
		atomic64_add(bytes, &c->nodes[i]->tier[tier].usage);
	c->bytes[tier] += bytes;
}

static void gb_charge_uncharge_node(const struct gb_charge *c, struct gb_cg_node *node)
{
	int t;

	for (t = 0; t < GB_NR_TIERS; t++)
		if (c->bytes[t])
			atomic64_sub(c->bytes[t], &node->tier[t].usage);
}

/* A buffer lets go of a node it no longer charges. */
static void gb_cg_node_put_buffer(struct gb_cg_node *node)
{
	if (atomic_dec_and_test(&node->nr_buffers) && READ_ONCE(node->released))
		gb_cg_node_reap(node);
	kref_put(&node->ref, gb_cg_node_free);
}

static void gb_charge_exit(struct gb_charge *c)
{
	unsigned int i;

	for (i = 0; i < c->nr_nodes; i++) {
		gb_charge_uncharge_node(c, c->nodes[i]);
		gb_cg_node_put_buffer(c->nodes[i]);
	}
	kfree(c->nodes);
	memset(c, 0, sizeof(*c));
}

/*
 * Called under gb_buffers_lock as a new buffer joins gb_buffers: uncharge
 * the nodes CG_RELEASE marked since gb_charge_init() and move them, in
 * order, past c->nr_nodes; returns how many for gb_charge_put_dropped().
 * CG_RELEASE marks before it walks gb_buffers under that lock, so either
 * its report has this buffer or this sees the mark: a released node never
 * keeps a charge that its release did not report, nor one after it left
 * the xarray.
 */
static unsigned int gb_charge_drop_released(struct gb_charge *c)
{
	unsigned int i = 0, n = c->nr_nodes;
	struct gb_cg_node *node;

	while (i < c->nr_nodes) {
		node = c->nodes[i];
		if (!READ_ONCE(node->released)) {
			i++;
			continue;
		}
		gb_charge_uncharge_node(c, node);
		c->nr_nodes--;
		memmove(&c->nodes[i], &c->nodes[i + 1], (n - i - 1) * sizeof(*c->nodes));
		c->nodes[n - 1] = node;
	}
	return n - c->nr_nodes;
}

static void gb_charge_put_dropped(struct gb_charge *c, unsigned int nr_dropped)
{
	unsigned int i;

	for (i = c->nr_nodes; i < c->nr_nodes + nr_dropped; i++)
		gb_cg_node_put_buffer(c->nodes[i]);
}

/*
 * Copy in a size-prefixed struct: EINVAL below the first version, E2BIG for
 * unknown non-zero trailing bytes.
 */
static int gb_copy_in(void *k, size_t ksize, size_t ver0, void __user *uarg, u32 *usize)
{
	if (get_user(*usize, (u32 __user *)uarg))
		return -EFAULT;
	if (*usize < ver0)
		return -EINVAL;
	if (*usize > PAGE_SIZE)
		return -E2BIG;
	return copy_struct_from_user(k, ksize, uarg, *usize);
}

static int gb_copy_out(void __user *uarg, const void *k, size_t ksize, u32 usize)
{
	return copy_to_user(uarg, k, min_t(size_t, ksize, usize)) ? -EFAULT : 0;
}

static long gb_cg_query(void __user *uarg)
{
	struct gb_cg_query q;
	struct cgroup *cgrp;
	u32 usize;
	int ret;

	/*
	 * Every field but size is an output, so a struct filled by an earlier
	 * call may be passed again.
	 */
	ret = gb_copy_in(&q, sizeof(q), GB_CG_QUERY_SIZE_VER0, uarg, &usize);
	if (ret)
		return ret;

	cgrp = gb_current_cgroup_get();
	q.abi_version = GB_CG_ABI_VERSION;
	q.hierarchy = gb_cg_hier;
	q.level = cgrp->level;
	q.cgroup_id = cgroup_id(cgrp);
	q.features = GB_CG_FEAT_T2 | (gb_t3_configured() ? GB_CG_FEAT_T3 : 0);
	cgroup_put(cgrp);

	return gb_copy_out(uarg, &q, sizeof(q), usize);
}

static long gb_cg_set_limit(void __user *uarg)
{
	struct gb_cg_node *node;
	struct gb_cg_limit l;
	struct cgroup *cgrp;
	u32 usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = gb_copy_in(&l, sizeof(l), GB_CG_LIMIT_SIZE_VER0, uarg, &usize);
	if (ret)
		return ret;
	if (l.flags & ~(GB_CG_F_T2 | GB_CG_F_T3) || l.reserved0 ||
	    l.hierarchy != gb_cg_hier)
		return -EINVAL;

	mutex_lock(&gb_cg_lock);
	node = xa_load(&gb_cg_nodes, l.cgroup_id);
	/*
	 * A new node, or a released one taken back, needs a live cgroup; an
	 * unreleased one of a removed cgroup still bounds its buffers.
	 */
	if (!node || node->released) {
		cgrp = gb_cgroup_get_by_id(l.cgroup_id, NULL);
		if (!gb_cgroup_alive(cgrp))
			node = ERR_PTR(-ENOENT);
		else if (!node)
			node = gb_cg_node_create(cgrp);
		if (cgrp)
			cgroup_put(cgrp);
		if (IS_ERR(node)) {
			mutex_unlock(&gb_cg_lock);
			return PTR_ERR(node);
		}
	}
	l.prev_t2_max_bytes = atomic64_read(&node->tier[GB_T2].max);
	l.prev_t3_max_bytes = atomic64_read(&node->tier[GB_T3].max);
	if (l.flags & GB_CG_F_T2)
		atomic64_set(&node->tier[GB_T2].max, l.t2_max_bytes);
	if (l.flags & GB_CG_F_T3)
		atomic64_set(&node->tier[GB_T3].max, l.t3_max_bytes);
	/* Setting a limit on a released node takes it back into use. */
	WRITE_ONCE(node->released, false);
	mutex_unlock(&gb_cg_lock);

	return gb_copy_out(uarg, &l, sizeof(l), usize);
}

/*
 * Lowest limit per tier on the path root..ids[level] (no path: unlimited);
 * gb_cg_lock held.
 */
static void gb_cg_effective_max(const u64 *ids, u32 level, u64 *eff)
{
	struct gb_cg_node *node;
	u32 k;
	int t;

	for (t = 0; t < GB_NR_TIERS; t++)
		eff[t] = GB_CG_UNLIMITED;
	for (k = 0; ids && k <= level; k++) {
		node = xa_load(&gb_cg_nodes, ids[k]);
		if (!node)
			continue;
		for (t = 0; t < GB_NR_TIERS; t++)
			eff[t] = min_t(u64, eff[t], atomic64_read(&node->tier[t].max));
	}
}

static long gb_cg_get_usage(void __user *uarg)
{
	struct cgroup *cgrp = NULL, *self;
	struct gb_cg_usage in, u = {};
	u64 eff[GB_NR_TIERS], *ids = NULL;
	struct gb_cg_node *node;
	bool admin;
	u32 usize;
	int ret;

	ret = gb_copy_in(&in, sizeof(in), GB_CG_USAGE_SIZE_VER0, uarg, &usize);
	if (ret)
		return ret;
	if (in.flags & ~GB_CG_F_SELF || in.reserved0)
		return -EINVAL;

	self = gb_current_cgroup_get();
	if (in.flags & GB_CG_F_SELF) {
		cgrp = self;
		cgroup_get(cgrp);
	} else {
		ret = -EINVAL;
		if (in.hierarchy != gb_cg_hier)
			goto out;
		admin = ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN);
		cgrp = gb_cgroup_get_by_id(in.cgroup_id, admin ? NULL : self);
		ret = -EPERM;
		/* The subtree test first: capable() audits a denial. */
		if (!(gb_cgroup_alive(cgrp) && cgroup_is_descendant(cgrp, self)) &&
		    !capable(CAP_SYS_ADMIN))
			goto out;
	}
	u.size = in.size;
	u.flags = in.flags;
	u.hierarchy = gb_cg_hier;
	u.cgroup_id = cgrp ? cgroup_id(cgrp) : in.cgroup_id;
	if (cgrp) {
		ret = -ENOMEM;
		ids = kmalloc_array(cgrp->level + 1, sizeof(*ids), GFP_KERNEL);
		if (!ids)
			goto out;
		gb_cgroup_ancestor_ids(cgrp, ids);
	}

	mutex_lock(&gb_cg_lock);
	node = xa_load(&gb_cg_nodes, u.cgroup_id);
	if (node) {
		u.t2_usage_bytes = atomic64_read(&node->tier[GB_T2].usage);
		u.t3_usage_bytes = atomic64_read(&node->tier[GB_T3].usage);
		u.t2_max_bytes = atomic64_read(&node->tier[GB_T2].max);
		u.t3_max_bytes = atomic64_read(&node->tier[GB_T3].max);
		u.t2_failcnt = atomic64_read(&node->tier[GB_T2].failcnt);
		u.t3_failcnt = atomic64_read(&node->tier[GB_T3].failcnt);
		u.nr_buffers = atomic_read(&node->nr_buffers);
		if (gb_cg_node_has_limit(node))
			u.node_flags |= GB_CG_NODE_HAS_LIMIT;
		if (node->released)
			u.node_flags |= GB_CG_NODE_RELEASED;
		gb_cg_effective_max(node->ancestor_ids, node->level, eff);
	} else {
		/* No node: nothing charged, no limit of its own. */
		u.t2_max_bytes = GB_CG_UNLIMITED;
		u.t3_max_bytes = GB_CG_UNLIMITED;
		gb_cg_effective_max(ids, ids ? cgrp->level : 0, eff);
	}
	mutex_unlock(&gb_cg_lock);

	u.t2_effective_max_bytes = eff[GB_T2];
	u.t3_effective_max_bytes = eff[GB_T3];
	if (gb_cgroup_alive(cgrp))
		u.node_flags |= GB_CG_NODE_ALIVE;
	ret = gb_copy_out(uarg, &u, sizeof(u), usize);
out:
	kfree(ids);
	if (cgrp)
		cgroup_put(cgrp);
	cgroup_put(self);
	return ret;
}

struct gb_cg_match {
	u64 id;
	u32 level;
	bool recursive;
	u64 bytes[GB_NR_TIERS];
	u32 nr_buffers;
};

static bool gb_cg_node_matches(const struct gb_cg_node *node, const struct gb_cg_match *m)
{
	if (node->id == m->id)
		return true;
	return m->recursive && node->level > m->level &&
	       node->ancestor_ids[m->level] == m->id;
}

/* Sum the buffers charged to any matched node, each buffer once. */
static void gb_cg_sum_charge(const struct gb_charge *c, void *arg)
{
	struct gb_cg_match *m = arg;
	unsigned int i;
	int t;

	for (i = 0; i < c->nr_nodes; i++) {
		if (!gb_cg_node_matches(c->nodes[i], m))
			continue;
		for (t = 0; t < GB_NR_TIERS; t++)
			m->bytes[t] += c->bytes[t];
		m->nr_buffers++;
		return;
	}
}

/*
 * The level of cgroup id, read from the ancestors of a node below it: a
 * cgroup without a node of its own can still have nodes in its subtree.
 * Under gb_cg_lock.
 */
static bool gb_cg_level_from_subtree(u64 id, u32 *level)
{
	struct gb_cg_node *node;
	unsigned long index;
	u32 i;

	xa_for_each(&gb_cg_nodes, index, node)
		for (i = 0; i < node->level; i++)
			if (node->ancestor_ids[i] == id) {
				*level = i;
				return true;
			}
	return false;
}

static long gb_cg_release(void __user *uarg)
{
	struct gb_cg_node *target, *node;
	struct gb_cg_match m = {};
	struct gb_cg_release r;
	unsigned long index;
	u32 usize, released = 0;
	int ret, t;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = gb_copy_in(&r, sizeof(r), GB_CG_RELEASE_SIZE_VER0, uarg, &usize);
	if (ret)
		return ret;
	if (r.flags & ~(GB_CG_F_RECURSIVE | GB_CG_F_FAIL_IF_BUSY) || r.reserved0 ||
	    r.hierarchy != gb_cg_hier)
		return -EINVAL;

	mutex_lock(&gb_cg_lock);
	m.id = r.cgroup_id;
	m.recursive = r.flags & GB_CG_F_RECURSIVE;
	target = xa_load(&gb_cg_nodes, r.cgroup_id);
	if (target) {
		m.level = target->level;
	} else if (!m.recursive || !gb_cg_level_from_subtree(r.cgroup_id, &m.level)) {
		mutex_unlock(&gb_cg_lock);
		return -ENOENT;
	}

	ret = 0;
	/* nr_buffers also counts buffers still being created or freed. */
	if (r.flags & GB_CG_F_FAIL_IF_BUSY)
		xa_for_each(&gb_cg_nodes, index, node)
			if (gb_cg_node_matches(node, &m) && atomic_read(&node->nr_buffers))
				ret = -EBUSY;
	if (!ret) {
		xa_for_each(&gb_cg_nodes, index, node) {
			if (!gb_cg_node_matches(node, &m))
				continue;
			for (t = 0; t < GB_NR_TIERS; t++)
				atomic64_set(&node->tier[t].max, (s64)GB_CG_UNLIMITED);
			WRITE_ONCE(node->released, true);
			released++;
		}
	}
	/*
	 * After the marking: a buffer still being created drops the released
	 * nodes when it joins gb_buffers (gb_charge_drop_released()), so what
	 * stays charged to them is what this walk finds.
	 */
	gb_walk_charges(gb_cg_sum_charge, &m);
	r.t2_live_bytes = m.bytes[GB_T2];
	r.t3_live_bytes = m.bytes[GB_T3];
	r.nr_live_buffers = m.nr_buffers;
	if (!ret) {
		/* Pairs with the full barrier of the last uncharge. */
		smp_mb();
		xa_for_each(&gb_cg_nodes, index, node)
			if (gb_cg_node_matches(node, &m) && !atomic_read(&node->nr_buffers))
				gb_cg_node_remove(node);
	}
	mutex_unlock(&gb_cg_lock);
	r.nr_nodes_released = released;

	/* On EBUSY the report still tells what is live. */
	if (gb_copy_out(uarg, &r, sizeof(r), usize))
		return -EFAULT;
	return ret;
}

/* Index of id in nodes[0..n) (sorted by id), or -1. */
static int gb_cg_find_sorted(struct gb_cg_node **nodes, u32 n, u64 id)
{
	u32 lo = 0, hi = n;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (nodes[mid]->id == id)
			return mid;
		if (nodes[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * Whether the cgroup of each of nodes[0..n) (sorted by id) still exists,
 * inside the caller's cgroup namespace or not: one walk of the hierarchy for
 * the whole batch, not one per node (v1 hosts can hold many thousands of
 * zombie memcgs).
 */
static void gb_cg_alive_batch(struct gb_cg_node **nodes, u32 n, bool *alive)
{
	struct cgroup_subsys_state *pos;
	int k;

	if (!n)
		return;
	/* Under RCU a cgroup's flags can be read without a reference. */
	rcu_read_lock();
	css_for_each_descendant_pre(pos, gb_root_css()) {
		k = gb_cg_find_sorted(nodes, n, cgroup_id(pos->cgroup));
		if (k >= 0 && gb_cgroup_alive(pos->cgroup))
			alive[k] = true;
	}
	rcu_read_unlock();
}

static long gb_cg_list(void __user *uarg)
{
	struct gb_cg_node *node, **nodes = NULL;
	struct gb_cg_list l;
	unsigned long index;
	u32 usize, n = 0, i, max;
	bool *alive = NULL;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = gb_copy_in(&l, sizeof(l), GB_CG_LIST_SIZE_VER0, uarg, &usize);
	if (ret)
		return ret;
	if (l.flags || l.entry_size < sizeof(struct gb_cg_entry) ||
	    l.entry_size > GB_CG_LIST_ENTRY_MAX)
		return -EINVAL;

	max = min_t(u32, l.max_entries, GB_CG_LIST_BATCH);
	if (max && !access_ok(u64_to_user_ptr(l.entries_ptr), (u64)max * l.entry_size))
		return -EFAULT;
	if (max) {
		nodes = kvmalloc_array(max, sizeof(*nodes), GFP_KERNEL);
		alive = kvcalloc(max, sizeof(*alive), GFP_KERNEL);
		if (!nodes || !alive) {
			kvfree(nodes);
			kvfree(alive);
			return -ENOMEM;
		}
	}

	mutex_lock(&gb_cg_lock);
	if (l.start_after_id != U64_MAX) {
		xa_for_each_start(&gb_cg_nodes, index, node, l.start_after_id + 1) {
			if (n == max)
				break;
			kref_get(&node->ref);
			nodes[n++] = node;
		}
	}
	l.nr_total = gb_cg_nr_nodes;
	mutex_unlock(&gb_cg_lock);

	gb_cg_alive_batch(nodes, n, alive);
	for (i = 0; i < n; i++) {
		void __user *dst = u64_to_user_ptr(l.entries_ptr + (u64)i * l.entry_size);
		struct gb_cg_entry e = {};

		node = nodes[i];
		e.cgroup_id = node->id;
		e.t2_usage_bytes = atomic64_read(&node->tier[GB_T2].usage);
		e.t3_usage_bytes = atomic64_read(&node->tier[GB_T3].usage);
		e.t2_max_bytes = atomic64_read(&node->tier[GB_T2].max);
		e.t3_max_bytes = atomic64_read(&node->tier[GB_T3].max);
		e.hierarchy = gb_cg_hier;
		e.nr_buffers = atomic_read(&node->nr_buffers);
		e.level = node->level;
		if (gb_cg_node_has_limit(node))
			e.node_flags |= GB_CG_NODE_HAS_LIMIT;
		if (READ_ONCE(node->released))
			e.node_flags |= GB_CG_NODE_RELEASED;
		if (alive[i])
			e.node_flags |= GB_CG_NODE_ALIVE;

		if (!ret && (copy_to_user(dst, &e, sizeof(e)) ||
			     clear_user(dst + sizeof(e), l.entry_size - sizeof(e))))
			ret = -EFAULT;
	}
	for (i = 0; i < n; i++)
		kref_put(&nodes[i]->ref, gb_cg_node_free);
	kvfree(nodes);
	kvfree(alive);
	if (ret)
		return ret;

	l.nr_entries = n;
	return gb_copy_out(uarg, &l, sizeof(l), usize);
}

static long gb_cg_ioctl(unsigned int nr, void __user *uarg)
{
	switch (nr) {
	case _IOC_NR(GB_IOCTL_CG_QUERY):
		return gb_cg_query(uarg);
	case _IOC_NR(GB_IOCTL_CG_SET_LIMIT):
		return gb_cg_set_limit(uarg);
	case _IOC_NR(GB_IOCTL_CG_GET_USAGE):
		return gb_cg_get_usage(uarg);
	case _IOC_NR(GB_IOCTL_CG_RELEASE):
		return gb_cg_release(uarg);
	case _IOC_NR(GB_IOCTL_CG_LIST):
		return gb_cg_list(uarg);
	}
	return -ENOTTY;
}

static int gb_cg_init(const char *mode)
{
	/* Ids are xarray indices. */
	BUILD_BUG_ON(sizeof(unsigned long) < sizeof(u64));

	if (!strcmp(mode, "v2")) {
		gb_cg_hier = GB_CG_HIER_V2;
	} else if (!strcmp(mode, "v1mem") || !strcmp(mode, "auto")) {
#ifdef CONFIG_MEMCG
		bool v1 = cgroup_subsys_enabled(memory_cgrp_subsys) &&
			  !cgroup_subsys_on_dfl(memory_cgrp_subsys);

		if (!v1 && strcmp(mode, "auto")) {
			pr_err("cgroup_mode=v1mem: the memory controller is not on cgroup v1\n");
			return -EINVAL;
		}
		gb_cg_hier = v1 ? GB_CG_HIER_V1_MEMORY : GB_CG_HIER_V2;
#else
		if (strcmp(mode, "auto")) {
			pr_err("cgroup_mode=v1mem needs CONFIG_MEMCG\n");
			return -EINVAL;
		}
		gb_cg_hier = GB_CG_HIER_V2;
#endif
	} else {
		pr_err("cgroup_mode=%s: expected auto, v2 or v1mem\n", mode);
		return -EINVAL;
	}
	pr_info("accounting in cgroup %s\n",
		gb_cg_hier == GB_CG_HIER_V2 ? "v2" : "v1 memory");
	return 0;
}

/* No buffer is left (each holds a module reference), only idle nodes. */
static void gb_cg_exit(void)
{
	struct gb_cg_node *node;
	unsigned long index;

	mutex_lock(&gb_cg_lock);
	xa_for_each(&gb_cg_nodes, index, node)
		gb_cg_node_remove(node);
	mutex_unlock(&gb_cg_lock);
	xa_destroy(&gb_cg_nodes);
}

/*
 * Buffers: pinned pages (module-allocated or pinned user memory) exported as
 * DMA-BUFs.  A buffer lives as long as its DMA-BUF: every fd, mapping and
 * importer holds it, and its charges go when the last of them does.
 *
 * With a T3 store, a module-allocated buffer that nothing maps (no importer
 * mapping, no mmap, no vmap) and that is not flagged KV cache is idle: when
 * an allocation finds its cgroup's T2 budget or the pool full, the coldest
 * idle buffers that free the right budget are written to the store, their
 * pages freed and their charge moved from T2 to T3 (an eviction whose T3
 * charge or store space is refused is skipped).  The next map, mmap, vmap or
 * begin_cpu_access reads the buffer back.  buf->lock covers every state
 * change, so a buffer is never evicted while it is being mapped, and a
 * mapper waits until an eviction in progress is over and then promotes.
 */

#define GB_HUGE_ORDER	(21 - PAGE_SHIFT)	/* 2 MiB chunks */
#define GB_PIN_BATCH	65536UL			/* pages per pin call */

struct gb_buffer {
	struct kref ref;		/* the DMA-BUF's, and an evictor's */
	u64 size;			/* bytes, as exported and charged */
	unsigned long nr_pages;
	struct page **pages;		/* every 4 KiB page, also inside chunks */
	bool user_pages;		/* pinned user memory, not ours to free */
	bool huge;			/* filled with 2 MiB chunks where it can */
	u32 flags;			/* GB_ALLOC_* */
	u64 pool_bytes;			/* charged to the global pool */
	pid_t owner;			/* init-namespace TGID, 0 once disowned */
	struct list_head link;		/* in gb_buffers */
	u64 skip_pass;			/* under gb_buffers_lock */
	u64 last_use;			/* gb_use_clock at the last (un)map */
	struct gb_charge charge;

	struct mutex lock;		/* everything below, and the tier state */
	struct list_head attachments;
	void *vaddr;
	unsigned int vmap_count;
	unsigned int nr_dev_maps;	/* attachments mapped by importers */
	unsigned int mmap_count;	/* VMAs */
	bool evicted;			/* in T3, pages freed */
	bool dead;			/* the DMA-BUF is gone */
	struct gb_t3_extent *t3;
};

struct gb_attachment {
	struct device *dev;
	struct sg_table sgt;
	struct list_head link;
	bool has_sgt;			/* sgt built from the current pages */
	bool mapped;
};

static LIST_HEAD(gb_buffers);
static DEFINE_SPINLOCK(gb_buffers_lock);
static unsigned int gb_nr_buffers;
static atomic64_t gb_use_clock = ATOMIC64_INIT(0);
static atomic64_t gb_pass_clock = ATOMIC64_INIT(0);
static atomic64_t gb_evicted_bytes = ATOMIC64_INIT(0);

static u64 gb_t3_evicted_bytes(void)
{
	return atomic64_read(&gb_evicted_bytes);
}

static void gb_buffer_touch(struct gb_buffer *buf)
{
	WRITE_ONCE(buf->last_use, atomic64_inc_return(&gb_use_clock));
}

/*
 * Uncharge part of one tier.  gb_charge_add() of the two's complement
 * subtracts from every level at once and never fails.
 */
static void gb_charge_sub(struct gb_charge *c, enum gb_tier tier, u64 bytes)
{
	gb_charge_add(c, tier, -bytes);
}

static unsigned int gb_buffer_count(void)
{
	return READ_ONCE(gb_nr_buffers);
}

static void gb_walk_charges(gb_charge_fn fn, void *arg)
{
	struct gb_buffer *buf;

	spin_lock(&gb_buffers_lock);
	list_for_each_entry(buf, &gb_buffers, link)
		fn(&buf->charge, arg);
	spin_unlock(&gb_buffers_lock);
}

/*
 * Pages freed by the evictions a promotion makes room with, handed to that
 * promotion instead of going back to the page allocator: its data is read
 * over them, so they need no zeroing (which init_on_alloc would do).
 */
struct gb_recycle {
	struct list_head chunks;	/* 2 MiB compound heads, by page->lru */
	struct list_head pages;		/* single pages */
	u64 bytes;			/* in both lists */
};

static void gb_recycle_init(struct gb_recycle *rc)
{
	INIT_LIST_HEAD(&rc->chunks);
	INIT_LIST_HEAD(&rc->pages);
	rc->bytes = 0;
}

static struct page *gb_recycle_get(struct gb_recycle *rc, bool chunk)
{
	struct list_head *list;
	struct page *page;

	if (!rc)
		return NULL;
	list = chunk ? &rc->chunks : &rc->pages;
	if (list_empty(list))
		return NULL;
	page = list_first_entry(list, struct page, lru);
	list_del(&page->lru);
	rc->bytes -= PAGE_SIZE << compound_order(page);
	return page;
}

static void gb_recycle_free(struct gb_recycle *rc)
{
	struct page *page, *tmp;

	list_for_each_entry_safe(page, tmp, &rc->chunks, lru) {
		list_del(&page->lru);
		__free_pages(page, GB_HUGE_ORDER);
	}
	list_for_each_entry_safe(page, tmp, &rc->pages, lru) {
		list_del(&page->lru);
		__free_page(page);
	}
}

/* Module-allocated pages to rc (the 2 MiB chunks and single pages only). */
static void gb_buffer_recycle_pages(struct gb_buffer *buf, struct gb_recycle *rc)
{
	unsigned long i = 0;

	while (i < buf->nr_pages) {
		struct page *page = buf->pages[i];
		unsigned int order = compound_order(page);

		if (order == GB_HUGE_ORDER || !order) {
			list_add_tail(&page->lru, order ? &rc->chunks : &rc->pages);
			rc->bytes += PAGE_SIZE << order;
		} else {
			__free_pages(page, order);
		}
		i += 1UL << order;
	}
}

static void gb_buffer_free_pages(struct gb_buffer *buf, unsigned long filled)
{
	unsigned long i = 0;

	if (buf->user_pages) {
		unpin_user_pages(buf->pages, filled);
		return;
	}
	while (i < filled) {
		struct page *page = buf->pages[i];
		unsigned int order = compound_order(page);

		__free_pages(page, order);
		i += 1UL << order;
	}
}

/* Undo what gb_buffer_create() and the filling of pages did. */
static void gb_buffer_destroy(struct gb_buffer *buf, unsigned long filled)
{
	if (buf->t3) {
		gb_t3_release(buf->t3);
		if (buf->evicted)
			atomic64_sub(buf->size, &gb_evicted_bytes);
	}
	if (buf->pages) {
		gb_buffer_free_pages(buf, filled);
		kvfree(buf->pages);
	}
	if (buf->pool_bytes)
		gb_pool_uncharge(buf->pool_bytes);
	gb_charge_exit(&buf->charge);
	kfree(buf);
}

static bool gb_charges_meet(const struct gb_charge *a, const struct gb_charge *b)
{
	unsigned int i, j;

	for (i = 0; i < a->nr_nodes; i++)
		for (j = 0; j < b->nr_nodes; j++)
			if (a->nodes[i] == b->nodes[j])
				return true;
	return false;
}

/* Whether nothing maps the buffer and it may go to T3 (buf->lock held). */
static bool gb_buffer_idle(const struct gb_buffer *buf)
{
	return !buf->evicted && !buf->dead && !buf->user_pages &&
	       !(buf->flags & (GB_ALLOC_KV_CACHE | GB_ALLOC_FROZEN)) &&
	       !buf->nr_dev_maps && !buf->mmap_count && !buf->vmap_count;
}

/*
 * Write an idle buffer to the store and free its pages; its charge moves
 * from T2 to T3 and it leaves the pool.  On any error (EDQUOT: T3 budget,
 * ENOSPC: store cap, I/O) nothing changes.  buf->lock held.
 */
static int gb_buffer_evict(struct gb_buffer *buf, struct gb_recycle *rc)
{
	struct gb_t3_extent *ext;
	struct gb_attachment *a;
	int ret;

	lockdep_assert_held(&buf->lock);
	if (!gb_buffer_idle(buf))
		return -EBUSY;
	ret = gb_charge_add(&buf->charge, GB_T3, buf->size);
	if (ret)
		return ret;
	ext = gb_t3_reserve(buf->size, gb_t3_cap_bytes());
	if (IS_ERR(ext)) {
		gb_charge_sub(&buf->charge, GB_T3, buf->size);
		return PTR_ERR(ext);
	}
	ret = gb_t3_io(ext, buf->pages, buf->nr_pages, true);
	if (ret) {
		gb_t3_release(ext);
		gb_charge_sub(&buf->charge, GB_T3, buf->size);
		return ret;
	}
	gb_charge_sub(&buf->charge, GB_T2, buf->size);
	buf->t3 = ext;
	/* Importers' tables point at the pages: rebuilt at the next map. */
	list_for_each_entry(a, &buf->attachments, link) {
		if (a->has_sgt) {
			sg_free_table(&a->sgt);
			a->has_sgt = false;
		}
	}
	if (rc)
		gb_buffer_recycle_pages(buf, rc);
	else
		gb_buffer_free_pages(buf, buf->nr_pages);
	gb_pool_uncharge(buf->pool_bytes);
	buf->pool_bytes = 0;
	buf->evicted = true;
	atomic64_add(buf->size, &gb_evicted_bytes);
	return 0;
}

static void gb_buffer_free_ref(struct kref *ref);

/*
 * The coldest idle buffer not tried in this pass or a newer one (two
 * evictors must not keep handing each other the same victim), referenced:
 * any buffer (pool pressure, c == NULL) or one that shares a charged node
 * with c.
 */
static struct gb_buffer *gb_pick_victim(const struct gb_charge *c,
					const struct gb_buffer *except, u64 pass)
{
	struct gb_buffer *buf, *best = NULL;

	spin_lock(&gb_buffers_lock);
	list_for_each_entry(buf, &gb_buffers, link) {
		if (buf == except || buf->skip_pass >= pass)
			continue;
		/* A racy look; gb_buffer_evict() checks again under the lock. */
		if (!data_race(gb_buffer_idle(buf)))
			continue;
		if (c && !gb_charges_meet(c, &buf->charge))
			continue;
		if (!best || READ_ONCE(buf->last_use) < READ_ONCE(best->last_use))
			best = buf;
	}
	if (best) {
		best->skip_pass = pass;
		kref_get(&best->ref);
	}
	spin_unlock(&gb_buffers_lock);
	return best;
}

/*
 * Evict the next victim of this pass: 1 if one went to T3, 0 if one was
 * tried and skipped, -ENOENT if no candidate is left.  With except set, the
 * caller holds except->lock, so other buffers are only tried, never waited
 * for (two promotions would otherwise wait on each other).
 */
static int gb_evict_one(const struct gb_charge *c, struct gb_buffer *except, u64 pass,
			struct gb_recycle *rc)
{
	struct gb_buffer *victim;
	int ret = 0;

	victim = gb_pick_victim(c, except, pass);
	if (!victim)
		return -ENOENT;
	if (except) {
		if (!mutex_trylock(&victim->lock))
			goto out;
	} else {
		mutex_lock(&victim->lock);
	}
	ret = gb_buffer_evict(victim, rc) ? 0 : 1;
	mutex_unlock(&victim->lock);
out:
	kref_put(&victim->ref, gb_buffer_free_ref);
	return ret;
}

/*
 * Charge T2 to c, evicting to make room: level by level from the cgroup up,
 * while a level has no room, the coldest idle buffers charged to it go (so a
 * full cgroup does not evict its siblings' buffers; a full parent does).
 * EDQUOT once a level has no room and nothing left to evict, counted once in
 * that level's failcnt (the probes are not refusals).
 */
static int gb_charge_t2_evicting(struct gb_charge *c, u64 size, struct gb_buffer *except,
				 struct gb_recycle *rc)
{
	struct gb_cg_node *full;
	unsigned int i;

	if (!gb_t3_ready())
		return gb_charge_add(c, GB_T2, size);
	if (!gb_charge_try(c, GB_T2, size))
		return 0;
	for (i = 0; i < c->nr_nodes; i++) {
		struct gb_charge level = { .nodes = &c->nodes[i], .nr_nodes = 1 };
		u64 pass = atomic64_inc_return(&gb_pass_clock);
		int n;

		/* Probe this level alone. */
		while ((full = gb_charge_try(&level, GB_T2, size))) {
			/* A budget below the request: no eviction makes room. */
			if (size > (u64)atomic64_read(&full->tier[GB_T2].max))
				goto refused;
			do {
				if (fatal_signal_pending(current))
					return -EINTR;
				n = gb_evict_one(&level, except, pass, rc);
			} while (!n);
			if (n < 0)
				goto refused;
		}
		gb_charge_sub(&level, GB_T2, size);
	}
	full = gb_charge_try(c, GB_T2, size);
	if (!full)
		return 0;
refused:
	atomic64_inc(&full->tier[GB_T2].failcnt);
	return -EDQUOT;
}

/* The same for the global pool (ENOSPC) and RAM guard (ENOMEM). */
static int gb_pool_charge_evicting(u64 size, struct gb_buffer *except,
				   struct gb_recycle *rc)
{
	int ret = gb_pool_charge(size);
	u64 pass;

	if (!ret || !gb_t3_ready())
		return ret;
	/* Room no eviction makes: evicting others' buffers would be in vain. */
	if (size > gb_pool_cap_bytes() ||
	    size + gb_reserve_bytes() > gb_total_ram_bytes())
		return ret;
	pass = atomic64_inc_return(&gb_pass_clock);
	for (;;) {
		int n;

		if (fatal_signal_pending(current))
			return -EINTR;
		n = gb_evict_one(NULL, except, pass, rc);
		if (n < 0)
			return ret;
		if (n > 0) {
			ret = gb_pool_charge(size);
			if (!ret)
				return 0;
			/*
			 * The RAM guard does not see the pages the evictions
			 * handed to this promotion: with enough of them in hand
			 * it needs no more room.
			 */
			if (ret == -ENOMEM && rc && rc->bytes >= size) {
				gb_pool_charge_force(size);
				return 0;
			}
		}
	}
}

/*
 * Charge the caller's cgroups (EDQUOT), then the pool and RAM guard
 * (ENOSPC/ENOMEM), before any page is taken; with a T3 store, idle buffers
 * are evicted to make the room.
 */
static struct gb_buffer *gb_buffer_create(u64 size, bool user_pages, u32 flags)
{
	struct gb_buffer *buf;
	int ret;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return ERR_PTR(-ENOMEM);
	kref_init(&buf->ref);
	buf->size = size;
	buf->nr_pages = size >> PAGE_SHIFT;
	buf->user_pages = user_pages;
	buf->flags = flags;
	buf->owner = task_tgid_nr(current);
	mutex_init(&buf->lock);
	INIT_LIST_HEAD(&buf->attachments);
	gb_buffer_touch(buf);

	ret = gb_charge_init(&buf->charge);
	if (!ret)
		ret = gb_charge_t2_evicting(&buf->charge, size, NULL, NULL);
	if (!ret) {
		ret = gb_pool_charge_evicting(size, NULL, NULL);
		if (!ret)
			buf->pool_bytes = size;
	}
	if (!ret) {
		/* A size near the pool (TiBs) must fail, not warn. */
		buf->pages = kvmalloc_array(buf->nr_pages, sizeof(*buf->pages),
					    GFP_KERNEL | __GFP_NOWARN);
		if (!buf->pages)
			ret = -ENOMEM;
	}
	if (ret) {
		gb_buffer_destroy(buf, 0);
		return ERR_PTR(ret);
	}
	return buf;
}

/*
 * Fill with 2 MiB compound chunks where possible, else 4 KiB pages: zeroed,
 * or (rc set: the caller reads data over them) recycled ones first.
 */
static int gb_buffer_fill(struct gb_buffer *buf, bool huge, struct gb_recycle *rc,
			  unsigned long *filled)
{
	const bool zero = !rc;
	const gfp_t gfp = GFP_HIGHUSER | __GFP_NOWARN | (zero ? __GFP_ZERO : 0);
	const unsigned long step = huge ? 1UL << GB_HUGE_ORDER : 1;
	unsigned long i = 0, j;
	struct page *page;

	while (i < buf->nr_pages) {
		if (fatal_signal_pending(current))
			return -EINTR;
		page = NULL;
		if (huge)
			page = gb_recycle_get(rc, true);
		/* Recycled single pages go before new RAM (the guard counted them). */
		if (huge && !page && (!rc || list_empty(&rc->pages)))
			page = alloc_pages(gfp | __GFP_COMP | __GFP_NORETRY, GB_HUGE_ORDER);
		if (page) {
			for (j = 0; j < step; j++)
				buf->pages[i + j] = page + j;
			i += step;
		} else {
			/* A 2 MiB chunk that failed is made of single pages. */
			for (j = 0; j < step; j++) {
				page = gb_recycle_get(rc, false);
				if (!page)
					page = alloc_page(gfp | __GFP_RETRY_MAYFAIL);
				if (!page)
					return -ENOMEM;
				buf->pages[i++] = page;
				*filled = i;
			}
		}
		*filled = i;
		cond_resched();
	}
	return 0;
}

/*
 * Read an evicted buffer back (buf->lock held).  The T2 budget is charged,
 * after evicting the owner's other idle buffers if it is full; if even that
 * leaves no room it is charged by force (a map never fails for budget
 * reasons) and the owner's next allocations evict first.  The pool is
 * charged the same way.  Only a failure to get pages or to read the store
 * fails.
 */
static int gb_buffer_promote(struct gb_buffer *buf)
{
	unsigned long filled = 0;
	struct gb_recycle rc;
	int ret;

	lockdep_assert_held(&buf->lock);
	if (!buf->evicted)
		return 0;
	gb_recycle_init(&rc);
	if (gb_charge_t2_evicting(&buf->charge, buf->size, buf, &rc))
		gb_charge_force(&buf->charge, GB_T2, buf->size);
	if (gb_pool_charge_evicting(buf->size, buf, &rc))
		gb_pool_charge_force(buf->size);

	ret = gb_buffer_fill(buf, buf->huge, &rc, &filled);
	gb_recycle_free(&rc);
	if (!ret)
		ret = gb_t3_io(buf->t3, buf->pages, buf->nr_pages, false);
	if (ret) {
		gb_buffer_free_pages(buf, filled);
		gb_pool_uncharge(buf->size);
		gb_charge_sub(&buf->charge, GB_T2, buf->size);
		return ret;
	}
	buf->pool_bytes = buf->size;
	buf->evicted = false;
	atomic64_sub(buf->size, &gb_evicted_bytes);
	gb_charge_sub(&buf->charge, GB_T3, buf->size);
	gb_t3_release(buf->t3);
	buf->t3 = NULL;
	return 0;
}

static int gb_dmabuf_attach(struct dma_buf *dmabuf, struct dma_buf_attachment *attach)
{
	struct gb_buffer *buf = dmabuf->priv;
	struct gb_attachment *a;

	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	a->dev = attach->dev;
	attach->priv = a;

	mutex_lock(&buf->lock);
	list_add(&a->link, &buf->attachments);
	mutex_unlock(&buf->lock);
	return 0;
}

static void gb_dmabuf_detach(struct dma_buf *dmabuf, struct dma_buf_attachment *attach)
{
	struct gb_buffer *buf = dmabuf->priv;
	struct gb_attachment *a = attach->priv;

	mutex_lock(&buf->lock);
	list_del(&a->link);
	mutex_unlock(&buf->lock);
	if (a->has_sgt)
		sg_free_table(&a->sgt);
	kfree(a);
}

static struct sg_table *gb_dmabuf_map(struct dma_buf_attachment *attach,
				      enum dma_data_direction dir)
{
	struct gb_buffer *buf = attach->dmabuf->priv;
	struct gb_attachment *a = attach->priv;
	int ret;

	mutex_lock(&buf->lock);
	ret = gb_buffer_promote(buf);
	if (!ret && !a->has_sgt) {
		ret = sg_alloc_table_from_pages_segment(&a->sgt, buf->pages, buf->nr_pages, 0,
							buf->size,
							dma_get_max_seg_size(a->dev),
							GFP_KERNEL);
		a->has_sgt = !ret;
	}
	if (!ret)
		ret = dma_map_sgtable(a->dev, &a->sgt, dir, 0);
	if (!ret) {
		a->mapped = true;
		buf->nr_dev_maps++;
		gb_buffer_touch(buf);
	}
	mutex_unlock(&buf->lock);
	return ret ? ERR_PTR(ret) : &a->sgt;
}

static void gb_dmabuf_unmap(struct dma_buf_attachment *attach, struct sg_table *sgt,
			    enum dma_data_direction dir)
{
	struct gb_buffer *buf = attach->dmabuf->priv;
	struct gb_attachment *a = attach->priv;

	mutex_lock(&buf->lock);
	dma_unmap_sgtable(a->dev, sgt, dir, 0);
	a->mapped = false;
	buf->nr_dev_maps--;
	gb_buffer_touch(buf);
	mutex_unlock(&buf->lock);
}

static int gb_dmabuf_begin_cpu_access(struct dma_buf *dmabuf, enum dma_data_direction dir)
{
	struct gb_buffer *buf = dmabuf->priv;
	struct gb_attachment *a;
	int ret;

	mutex_lock(&buf->lock);
	ret = gb_buffer_promote(buf);
	if (ret) {
		mutex_unlock(&buf->lock);
		return ret;
	}
	gb_buffer_touch(buf);
	if (buf->vmap_count)
		invalidate_kernel_vmap_range(buf->vaddr, buf->size);
	list_for_each_entry(a, &buf->attachments, link)
		if (a->mapped)
			dma_sync_sgtable_for_cpu(a->dev, &a->sgt, dir);
	mutex_unlock(&buf->lock);
	return 0;
}

static int gb_dmabuf_end_cpu_access(struct dma_buf *dmabuf, enum dma_data_direction dir)
{
	struct gb_buffer *buf = dmabuf->priv;
	struct gb_attachment *a;

	mutex_lock(&buf->lock);
	if (buf->vmap_count)
		flush_kernel_vmap_range(buf->vaddr, buf->size);
	list_for_each_entry(a, &buf->attachments, link)
		if (a->mapped)
			dma_sync_sgtable_for_device(a->dev, &a->sgt, dir);
	mutex_unlock(&buf->lock);
	return 0;
}

/* VMAs keep the buffer resident: counted from mmap (or a copy) to close. */
static void gb_vm_open(struct vm_area_struct *vma)
{
	struct gb_buffer *buf = vma->vm_private_data;

	mutex_lock(&buf->lock);
	buf->mmap_count++;
	mutex_unlock(&buf->lock);
}

static void gb_vm_close(struct vm_area_struct *vma)
{
	struct gb_buffer *buf = vma->vm_private_data;

	mutex_lock(&buf->lock);
	buf->mmap_count--;
	gb_buffer_touch(buf);
	mutex_unlock(&buf->lock);
}

static const struct vm_operations_struct gb_vm_ops = {
	.open	= gb_vm_open,
	.close	= gb_vm_close,
};

/*
 * Map the pages straight into the VMA (normal cached memory, no faults
 * later), from vm_pgoff on, one remap per physically contiguous run; an
 * evicted buffer is read back first.
 */
static int gb_dmabuf_mmap(struct dma_buf *dmabuf, struct vm_area_struct *vma)
{
	struct gb_buffer *buf = dmabuf->priv;
	unsigned long first = vma->vm_pgoff, count = vma_pages(vma);
	unsigned long addr = vma->vm_start, i, run;
	int ret;

	if (first >= buf->nr_pages || count > buf->nr_pages - first)
		return -EINVAL;
	/* Private COW mappings of these pages make no sense. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;

	mutex_lock(&buf->lock);
	ret = gb_buffer_promote(buf);
	for (i = first; !ret && i < first + count; i += run) {
		unsigned long pfn = page_to_pfn(buf->pages[i]);

		for (run = 1; i + run < first + count; run++)
			if (page_to_pfn(buf->pages[i + run]) != pfn + run)
				break;
		ret = remap_pfn_range(vma, addr, pfn, run << PAGE_SHIFT, vma->vm_page_prot);
		addr += run << PAGE_SHIFT;
	}
	if (!ret) {
		vma->vm_private_data = buf;
		vma->vm_ops = &gb_vm_ops;
		buf->mmap_count++;
		gb_buffer_touch(buf);
	}
	mutex_unlock(&buf->lock);
	return ret;
}

static int gb_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct gb_buffer *buf = dmabuf->priv;
	int ret = 0;

	mutex_lock(&buf->lock);
	ret = gb_buffer_promote(buf);
	if (!ret && !buf->vmap_count) {
		buf->vaddr = vmap(buf->pages, buf->nr_pages, VM_MAP, PAGE_KERNEL);
		if (!buf->vaddr)
			ret = -ENOMEM;
	}
	if (!ret) {
		buf->vmap_count++;
		iosys_map_set_vaddr(map, buf->vaddr);
	}
	mutex_unlock(&buf->lock);
	return ret;
}

static void gb_dmabuf_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct gb_buffer *buf = dmabuf->priv;

	mutex_lock(&buf->lock);
	if (!--buf->vmap_count) {
		vunmap(buf->vaddr);
		buf->vaddr = NULL;
	}
	gb_buffer_touch(buf);
	mutex_unlock(&buf->lock);
	iosys_map_clear(map);
}

static void gb_buffer_free_ref(struct kref *ref)
{
	struct gb_buffer *buf = container_of(ref, struct gb_buffer, ref);

	gb_buffer_destroy(buf, buf->evicted ? 0 : buf->nr_pages);
}

static void gb_dmabuf_release(struct dma_buf *dmabuf)
{
	struct gb_buffer *buf = dmabuf->priv;

	spin_lock(&gb_buffers_lock);
	list_del(&buf->link);
	gb_nr_buffers--;
	spin_unlock(&gb_buffers_lock);
	/* An evictor may still hold the buffer: it sees dead and backs off. */
	mutex_lock(&buf->lock);
	buf->dead = true;
	mutex_unlock(&buf->lock);
	kref_put(&buf->ref, gb_buffer_free_ref);
}

static const struct dma_buf_ops gb_dmabuf_ops = {
	.attach			= gb_dmabuf_attach,
	.detach			= gb_dmabuf_detach,
	.map_dma_buf		= gb_dmabuf_map,
	.unmap_dma_buf		= gb_dmabuf_unmap,
	.begin_cpu_access	= gb_dmabuf_begin_cpu_access,
	.end_cpu_access		= gb_dmabuf_end_cpu_access,
	.mmap			= gb_dmabuf_mmap,
	.vmap			= gb_dmabuf_vmap,
	.vunmap			= gb_dmabuf_vunmap,
	.release		= gb_dmabuf_release,
};

/*
 * Export a filled buffer and hand its fd back through *fd_out in the user's
 * request; the fd is installed only once the copy-out has worked.
 */
static long gb_buffer_export(struct gb_buffer *buf, void __user *uarg, void *req,
			     size_t req_size, s32 *fd_out)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp);
	unsigned int nr_dropped;
	struct dma_buf *dmabuf;
	int fd;

	exp.ops = &gb_dmabuf_ops;
	exp.size = buf->size;
	exp.flags = O_RDWR;
	exp.priv = buf;
	dmabuf = dma_buf_export(&exp);
	if (IS_ERR(dmabuf)) {
		gb_buffer_destroy(buf, buf->nr_pages);
		return PTR_ERR(dmabuf);
	}

	spin_lock(&gb_buffers_lock);
	list_add_tail(&buf->link, &gb_buffers);
	gb_nr_buffers++;
	nr_dropped = gb_charge_drop_released(&buf->charge);
	spin_unlock(&gb_buffers_lock);
	gb_charge_put_dropped(&buf->charge, nr_dropped);

	/* From here on dma_buf_put() frees the buffer through ->release. */
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf);
		return fd;
	}
	*fd_out = fd;
	if (copy_to_user(uarg, req, req_size)) {
		put_unused_fd(fd);
		dma_buf_put(dmabuf);
		return -EFAULT;
	}
	fd_install(fd, dmabuf->file);
	return 0;
}

/*
 * Requests of 2 MiB or more are rounded up to whole 2 MiB chunks (unless
 * GB_ALLOC_NO_HUGEPAGE), smaller ones to pages; the rounded size is what the
 * DMA-BUF holds and what is charged, whether a chunk ends up as one compound
 * page or as 512 single pages.
 */
static long gb_ioctl_alloc(void __user *uarg)
{
	struct gb_alloc_req req;
	struct gb_buffer *buf;
	unsigned long filled = 0;
	bool huge;
	u64 size;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!req.size || req.size > gb_total_ram_bytes() ||
	    req.flags & ~GB_ALLOC_FLAGS_MASK)
		return -EINVAL;

	huge = !(req.flags & GB_ALLOC_NO_HUGEPAGE) && req.size >= SZ_2M;
	size = huge ? round_up(req.size, SZ_2M) : PAGE_ALIGN(req.size);

	buf = gb_buffer_create(size, false, req.flags);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	buf->huge = huge;
	ret = gb_buffer_fill(buf, huge, NULL, &filled);
	if (ret) {
		gb_buffer_destroy(buf, filled);
		return ret;
	}
	return gb_buffer_export(buf, uarg, &req, sizeof(req), &req.fd);
}

/*
 * Pin [vaddr, vaddr + size) long-term and export it.  vaddr must be page
 * aligned; size is rounded up to pages and charged like an allocation.
 */
static long gb_ioctl_pin_user_ptr(void __user *uarg)
{
	struct gb_pin_req req;
	struct gb_buffer *buf;
	unsigned long filled = 0;
	u64 size;
	int ret = 0;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!req.size || req.size > gb_total_ram_bytes() ||
	    !PAGE_ALIGNED(req.vaddr) || req.flags & ~GB_ALLOC_FLAGS_MASK)
		return -EINVAL;
	size = PAGE_ALIGN(req.size);
	if (req.vaddr + size < req.vaddr ||
	    !access_ok(u64_to_user_ptr(req.vaddr), size))
		return -EFAULT;

	buf = gb_buffer_create(size, true, req.flags);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	while (filled < buf->nr_pages) {
		unsigned long n = min(buf->nr_pages - filled, GB_PIN_BATCH);

		ret = pin_user_pages_fast(req.vaddr + (filled << PAGE_SHIFT), n,
					  FOLL_WRITE | FOLL_LONGTERM, buf->pages + filled);
		if (ret <= 0) {
			ret = ret ? ret : -EFAULT;
			break;
		}
		filled += ret;
		ret = 0;
		cond_resched();
	}
	if (ret) {
		gb_buffer_destroy(buf, filled);
		return ret;
	}
	return gb_buffer_export(buf, uarg, &req, sizeof(req), &req.fd);
}

/*
 * The module frees nothing a process still holds: its fds, mappings and
 * importers keep buffers alive until they go.  Releasing a process therefore
 * drops the module's ownership record of its buffers and reports how many
 * there were.
 */
static long gb_ioctl_release_pid(void __user *uarg)
{
	struct gb_release_pid_req req;
	struct gb_buffer *buf;
	long count = 0;
	pid_t pid;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req._pad || req.pid > PID_MAX_LIMIT)
		return -EINVAL;
	pid = req.pid ? req.pid : task_tgid_nr(current);
	if (pid != task_tgid_nr(current) && !capable(CAP_SYS_ADMIN))
		return -EPERM;

	spin_lock(&gb_buffers_lock);
	list_for_each_entry(buf, &gb_buffers, link) {
		if (buf->owner == pid) {
			buf->owner = 0;
			count++;
		}
	}
	spin_unlock(&gb_buffers_lock);
	return count;
}

/*
 * The character device: the pool and T3 ioctls, the dispatch to the buffer
 * and budget ioctls, and module init and exit.
 */

/*
 * T3 sizes: the store's cap (t3_mb), or without one what the store holds
 * plus what its file system has free; used = bytes in live extents.
 */
static void gb_t3_mb(u64 *total_mb, u64 *used_mb)
{
	u64 used = 0, total = gb_t3_cap_bytes();

	if (gb_t3_ready())
		gb_t3_stats(total, &used, &total);
	*total_mb = total >> GB_MB_SHIFT;
	*used_mb = used >> GB_MB_SHIFT;
}

static long gb_ioctl_get_info(void __user *uarg)
{
	struct gb_info info = {};
	struct sysinfo si;

	si_meminfo(&si);
	info.total_ram_mb = gb_total_ram_mb();
	info.free_ram_mb = ((u64)si.freeram * si.mem_unit) >> GB_MB_SHIFT;
	info.allocated_mb = (u64)atomic64_read(&gb_t2_used) >> GB_MB_SHIFT;
	info.max_pool_mb = READ_ONCE(pool_mb);
	info.safety_reserve_mb = READ_ONCE(safety_reserve_mb);
	info.available_mb = gb_t2_available_mb(info.allocated_mb, info.max_pool_mb,
					       info.safety_reserve_mb);
	info.active_buffers = gb_buffer_count();
	info.oom_active = READ_ONCE(gb_oom_active);
	gb_t3_mb(&info.nvme_swap_total_mb, &info.nvme_swap_used_mb);
	info.nvme_swap_free_mb = info.nvme_swap_total_mb > info.nvme_swap_used_mb ?
				 info.nvme_swap_total_mb - info.nvme_swap_used_mb : 0;
	info.nvme_t3_allocated_mb = gb_t3_evicted_bytes() >> GB_MB_SHIFT;
	info.swap_pressure = gb_swap_pressure(info.nvme_swap_used_mb, info.nvme_swap_total_mb);
	info.t2_pressure = gb_t2_pressure(info.allocated_mb, info.max_pool_mb);
	info.total_combined_mb = info.max_pool_mb + info.nvme_swap_total_mb;

	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long gb_ioctl_get_pool_info_v3(void __user *uarg)
{
	struct gb_pool_info_v3 info = {};

	info.t2_total_mb = READ_ONCE(pool_mb);
	info.t2_used_mb = (u64)atomic64_read(&gb_t2_used) >> GB_MB_SHIFT;
	info.t2_available_mb = gb_t2_available_mb(info.t2_used_mb, info.t2_total_mb,
						  READ_ONCE(safety_reserve_mb));
	gb_t3_mb(&info.t3_total_mb, &info.t3_used_mb);
	info.watchdog_pressure = gb_t2_pressure(info.t2_used_mb, info.t2_total_mb);
	info.active_buffers = gb_buffer_count();
	info.oom_active = READ_ONCE(gb_oom_active);

	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* New cap, clamped so the safety reserve stays free; lowering below use only
 * makes later allocations fail.
 */
static long gb_ioctl_set_pool_cap(void __user *uarg)
{
	struct gb_pool_cap_req req;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!req.cap_mb)
		return -EINVAL;

	mutex_lock(&gb_param_lock);
	req.prev_mb = pool_mb;
	WRITE_ONCE(pool_mb, min_t(u64, req.cap_mb, gb_pool_limit_mb()));
	gb_update_mirrors();
	mutex_unlock(&gb_param_lock);

	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

static long gb_ioctl_set_t3_cap(void __user *uarg)
{
	struct gb_t3_cap_req req;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;

	mutex_lock(&gb_param_lock);
	req.prev_mb = t3_mb;
	WRITE_ONCE(t3_mb, req.cap_mb);
	gb_update_mirrors();
	mutex_unlock(&gb_param_lock);

	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

static bool gb_is_cg_ioctl(unsigned int cmd)
{
	/* The size bits may grow with the struct, so match type, nr and dir. */
	return _IOC_TYPE(cmd) == GB_IOCTL_MAGIC &&
	       _IOC_DIR(cmd) == (_IOC_READ | _IOC_WRITE) &&
	       _IOC_NR(cmd) >= _IOC_NR(GB_IOCTL_CG_QUERY) &&
	       _IOC_NR(cmd) <= _IOC_NR(GB_IOCTL_CG_LIST);
}

static long gb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case GB_IOCTL_ALLOC:
		return gb_ioctl_alloc(uarg);
	case GB_IOCTL_GET_INFO:
		return gb_ioctl_get_info(uarg);
	case GB_IOCTL_PIN_USER_PTR:
		return gb_ioctl_pin_user_ptr(uarg);
	case GB_IOCTL_SET_POOL_CAP:
		return gb_ioctl_set_pool_cap(uarg);
	case GB_IOCTL_GET_POOL_INFO_V3:
		return gb_ioctl_get_pool_info_v3(uarg);
	case GB_IOCTL_RELEASE_PID:
		return gb_ioctl_release_pid(uarg);
	case GB_IOCTL_SET_T3_CAP:
		return gb_ioctl_set_t3_cap(uarg);
	}
	if (gb_is_cg_ioctl(cmd))
		return gb_cg_ioctl(_IOC_NR(cmd), uarg);
	return -ENOTTY;
}

static int gb_open(struct inode *inode, struct file *file)
{
	return nonseekable_open(inode, file);
}

static const struct file_operations gb_fops = {
	.owner		= THIS_MODULE,
	.open		= gb_open,
	.unlocked_ioctl	= gb_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/* Containers get the node through a device rule, so anyone may open it. */
static char *gb_devnode(GB_DEVNODE_CONST struct device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0666;
	return NULL;
}

static void gb_abi_checks(void)
{
	BUILD_BUG_ON(sizeof(struct gb_alloc_req) != 16);
	BUILD_BUG_ON(sizeof(struct gb_info) != 136);
	BUILD_BUG_ON(sizeof(struct gb_pin_req) != 24);
	BUILD_BUG_ON(sizeof(struct gb_pool_cap_req) != 16);
	BUILD_BUG_ON(sizeof(struct gb_pool_info_v3) != 88);
	BUILD_BUG_ON(sizeof(struct gb_release_pid_req) != 8);
	BUILD_BUG_ON(sizeof(struct gb_t3_cap_req) != 16);
	BUILD_BUG_ON(sizeof(struct gb_cg_query) != GB_CG_QUERY_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct gb_cg_limit) != GB_CG_LIMIT_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct gb_cg_usage) != GB_CG_USAGE_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct gb_cg_release) != GB_CG_RELEASE_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct gb_cg_entry) != GB_CG_ENTRY_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct gb_cg_list) != GB_CG_LIST_SIZE_VER0);
	BUILD_BUG_ON(offsetof(struct gb_info, total_combined_mb) != 128);
	BUILD_BUG_ON(offsetof(struct gb_cg_usage, nr_buffers) != 88);
}

static int __init gb_init(void)
{
	int ret;

	gb_abi_checks();
	ret = gb_params_init();
	if (ret)
		return ret;
	ret = gb_cg_init(cgroup_mode);
	if (ret)
		return ret;
	if (gb_t3_configured()) {
		ret = gb_t3_init(t3_path, t3_allow_tmpfs);
		if (ret)
			goto err_cg;
	}

	ret = alloc_chrdev_region(&gb_devt, 0, 1, GB_NAME);
	if (ret)
		goto err_t3;
	cdev_init(&gb_cdev, &gb_fops);
	gb_cdev.owner = THIS_MODULE;
	ret = cdev_add(&gb_cdev, gb_devt, 1);
	if (ret)
		goto err_region;

	gb_class = gb_class_create(GB_NAME);
	if (IS_ERR(gb_class)) {
		ret = PTR_ERR(gb_class);
		goto err_cdev;
	}
	gb_class->devnode = gb_devnode;

	gb_device = device_create(gb_class, NULL, gb_devt, NULL, GB_NAME);
	if (IS_ERR(gb_device)) {
		ret = PTR_ERR(gb_device);
		goto err_class;
	}

	pr_info("v%s: pool %lu MiB, reserve %ld MiB, T3 %lu MiB, device %u:%u\n",
		GB_MODULE_VERSION, pool_mb, safety_reserve_mb, t3_mb,
		MAJOR(gb_devt), MINOR(gb_devt));
	return 0;

err_class:
	class_destroy(gb_class);
err_cdev:
	cdev_del(&gb_cdev);
err_region:
	unregister_chrdev_region(gb_devt, 1);
err_t3:
	gb_t3_exit();
err_cg:
	gb_cg_exit();
	return ret;
}

/* Every DMA-BUF holds a module reference, so no buffer outlives us. */
static void __exit gb_exit(void)
{
	device_destroy(gb_class, gb_devt);
	class_destroy(gb_class);
	cdev_del(&gb_cdev);
	unregister_chrdev_region(gb_devt, 1);
	gb_t3_exit();
	gb_cg_exit();
}

module_init(gb_init);
module_exit(gb_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GreenBoost pinned-RAM DMA-BUF pool with cgroup budgets");
MODULE_VERSION(GB_MODULE_VERSION);
MODULE_INFO(import_ns, "DMA_BUF");
