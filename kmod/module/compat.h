/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place for kernel version differences (6.1 .. current).
 *
 * Not needed here, on purpose: pin_user_pages_fast() has taken four
 * arguments on every supported kernel (only pin_user_pages() lost its vmas
 * argument in 6.5); remap_pfn_range() sets the VMA flags itself, so no
 * vm_flags_set(); no eventfd is signalled; file_operations leave .llseek
 * unset and call nonseekable_open() because no_llseek is gone since 6.12;
 * the DMA_BUF namespace is imported with MODULE_INFO(import_ns, ...), which
 * every version accepts, where MODULE_IMPORT_NS() changed from a token to a
 * string in 6.13.
 */
#ifndef GB_COMPAT_H
#define GB_COMPAT_H

#include <linux/device.h>
#include <linux/fs.h>
#include <linux/uio.h>
#include <linux/version.h>

/* class_create() lost its owner argument in 6.4. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define gb_class_create(name)	class_create(name)
#else
#define gb_class_create(name)	class_create(THIS_MODULE, name)
#endif

/* struct class::devnode takes a const device since 6.2. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define GB_DEVNODE_CONST	const
#else
#define GB_DEVNODE_CONST
#endif

/*
 * vfs_iter_write() takes the file system's freeze protection itself since
 * 6.8; before, its caller must (taking it twice can deadlock a freeze).
 */
static inline ssize_t gb_iter_write(struct file *file, struct iov_iter *iter, loff_t *pos)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return vfs_iter_write(file, iter, pos, 0);
#else
	ssize_t ret;

	file_start_write(file);
	ret = vfs_iter_write(file, iter, pos, 0);
	file_end_write(file);
	return ret;
#endif
}

#endif /* GB_COMPAT_H */
