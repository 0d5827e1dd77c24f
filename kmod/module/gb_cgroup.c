// SPDX-License-Identifier: GPL-2.0
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
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cgroup.h>
#include <linux/kref.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "greenboost.h"
#include "greenboost_ioctl.h"

#define GB_CG_LIST_BATCH	1024	/* most entries one CG_LIST returns */

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

#ifdef CONFIG_MEMCG
/*
 * The root css of the v1 memory hierarchy; rcu_read_lock() held.  Ids of a
 * v1 hierarchy are the kernfs ids of its own kernfs root, so they are
 * unique within it (never reused while the module runs) and equal the
 * inode numbers user space stats, as on cgroup2.
 */
static struct cgroup_subsys_state *gb_v1_root_css(void)
{
	struct cgroup_subsys_state *root = task_css(current, memory_cgrp_id);

	while (root->parent)
		root = root->parent;
	return root;
}
#endif

/* A cgroup of the active hierarchy by id, referenced, or NULL. */
static struct cgroup *gb_cgroup_get_by_id(u64 id)
{
	struct cgroup *cgrp = NULL;

	if (gb_cg_hier == GB_CG_HIER_V2) {
		cgrp = cgroup_get_from_id(id);
		return IS_ERR_OR_NULL(cgrp) ? NULL : cgrp;
	}
#ifdef CONFIG_MEMCG
	{
		struct cgroup_subsys_state *pos;

		/*
		 * v1 has no exported id lookup: walk the memory hierarchy.  It
		 * holds offline (zombie) memcgs too, which the caller tells
		 * apart with gb_cgroup_alive().
		 */
		rcu_read_lock();
		css_for_each_descendant_pre(pos, gb_v1_root_css()) {
			if (cgroup_id(pos->cgroup) != id)
				continue;
			if (cgroup_tryget(pos->cgroup))
				cgrp = pos->cgroup;
			break;
		}
		rcu_read_unlock();
	}
#endif
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
int gb_charge_init(struct gb_charge *c)
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
 * Charge bytes to every node of c, or to none (EDQUOT).  An uncharge (bytes
 * holding a negative s64) never fails.
 */
int gb_charge_add(struct gb_charge *c, enum gb_tier tier, u64 bytes)
{
	bool uncharge = (s64)bytes < 0;
	unsigned int i;

	for (i = 0; i < c->nr_nodes; i++) {
		struct gb_cg_counter *cnt = &c->nodes[i]->tier[tier];
		u64 usage = atomic64_add_return(bytes, &cnt->usage);

		/* Giving bytes back always succeeds, even over a lowered limit. */
		if (!uncharge && usage > (u64)atomic64_read(&cnt->max)) {
			atomic64_sub(bytes, &cnt->usage);
			atomic64_inc(&cnt->failcnt);
			while (i--)
				atomic64_sub(bytes, &c->nodes[i]->tier[tier].usage);
			return -EDQUOT;
		}
	}
	c->bytes[tier] += bytes;
	return 0;
}

/*
 * Charge bytes to every node of c even past their limits: a promotion must
 * not fail a map.  The owner's next allocations then find the cgroup full
 * and evict its coldest idle buffers first.
 */
void gb_charge_force(struct gb_charge *c, enum gb_tier tier, u64 bytes)
{
	unsigned int i;

	for (i = 0; i < c->nr_nodes; i++)
		atomic64_add(bytes, &c->nodes[i]->tier[tier].usage);
	c->bytes[tier] += bytes;
}

void gb_charge_exit(struct gb_charge *c)
{
	unsigned int i;
	int t;

	for (i = 0; i < c->nr_nodes; i++) {
		struct gb_cg_node *node = c->nodes[i];

		for (t = 0; t < GB_NR_TIERS; t++)
			if (c->bytes[t])
				atomic64_sub(c->bytes[t], &node->tier[t].usage);
		if (atomic_dec_and_test(&node->nr_buffers) && READ_ONCE(node->released))
			gb_cg_node_reap(node);
		kref_put(&node->ref, gb_cg_node_free);
	}
	kfree(c->nodes);
	memset(c, 0, sizeof(*c));
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

	ret = gb_copy_in(&q, sizeof(q), GB_CG_QUERY_SIZE_VER0, uarg, &usize);
	if (ret)
		return ret;
	if (q.abi_version || q.hierarchy || q.level || q.cgroup_id || q.features)
		return -EINVAL;

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
	if (!node) {
		cgrp = gb_cgroup_get_by_id(l.cgroup_id);
		if (!gb_cgroup_alive(cgrp))
			node = ERR_PTR(-ENOENT);
		else
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
		cgrp = gb_cgroup_get_by_id(in.cgroup_id);
		ret = -EPERM;
		if (!capable(CAP_SYS_ADMIN) &&
		    !(gb_cgroup_alive(cgrp) && cgroup_is_descendant(cgrp, self)))
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
	target = xa_load(&gb_cg_nodes, r.cgroup_id);
	if (!target) {
		mutex_unlock(&gb_cg_lock);
		return -ENOENT;
	}
	m.id = target->id;
	m.level = target->level;
	m.recursive = r.flags & GB_CG_F_RECURSIVE;
	gb_for_each_charge(gb_cg_sum_charge, &m);
	r.t2_live_bytes = m.bytes[GB_T2];
	r.t3_live_bytes = m.bytes[GB_T3];
	r.nr_live_buffers = m.nr_buffers;

	ret = 0;
	if (r.flags & GB_CG_F_FAIL_IF_BUSY) {
		ret = m.nr_buffers ? -EBUSY : 0;
		/* Also catch buffers still being created or freed. */
		xa_for_each(&gb_cg_nodes, index, node)
			if (gb_cg_node_matches(node, &m) && atomic_read(&node->nr_buffers))
				ret = -EBUSY;
	}
	if (!ret) {
		xa_for_each(&gb_cg_nodes, index, node) {
			if (!gb_cg_node_matches(node, &m))
				continue;
			for (t = 0; t < GB_NR_TIERS; t++)
				atomic64_set(&node->tier[t].max, (s64)GB_CG_UNLIMITED);
			WRITE_ONCE(node->released, true);
			released++;
			/* Pairs with the full barrier of the last uncharge. */
			smp_mb();
			if (!atomic_read(&node->nr_buffers))
				gb_cg_node_remove(node);
		}
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
 * Whether the cgroup of each of nodes[0..n) (sorted by id) still exists.  On
 * v1 this is one walk of the memory hierarchy for the whole batch, not one
 * per node: v1 hosts can hold many thousands of zombie memcgs.
 */
static void gb_cg_alive_batch(struct gb_cg_node **nodes, u32 n, bool *alive)
{
	struct cgroup *cgrp;
	u32 i;

	if (gb_cg_hier == GB_CG_HIER_V2) {
		for (i = 0; i < n; i++) {
			cgrp = gb_cgroup_get_by_id(nodes[i]->id);
			alive[i] = gb_cgroup_alive(cgrp);
			if (cgrp)
				cgroup_put(cgrp);
		}
		return;
	}
#ifdef CONFIG_MEMCG
	if (n) {
		struct cgroup_subsys_state *pos;
		int k;

		/* Under RCU a cgroup's flags can be read without a reference. */
		rcu_read_lock();
		css_for_each_descendant_pre(pos, gb_v1_root_css()) {
			k = gb_cg_find_sorted(nodes, n, cgroup_id(pos->cgroup));
			if (k >= 0 && gb_cgroup_alive(pos->cgroup))
				alive[k] = true;
		}
		rcu_read_unlock();
	}
#endif
}

static long gb_cg_list(void __user *uarg)
{
	struct gb_cg_node *node, **nodes = NULL;
	struct gb_cg_list l;
	unsigned long index;
	u32 usize, n = 0, i;
	bool *alive = NULL;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = gb_copy_in(&l, sizeof(l), GB_CG_LIST_SIZE_VER0, uarg, &usize);
	if (ret)
		return ret;
	if (l.flags || l.entry_size < sizeof(struct gb_cg_entry) ||
	    l.entry_size > PAGE_SIZE)
		return -EINVAL;

	l.max_entries = min_t(u32, l.max_entries, GB_CG_LIST_BATCH);
	if (l.max_entries) {
		nodes = kvmalloc_array(l.max_entries, sizeof(*nodes), GFP_KERNEL);
		alive = kvcalloc(l.max_entries, sizeof(*alive), GFP_KERNEL);
		if (!nodes || !alive) {
			kvfree(nodes);
			kvfree(alive);
			return -ENOMEM;
		}
	}

	mutex_lock(&gb_cg_lock);
	if (l.start_after_id != U64_MAX) {
		xa_for_each_start(&gb_cg_nodes, index, node, l.start_after_id + 1) {
			if (n == l.max_entries)
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

long gb_cg_ioctl(unsigned int nr, void __user *uarg)
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

int gb_cg_init(const char *mode)
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
void gb_cg_exit(void)
{
	struct gb_cg_node *node;
	unsigned long index;

	mutex_lock(&gb_cg_lock);
	xa_for_each(&gb_cg_nodes, index, node)
		gb_cg_node_remove(node);
	mutex_unlock(&gb_cg_lock);
	xa_destroy(&gb_cg_nodes);
}
