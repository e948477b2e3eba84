/*
 * vmalloc.h - what kmalloc needs from vmalloc.c.
 */
#ifndef KMM_VMALLOC_H_INTERNAL
#define KMM_VMALLOC_H_INTERNAL

#include <stdbool.h>
#include <stddef.h>

#include <kmm/gfp.h>

#pragma GCC visibility push(hidden)

void *vmalloc_caller(size_t size, gfp_t gfp, bool huge, void *caller);

/* The usable size of the area starting exactly at addr; 0 if there is none. */
size_t vmalloc_size(const void *addr);

#pragma GCC visibility pop

#endif
