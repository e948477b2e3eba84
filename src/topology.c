/*
 * topology.c - possible CPUs, cache line and NUMA nodes.
 *
 * The allocator's own answers come from sysfs, read once with open/read:
 * no allocation, so they are safe during allocator start-up, and cheap
 * enough that a process running /bin/true pays almost nothing. hwloc is
 * loaded with dlopen only when kmm_topology() is called (or
 * KMM_OPTIONS=topology=1 asks for it), never on an allocation path. hwloc
 * reads the same sysfs files; where its cache line differs (a machine whose
 * sysconf and sysfs say nothing), caches created afterwards with
 * SLAB_HWCACHE_ALIGN use hwloc's.
 *
 * Locking: the cached numbers are written once with relaxed atomics (any
 * racing reader computes the same value); hwloc_lock serializes the one
 * load of the richer view.
 */
#include "topology.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kmm/topology.h>

#include "internal.h"
#include "lock.h"
#include "options.h"
#include "os.h"

#ifdef KMM_HAVE_HWLOC
#include <hwloc.h>
#endif

static atomic_uint nr_possible, cache_line, nr_nodes;

/* Reads a small sysfs file into buf; false if it cannot. */
static bool read_sysfs(const char *path, char *buf, size_t size)
{
	int fd = os_open(path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0)
		return false;
	n = os_read(fd, buf, size - 1);
	os_close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* The highest number in a kernel CPU/node list ("0-3,8-11") plus one; 0 if none. */
KMM_HOT_TEXT static unsigned int list_span(const char *path)
{
	char buf[256];
	unsigned long highest = 0;
	bool any = false;

	if (!read_sysfs(path, buf, sizeof(buf)))
		return 0;
	for (const char *p = buf; *p;) {
		char *end;
		unsigned long v;

		/* Digits only: strtoul would read the "-1" of "0-1" as ULONG_MAX. */
		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		v = strtoul(p, &end, 10);
		any = true;
		if (v > highest)
			highest = v;
		p = end;
	}
	return any ? (unsigned int)highest + 1 : 0;
}

static unsigned int cached(atomic_uint *slot, unsigned int (*compute)(void))
{
	unsigned int v = atomic_load_explicit(slot, memory_order_relaxed);

	if (!v) {
		v = compute();
		atomic_store_explicit(slot, v, memory_order_relaxed);
	}
	return v;
}

static unsigned int compute_possible(void)
{
	unsigned int n = list_span("/sys/devices/system/cpu/possible");
	long conf;

	if (n)
		return n;
	conf = sysconf(_SC_NPROCESSORS_CONF);
	return conf > 0 ? (unsigned int)conf : 1;
}

static unsigned int compute_cache_line(void)
{
	char buf[32];
	long line = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);

	if (line <= 0 &&
	    read_sysfs("/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size", buf,
		       sizeof(buf)))
		line = strtol(buf, NULL, 10);
	return line > 0 ? (unsigned int)line : 64;
}

static unsigned int compute_nodes(void)
{
	unsigned int n = list_span("/sys/devices/system/node/possible");

	return n ? n : 1;
}

KMM_HOT_TEXT unsigned int topology_nr_possible_cpus(void)
{
	return cached(&nr_possible, compute_possible);
}

unsigned int topology_cache_line(void)
{
	return cached(&cache_line, compute_cache_line);
}

unsigned int topology_nr_nodes(void)
{
	return cached(&nr_nodes, compute_nodes);
}

/* ---------------------------------------------------------------------------
 * The full view: sysfs, refined by hwloc where it is installed
 */

struct kmm_lock hwloc_lock = KMM_LOCK_INIT;
static bool topology_loaded;
static struct kmm_topology topology_view;

static void sysfs_view(struct kmm_topology *t)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	*t = (struct kmm_topology){
		.possible_cpus = topology_nr_possible_cpus(),
		.online_cpus = online > 0 ? (unsigned int)online : 1,
		.numa_nodes = topology_nr_nodes(),
		.cache_line = topology_cache_line(),
		.source = "sysfs",
	};
}

#ifdef KMM_HAVE_HWLOC
struct hwloc_calls {
	int (*topology_init)(hwloc_topology_t *);
	int (*topology_load)(hwloc_topology_t);
	void (*topology_destroy)(hwloc_topology_t);
	int (*get_type_depth)(hwloc_topology_t, hwloc_obj_type_t);
	unsigned (*get_nbobjs_by_depth)(hwloc_topology_t, int);
	hwloc_obj_t (*get_obj_by_depth)(hwloc_topology_t, int, unsigned);
	unsigned (*get_api_version)(void);
};

