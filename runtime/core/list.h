/* Intrusive lists (core/list-t.h): O(1) insert and remove, no allocation. */
#ifndef ML_CORE_LIST_H
#define ML_CORE_LIST_H

#include "core/list-t.h"

#include <stdbool.h>
#include <stddef.h>

/* The struct of type `type` whose member `member` is at p. */
#define ML_CONTAINER_OF(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* The element of type `type` linked by its member `member` at node n (NULL stays NULL). */
#define ML_LIST_ENTRY(n, type, member) ((n) != NULL ? ML_CONTAINER_OF(n, type, member) : NULL)

static inline void ml_list_init(struct ml_list *head)
{
    head->next = head->prev = head;
}

static inline bool ml_list_empty(const struct ml_list *head)
{
    return head->next == head;
}

/* true when node is on a list. */
static inline bool ml_list_linked(const struct ml_list *node)
{
    return node->next != NULL;
}

static inline void ml_list_add_tail(struct ml_list *head, struct ml_list *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void ml_list_add_head(struct ml_list *head, struct ml_list *node)
{
    ml_list_add_tail(head->next, node);
}

/* Takes node off its list; a no-op when it is on none. */
static inline void ml_list_remove(struct ml_list *node)
{
    if (node->next != NULL) {
        node->prev->next = node->next;
        node->next->prev = node->prev;
        node->next = node->prev = NULL;
    }
}

/* The first node of the list, or NULL when it is empty. */
static inline struct ml_list *ml_list_first(const struct ml_list *head)
{
    return head->next != head ? head->next : NULL;
}

/* The node after node on the list of head, or NULL at its end. */
static inline struct ml_list *ml_list_next(const struct ml_list *head, const struct ml_list *node)
{
    return node->next != head ? node->next : NULL;
}

#endif
