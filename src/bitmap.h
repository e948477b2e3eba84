/*
 * bitmap.h - bitmaps of unsigned longs: the page runs' dirty bits (runs.c)
 * and the per-CPU allocator's granule maps (percpu.c). No locking: each
 * map's owner guards it.
 */
#ifndef KMM_BITMAP_H
#define KMM_BITMAP_H

#include <stdbool.h>

#pragma GCC visibility push(hidden)

#define BITS_PER_LONG (8 * sizeof(unsigned long))

static inline bool bitmap_test(const unsigned long *map, unsigned long bit)
{
	return map[bit / BITS_PER_LONG] & (1UL << (bit % BITS_PER_LONG));
}

/* Sets (set) or clears bits [from, from + n), a word at a time. */
static inline void bitmap_assign(unsigned long *map, unsigned long from, unsigned long n, bool set)
{
	for (unsigned long i = from, end = from + n; i < end;) {
		unsigned long bit = i % BITS_PER_LONG;
		unsigned long k = BITS_PER_LONG - bit < end - i ? BITS_PER_LONG - bit : end - i;
		unsigned long mask = (k == BITS_PER_LONG ? ~0UL : (1UL << k) - 1) << bit;

		if (set)
			map[i / BITS_PER_LONG] |= mask;
		else
			map[i / BITS_PER_LONG] &= ~mask;
		i += k;
	}
}

/* The first bit in [i, end) that is set (set) or clear (!set); end if none. */
static inline unsigned long bitmap_find(const unsigned long *map, unsigned long i,
					unsigned long end, bool set)
{
	while (i < end) {
		unsigned long w = map[i / BITS_PER_LONG];

		w = (set ? w : ~w) >> (i % BITS_PER_LONG);
		if (w) {
			i += (unsigned long)__builtin_ctzl(w);
			return i < end ? i : end;
		}
		i = (i / BITS_PER_LONG + 1) * BITS_PER_LONG;
	}
	return end;
}

#pragma GCC visibility pop

#endif