static bool hwloc_resolve(void *lib, struct hwloc_calls *c)
{
	c->topology_init = (int (*)(hwloc_topology_t *))dlsym(lib, "hwloc_topology_init");
	c->topology_load = (int (*)(hwloc_topology_t))dlsym(lib, "hwloc_topology_load");
	c->topology_destroy = (void (*)(hwloc_topology_t))dlsym(lib, "hwloc_topology_destroy");
	c->get_type_depth = (int (*)(hwloc_topology_t, hwloc_obj_type_t))
		dlsym(lib, "hwloc_get_type_depth");
	c->get_nbobjs_by_depth = (unsigned (*)(hwloc_topology_t, int))
		dlsym(lib, "hwloc_get_nbobjs_by_depth");
	c->get_obj_by_depth = (hwloc_obj_t (*)(hwloc_topology_t, int, unsigned))
		dlsym(lib, "hwloc_get_obj_by_depth");
	c->get_api_version = (unsigned (*)(void))dlsym(lib, "hwloc_get_api_version");
	return c->topology_init && c->topology_load && c->topology_destroy &&
	       c->get_type_depth && c->get_nbobjs_by_depth && c->get_obj_by_depth &&
	       c->get_api_version && (c->get_api_version() >> 16) == (HWLOC_API_VERSION >> 16);
}

static unsigned int count_type(const struct hwloc_calls *c, hwloc_topology_t topo,
			       hwloc_obj_type_t type)
{
	int depth = c->get_type_depth(topo, type);

	if (depth == HWLOC_TYPE_DEPTH_UNKNOWN || depth == HWLOC_TYPE_DEPTH_MULTIPLE)
		return 0;
	return c->get_nbobjs_by_depth(topo, depth);
}

static size_t cache_size(const struct hwloc_calls *c, hwloc_topology_t topo,
			 hwloc_obj_type_t type, unsigned int *line)
{
	int depth = c->get_type_depth(topo, type);
	hwloc_obj_t obj;

	if (depth < 0)
		return 0;
	obj = c->get_obj_by_depth(topo, depth, 0);
	if (!obj || !obj->attr)
		return 0;
	if (line && obj->attr->cache.linesize)
		*line = obj->attr->cache.linesize;
	return (size_t)obj->attr->cache.size;
}

static void hwloc_view(struct kmm_topology *t)
{
	static char source[32];
	struct hwloc_calls c;
	hwloc_topology_t topo;
	void *lib = dlopen("libhwloc.so.15", RTLD_NOW | RTLD_LOCAL);
	unsigned int v;

	if (!lib)
		return;
	if (!hwloc_resolve(lib, &c) || c.topology_init(&topo) != 0) {
		dlclose(lib);
		return;
	}
	if (c.topology_load(topo) == 0) {
		t->cores = count_type(&c, topo, HWLOC_OBJ_CORE);
		t->packages = count_type(&c, topo, HWLOC_OBJ_PACKAGE);
		if ((v = count_type(&c, topo, HWLOC_OBJ_PU)))
			t->online_cpus = v;
		if ((v = count_type(&c, topo, HWLOC_OBJ_NUMANODE)))
			t->numa_nodes = v;
		t->l1d_size = cache_size(&c, topo, HWLOC_OBJ_L1CACHE, &t->cache_line);
		/* hwloc refines what the allocator uses from now on (SLAB_HWCACHE_ALIGN). */
		if (t->cache_line >= 16 && !(t->cache_line & (t->cache_line - 1)))
			atomic_store_explicit(&cache_line, t->cache_line, memory_order_relaxed);
		t->l2_size = cache_size(&c, topo, HWLOC_OBJ_L2CACHE, NULL);
		t->l3_size = cache_size(&c, topo, HWLOC_OBJ_L3CACHE, NULL);
		v = c.get_api_version();
		kmm_snprint(source, sizeof(source), "hwloc (API %u.%u.%u)", v >> 16, (v >> 8) & 0xff,
			    v & 0xff);
		t->source = source;
	}
	c.topology_destroy(topo);
	/* libhwloc stays loaded: unloading libraries with constructors is fragile. */
}
#endif

KMM_API void kmm_topology(struct kmm_topology *topo)
{
	kmm_lock(&hwloc_lock);
	if (!topology_loaded) {
		sysfs_view(&topology_view);
#ifdef KMM_HAVE_HWLOC
		hwloc_view(&topology_view);
#endif
		topology_loaded = true;
	}
	*topo = topology_view;
	kmm_unlock(&hwloc_lock);
}

KMM_API void kmm_show_topology(int fd)
{
	struct kmm_topology t;

	kmm_topology(&t);
	kmm_dprint(fd, "source: %s\npossible_cpus: %u\nonline_cpus: %u\ncores: %u\n"
		       "packages: %u\nnuma_nodes: %u\ncache_line: %u\nl1d_size: %zu\n"
		       "l2_size: %zu\nl3_size: %zu\n",
		   t.source, t.possible_cpus, t.online_cpus, t.cores, t.packages, t.numa_nodes,
		   t.cache_line, t.l1d_size, t.l2_size, t.l3_size);
}

/*
 * KMM_OPTIONS=topology=1: the view on stderr when the library is loaded.
 * A constructor is a safe place for dlopen; allocations inside it are served
 * like any other.
 */
KMM_HOT_TEXT __attribute__((constructor)) static void topology_print_at_start(void)
{
	if (kmm_options()->topology)
		kmm_show_topology(STDERR_FILENO);
}
