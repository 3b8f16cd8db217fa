#ifndef ML_CORE_LIST_T_H
#define ML_CORE_LIST_T_H

/* An intrusive, circular, doubly-linked list: the same struct is a list's head (initialised with
 * ml_list_init) and the node embedded in each element (zeroed = not on a list). */
struct ml_list {
    struct ml_list *next, *prev;
};

#endif
