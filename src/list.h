/*
 * list.h - the kernel's circular doubly linked list, for free lists and
 * section lists. The caller provides the locking.
 */
#ifndef KMM_LIST_H
#define KMM_LIST_H

#include <stdbool.h>

#include "internal.h"

struct list_head {
	struct list_head *next, *prev;
};

static inline void INIT_LIST_HEAD(struct list_head *list)
{
	list->next = list;
	list->prev = list;
}

static inline void __list_add(struct list_head *entry, struct list_head *prev,
			      struct list_head *next)
{
	next->prev = entry;
	entry->next = next;
	entry->prev = prev;
	prev->next = entry;
}

static inline void list_add(struct list_head *entry, struct list_head *head)
{
	__list_add(entry, head, head->next);
}

static inline void list_add_tail(struct list_head *entry, struct list_head *head)
{
	__list_add(entry, head->prev, head);
}

static inline void list_del(struct list_head *entry)
{
	entry->next->prev = entry->prev;
	entry->prev->next = entry->next;
	entry->next = NULL;
	entry->prev = NULL;
}

static inline bool list_empty(const struct list_head *head)
{
	return head->next == head;
}

/*
 * Heads of per-CPU lists are left as mmap gave them, all zero, until their
 * CPU first puts something on them (list_init_lazy()): initialising every
 * possible CPU's lists at start-up touched their pages in every process.
 * A zero head reads as empty.
 */
static inline bool list_empty_lazy(const struct list_head *head)
{
	return !head->next || list_empty(head);
}

static inline void list_init_lazy(struct list_head *head)
{
	if (!head->next)
		INIT_LIST_HEAD(head);
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(head, type, member) list_entry((head)->next, type, member)
#define list_last_entry(head, type, member) list_entry((head)->prev, type, member)

#endif
