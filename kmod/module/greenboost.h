/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations shared by the files of greenboost.ko. */
#ifndef GB_GREENBOOST_H
#define GB_GREENBOOST_H

#include <linux/types.h>

#define GB_MODULE_VERSION	"0.1.0"

enum gb_tier {
	GB_T2,		/* pinned system RAM */
	GB_T3,		/* NVMe store */
	GB_NR_TIERS,
};

struct gb_cg_node;
struct gb_t3_extent;
struct page;

/*
 * What one buffer has charged: the accounting nodes of its allocator's
 * cgroup and ancestors (each referenced) and the bytes per tier.
 */
struct gb_charge {
	struct gb_cg_node **nodes;
	unsigned int nr_nodes;
	u64 bytes[GB_NR_TIERS];
};

/* gb_main.c */
int gb_pool_charge(u64 bytes);
void gb_pool_uncharge(u64 bytes);
void gb_pool_charge_force(u64 bytes);
bool gb_t3_configured(void);
u64 gb_t3_cap_bytes(void);

/* gb_buffer.c */
long gb_ioctl_alloc(void __user *uarg);
long gb_ioctl_pin_user_ptr(void __user *uarg);
long gb_ioctl_release_pid(void __user *uarg);
unsigned int gb_buffer_count(void);
void gb_for_each_charge(void (*fn)(const struct gb_charge *c, void *arg), void *arg);
u64 gb_t3_evicted_bytes(void);

/* gb_t3.c */
int gb_t3_init(const char *path, bool allow_mem);
void gb_t3_exit(void);
bool gb_t3_ready(void);
void gb_t3_stats(u64 cap, u64 *used, u64 *total);
struct gb_t3_extent *gb_t3_reserve(u64 len, u64 cap);
void gb_t3_release(struct gb_t3_extent *e);
int gb_t3_io(struct gb_t3_extent *e, struct page **pages, unsigned long nr_pages,
	     bool write);

/* gb_cgroup.c */
int gb_cg_init(const char *mode);
void gb_cg_exit(void);
int gb_charge_init(struct gb_charge *c);
int gb_charge_add(struct gb_charge *c, enum gb_tier tier, u64 bytes);
void gb_charge_force(struct gb_charge *c, enum gb_tier tier, u64 bytes);
void gb_charge_exit(struct gb_charge *c);
long gb_cg_ioctl(unsigned int nr, void __user *uarg);

#endif /* GB_GREENBOOST_H */
