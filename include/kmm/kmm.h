/*
 * <kmm/kmm.h> - everything kmm exports, in one include.
 */
#ifndef KMM_KMM_H
#define KMM_KMM_H

#include <kmm/gfp.h>
#include <kmm/mmzone.h>
#include <kmm/percpu.h>
#include <kmm/percpu_counter.h>
#include <kmm/slab.h>
#include <kmm/topology.h>
#include <kmm/vmalloc.h>

#endif
