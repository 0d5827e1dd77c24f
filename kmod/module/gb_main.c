// SPDX-License-Identifier: GPL-2.0
/*
 * GreenBoost: pinned system RAM handed out as DMA-BUFs, with per-cgroup
 * budgets.  This file holds the module parameters, the global T2 pool and
 * RAM guard, the character device and the ioctl dispatch.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/capability.h>
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "greenboost.h"
#include "greenboost_ioctl.h"

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

static u64 gb_total_ram_mb(void)
{
	return ((u64)totalram_pages() << PAGE_SHIFT) >> GB_MB_SHIFT;
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

bool gb_t3_configured(void)
{
	return t3_path && t3_path[0];
}

u64 gb_t3_cap_bytes(void)
{
	return (u64)READ_ONCE(t3_mb) << GB_MB_SHIFT;
}

/*
 * Charge bytes to the global T2 pool: ENOSPC past the pool cap, ENOMEM when
 * the allocation would eat into the safety reserve (the RAM guard).
 */
int gb_pool_charge(u64 bytes)
{
	u64 cap = (u64)READ_ONCE(pool_mb) << GB_MB_SHIFT;
	u64 reserve = (u64)READ_ONCE(safety_reserve_mb) << GB_MB_SHIFT;

	if ((u64)atomic64_add_return(bytes, &gb_t2_used) > cap) {
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
void gb_pool_charge_force(u64 bytes)
{
	atomic64_add(bytes, &gb_t2_used);
}

void gb_pool_uncharge(u64 bytes)
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
