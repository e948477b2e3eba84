/*
 * options.h - KMM_OPTIONS, kmm's one settings variable, read once at start-up:
 *   KMM_OPTIONS="decay_ms=200,rseq=0,stats=1,log_load=/tmp/kmm.log"
 * Unknown names and bad values get a warning and are ignored.
 */
#ifndef KMM_OPTIONS_H
#define KMM_OPTIONS_H

#include <stdbool.h>

#include "lock.h"

#pragma GCC visibility push(hidden)

struct kmm_options {
	int rseq;		/* -1: default (rseq where available), 0: per-thread sheaves */
	long decay_ms;		/* page decay; -2: default */
	bool stats;		/* malloc statistics on stderr at exit */
	bool topology;		/* the topology on stderr at start-up */
	bool no_boot_arena;	/* boot_arena=0: malloc starts kmm at its first call */
	bool thp;		/* thp=1: sections advised for transparent huge pages */
	char log_load[256];	/* append "pid exe" to this file at start-up */
};

/* Parsed on first call; never allocates. */
const struct kmm_options *kmm_options(void);

/* Appends this process to log_load, if set (called once at start-up). */
void kmm_options_log_load(void);

/* Taken while the options are first read; fork.c's handlers take it too. */
extern struct kmm_lock parse_lock;

#pragma GCC visibility pop

#endif
