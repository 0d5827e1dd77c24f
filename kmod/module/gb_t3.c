// SPDX-License-Identifier: GPL-2.0
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
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/magic.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/uio.h>

#include "greenboost.h"

struct gb_t3_extent {
	struct list_head link;	/* in gb_t3_extents, by offset */
	u64 off;
	u64 len;
	bool stale;		/* freed, blocks still written */
};

static struct file *gb_t3_file;
static bool gb_t3_direct;
static LIST_HEAD(gb_t3_extents);
static DEFINE_MUTEX(gb_t3_lock);	/* the extents and byte counts */
static u64 gb_t3_used;			/* bytes in live extents */
static u64 gb_t3_stale;			/* bytes in stale extents */

bool gb_t3_ready(void)
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
int gb_t3_init(const char *path, bool allow_mem)
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
	gb_t3_file = f;
	pr_info("T3 store %s (%s I/O)\n", path, gb_t3_direct ? "direct" : "buffered");
	return 0;
}

/* Punch every stale extent out and forget it; gb_t3_lock held. */
static void gb_t3_punch_stale(void)
{
	struct gb_t3_extent *e, *tmp;
	int ret;

	lockdep_assert_held(&gb_t3_lock);
	if (!gb_t3_stale)
		return;
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
}

/* Every buffer holds a module reference, so no live extent is left. */
void gb_t3_exit(void)
{
	if (!gb_t3_file)
		return;
	mutex_lock(&gb_t3_lock);
	gb_t3_punch_stale();
	mutex_unlock(&gb_t3_lock);
	WARN_ON(!list_empty(&gb_t3_extents));
	filp_close(gb_t3_file, NULL);
	gb_t3_file = NULL;
}

/* Bytes in live extents, and the store's size (cap, else used + disk free). */
void gb_t3_stats(u64 cap, u64 *used, u64 *total)
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
struct gb_t3_extent *gb_t3_reserve(u64 len, u64 cap)
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
void gb_t3_release(struct gb_t3_extent *e)
{
	mutex_lock(&gb_t3_lock);
	e->stale = true;
	gb_t3_used -= e->len;
	gb_t3_stale += e->len;
	if (!gb_t3_used)
		gb_t3_punch_stale();
	mutex_unlock(&gb_t3_lock);
}

/*
 * Move nr_pages pages to (write) or from (read) the extent, one bio_vec per
 * physically contiguous run.
 */
int gb_t3_io(struct gb_t3_extent *e, struct page **pages, unsigned long nr_pages,
	     bool write)
{
	unsigned long i, run, nr_segs = 0;
	struct iov_iter iter;
	struct bio_vec *bv;
	loff_t pos = e->off;
	ssize_t n;
	int ret = 0;

	if ((u64)nr_pages << PAGE_SHIFT > e->len)
		return -EINVAL;
	bv = kvmalloc_array(nr_pages, sizeof(*bv), GFP_KERNEL);
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
	iov_iter_bvec(&iter, write ? WRITE : READ, bv, nr_segs,
		      (size_t)nr_pages << PAGE_SHIFT);
	while (iov_iter_count(&iter)) {
		if (write)
			n = vfs_iter_write(gb_t3_file, &iter, &pos, 0);
		else
			n = vfs_iter_read(gb_t3_file, &iter, &pos, 0);
		if (n <= 0) {
			ret = n ? n : -EIO;
			break;
		}
	}
	kvfree(bv);
	if (ret)
		pr_warn_ratelimited("T3 store: %s of %lu pages at %llu: %d\n",
				    write ? "write" : "read", nr_pages, e->off, ret);
	return ret;
}
