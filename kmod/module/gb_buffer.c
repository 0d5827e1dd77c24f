// SPDX-License-Identifier: GPL-2.0
/*
 * Buffers: pinned pages (module-allocated or pinned user memory) exported as
 * DMA-BUFs.  A buffer lives as long as its DMA-BUF: every fd, mapping and
 * importer holds it, and its charges go when the last of them does.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/list.h>
#include <linux/mm.h>
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
	struct dma_buf *dmabuf;
	u64 size;			/* bytes, as exported and charged */
	unsigned long nr_pages;
	struct page **pages;		/* every 4 KiB page, also inside chunks */
	bool user_pages;		/* pinned user memory, not ours to free */
	u64 pool_bytes;			/* charged to the global pool */
	pid_t owner;			/* init-namespace TGID, 0 once disowned */
	struct list_head link;		/* in gb_buffers */
	struct gb_charge charge;

	struct mutex lock;		/* attachments, vaddr, vmap_count */
	struct list_head attachments;
	void *vaddr;
	unsigned int vmap_count;
};

struct gb_attachment {
	struct device *dev;
	struct sg_table sgt;
	struct list_head link;
	bool mapped;
};

static LIST_HEAD(gb_buffers);
static DEFINE_SPINLOCK(gb_buffers_lock);
static unsigned int gb_nr_buffers;

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
	if (buf->pages) {
		gb_buffer_free_pages(buf, filled);
		kvfree(buf->pages);
	}
	if (buf->pool_bytes)
		gb_pool_uncharge(buf->pool_bytes);
	gb_charge_exit(&buf->charge);
	kfree(buf);
}

/*
 * Charge the caller's cgroups (EDQUOT), then the pool and RAM guard
 * (ENOSPC/ENOMEM), before any page is taken.
 */
static struct gb_buffer *gb_buffer_create(u64 size, bool user_pages)
{
	struct gb_buffer *buf;
	int ret;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return ERR_PTR(-ENOMEM);
	buf->size = size;
	buf->nr_pages = size >> PAGE_SHIFT;
	buf->user_pages = user_pages;
	buf->owner = task_tgid_nr(current);
	mutex_init(&buf->lock);
	INIT_LIST_HEAD(&buf->attachments);

	ret = gb_charge_init(&buf->charge);
	if (!ret)
		ret = gb_charge_add(&buf->charge, GB_T2, size);
	if (!ret) {
		ret = gb_pool_charge(size);
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

/* Fill with zeroed 2 MiB compound chunks where possible, else 4 KiB pages. */
static int gb_buffer_fill(struct gb_buffer *buf, bool huge, unsigned long *filled)
{
	const gfp_t gfp = GFP_HIGHUSER | __GFP_ZERO | __GFP_NOWARN;
	const unsigned long step = huge ? 1UL << GB_HUGE_ORDER : 1;
	unsigned long i = 0, j;
	struct page *page;

	while (i < buf->nr_pages) {
		if (fatal_signal_pending(current))
			return -EINTR;
		page = NULL;
		if (huge)
			page = alloc_pages(gfp | __GFP_COMP | __GFP_NORETRY, GB_HUGE_ORDER);
		if (page) {
			for (j = 0; j < step; j++)
				buf->pages[i + j] = page + j;
			i += step;
		} else {
			/* A 2 MiB chunk that failed is made of single pages. */
			for (j = 0; j < step; j++) {
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

static int gb_dmabuf_attach(struct dma_buf *dmabuf, struct dma_buf_attachment *attach)
{
	struct gb_buffer *buf = dmabuf->priv;
	struct gb_attachment *a;
	int ret;

	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	ret = sg_alloc_table_from_pages_segment(&a->sgt, buf->pages, buf->nr_pages, 0,
						buf->size,
						dma_get_max_seg_size(attach->dev),
						GFP_KERNEL);
	if (ret) {
		kfree(a);
		return ret;
	}
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
	sg_free_table(&a->sgt);
	kfree(a);
}

static struct sg_table *gb_dmabuf_map(struct dma_buf_attachment *attach,
				      enum dma_data_direction dir)
{
	struct gb_buffer *buf = attach->dmabuf->priv;
	struct gb_attachment *a = attach->priv;
	int ret;

	ret = dma_map_sgtable(a->dev, &a->sgt, dir, 0);
	if (ret)
		return ERR_PTR(ret);
	mutex_lock(&buf->lock);
	a->mapped = true;
	mutex_unlock(&buf->lock);
	return &a->sgt;
}

static void gb_dmabuf_unmap(struct dma_buf_attachment *attach, struct sg_table *sgt,
			    enum dma_data_direction dir)
{
	struct gb_buffer *buf = attach->dmabuf->priv;
	struct gb_attachment *a = attach->priv;

	mutex_lock(&buf->lock);
	a->mapped = false;
	mutex_unlock(&buf->lock);
	dma_unmap_sgtable(a->dev, sgt, dir, 0);
}

static int gb_dmabuf_begin_cpu_access(struct dma_buf *dmabuf, enum dma_data_direction dir)
{
	struct gb_buffer *buf = dmabuf->priv;
	struct gb_attachment *a;

	mutex_lock(&buf->lock);
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

/*
 * Map the pages straight into the VMA (normal cached memory, no faults
 * later), from vm_pgoff on, one remap per physically contiguous run.
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

	for (i = first; i < first + count; i += run) {
		unsigned long pfn = page_to_pfn(buf->pages[i]);

		for (run = 1; i + run < first + count; run++)
			if (page_to_pfn(buf->pages[i + run]) != pfn + run)
				break;
		ret = remap_pfn_range(vma, addr, pfn, run << PAGE_SHIFT, vma->vm_page_prot);
		if (ret)
			return ret;
		addr += run << PAGE_SHIFT;
	}
	return 0;
}

static int gb_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct gb_buffer *buf = dmabuf->priv;
	int ret = 0;

	mutex_lock(&buf->lock);
	if (!buf->vmap_count) {
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
	mutex_unlock(&buf->lock);
	iosys_map_clear(map);
}

static void gb_dmabuf_release(struct dma_buf *dmabuf)
{
	struct gb_buffer *buf = dmabuf->priv;

	spin_lock(&gb_buffers_lock);
	list_del(&buf->link);
	gb_nr_buffers--;
	spin_unlock(&gb_buffers_lock);
	gb_buffer_destroy(buf, buf->nr_pages);
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

	buf = gb_buffer_create(size, false);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	ret = gb_buffer_fill(buf, huge, &filled);
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

	buf = gb_buffer_create(size, true);
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
