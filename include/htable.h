/* htable: a small intrusive hash table keyed by 64-bit ids (connections, conversations).
 *
 * The caller embeds a struct htable_node in its own struct, sets node.key and puts the node;
 * the table never allocates or frees nodes, only its bucket array. Lookups, insertions and
 * removals take constant time on average. Walk the table only with struct htable_iter:
 * removing the node the iterator just returned is allowed, putting a node while iterating is
 * not (the table may grow and rehash). Not thread-safe. */
#ifndef CD_HTABLE_H
#define CD_HTABLE_H

#include <stddef.h>
#include <stdint.h>

struct htable_node {
    uint64_t key;
    struct htable_node *next;
};

/* Zero-initialise ({0}) for an empty table. */
struct htable {
    struct htable_node **buckets;
    size_t n_buckets; /* power of two, or 0 */
    size_t n;         /* nodes in the table */
};

struct htable_iter {
    const struct htable *t;
    size_t bucket;            /* the next bucket to look in */
    struct htable_node *next; /* the next node to return */
};

/* The node with key, or NULL. */
struct htable_node *htable_get(const struct htable *t, uint64_t key);

/* Adds node (its key set; not already in a table). Returns 0, or CD_ENOMEM when the table
 * had to grow and could not, in which case nothing changed. */
int htable_put(struct htable *t, struct htable_node *node);

/* Removes node if it is in the table. */
void htable_del(struct htable *t, struct htable_node *node);

/* Frees the bucket array (not the nodes) and leaves an empty table. */
void htable_free(struct htable *t);

/* Starts a walk over every node, in no particular order. */
void htable_iter_init(struct htable_iter *it, const struct htable *t);

/* The next node of the walk, or NULL at the end. */
struct htable_node *htable_iter_next(struct htable_iter *it);

#endif
