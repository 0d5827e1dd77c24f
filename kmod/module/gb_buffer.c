// SPDX-License-Identifier: GPL-2.0
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
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/list.h>
#include <linux/kref.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/threads.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "greenboost.h"
#include "greenboost_ioctl.h"

#define GB_HUGE_ORDER	(21 - PAGE_SHIFT)	/* 2 MiB chunks */
#define GB_PIN_BATCH	65536UL			/* pages per pin call */

struct gb_buffer {
	struct kref ref;		/* the DMA-BUF's, and an evictor's */
	struct dma_buf *dmabuf;
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

u64 gb_t3_evicted_bytes(void)
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

unsigned int gb_buffer_count(void)
{
	return READ_ONCE(gb_nr_buffers);
}

void gb_for_each_charge(void (*fn)(const struct gb_charge *c, void *arg), void *arg)
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
};

static void gb_recycle_init(struct gb_recycle *rc)
{
	INIT_LIST_HEAD(&rc->chunks);
	INIT_LIST_HEAD(&rc->pages);
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

		if (order == GB_HUGE_ORDER)
			list_add_tail(&page->lru, &rc->chunks);
		else if (!order)
			list_add_tail(&page->lru, &rc->pages);
		else
			__free_pages(page, order);
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
	       !(buf->flags & GB_ALLOC_KV_CACHE) && !buf->nr_dev_maps &&
	       !buf->mmap_count && !buf->vmap_count;
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
 * The coldest idle buffer not tried in this pass, referenced: any buffer
 * (pool pressure, c == NULL) or one that shares a charged node with c.
 */
static struct gb_buffer *gb_pick_victim(const struct gb_charge *c,
					const struct gb_buffer *except, u64 pass)
{
	struct gb_buffer *buf, *best = NULL;

	spin_lock(&gb_buffers_lock);
	list_for_each_entry(buf, &gb_buffers, link) {
		/* A racy look; gb_buffer_evict() checks again under the lock. */
		if (buf == except || buf->skip_pass == pass ||
		    !data_race(gb_buffer_idle(buf)))
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
 * EDQUOT once a level has no room and nothing left to evict.
 */
static int gb_charge_t2_evicting(struct gb_charge *c, u64 size, struct gb_buffer *except,
				 struct gb_recycle *rc)
{
	int ret = gb_charge_add(c, GB_T2, size);
	unsigned int i;

	if (ret != -EDQUOT || !gb_t3_ready())
		return ret;
	for (i = 0; i < c->nr_nodes; i++) {
		struct gb_charge level = { .nodes = &c->nodes[i], .nr_nodes = 1 };
		u64 pass = atomic64_inc_return(&gb_pass_clock);
		int n;

		/* Probe this level alone; a refusal counts in its failcnt. */
		while (gb_charge_add(&level, GB_T2, size)) {
			do {
				n = gb_evict_one(&level, except, pass, rc);
			} while (!n);
			if (n < 0)
				return -EDQUOT;
		}
		gb_charge_sub(&level, GB_T2, size);
	}
	return gb_charge_add(c, GB_T2, size);
}

/* The same for the global pool (ENOSPC) and RAM guard (ENOMEM). */
static int gb_pool_charge_evicting(u64 size, struct gb_buffer *except,
				   struct gb_recycle *rc)
{
	int ret = gb_pool_charge(size);
	u64 pass;

	if (!ret || !gb_t3_ready())
		return ret;
	pass = atomic64_inc_return(&gb_pass_clock);
	for (;;) {
		int n = gb_evict_one(NULL, except, pass, rc);

		if (n < 0)
			return ret;
		if (n > 0) {
			ret = gb_pool_charge(size);
			if (!ret)
				return 0;
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
		buf->pages = kvmalloc_array(buf->nr_pages, sizeof(*buf->pages),
					    GFP_KERNEL);
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
		if (huge && !page)
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
	buf->dmabuf = dmabuf;

	spin_lock(&gb_buffers_lock);
	list_add_tail(&buf->link, &gb_buffers);
	gb_nr_buffers++;
	spin_unlock(&gb_buffers_lock);

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
long gb_ioctl_alloc(void __user *uarg)
{
	struct gb_alloc_req req;
	struct gb_buffer *buf;
	unsigned long filled = 0;
	bool huge;
	u64 size;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!req.size || req.size > (u64)totalram_pages() << PAGE_SHIFT ||
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
long gb_ioctl_pin_user_ptr(void __user *uarg)
{
	struct gb_pin_req req;
	struct gb_buffer *buf;
	unsigned long filled = 0;
	u64 size;
	int ret = 0;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!req.size || req.size > (u64)totalram_pages() << PAGE_SHIFT ||
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
long gb_ioctl_release_pid(void __user *uarg)
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
