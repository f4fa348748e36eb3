/* htable: a small intrusive hash table keyed by 64-bit ids, chained, power-of-two buckets,
 * grown when it holds as many nodes as buckets. */
#include "htable.h"

#include "cd.h"

#include <stdlib.h>

static size_t h_index(const struct htable *t, uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (t->n_buckets - 1);
}

struct htable_node *htable_get(const struct htable *t, uint64_t key)
{
    if (!t->n_buckets)
        return NULL;
    for (struct htable_node *n = t->buckets[h_index(t, key)]; n; n = n->next)
        if (n->key == key)
            return n;
    return NULL;
}

int htable_put(struct htable *t, struct htable_node *node)
{
    if (t->n + 1 > t->n_buckets) {
        size_t nb = t->n_buckets ? t->n_buckets * 2 : 64;
        struct htable_node **b = calloc(nb, sizeof *b);
        if (!b)
            return CD_ENOMEM;
        struct htable nt = {b, nb, t->n};
        for (size_t i = 0; i < t->n_buckets; i++) {
            struct htable_node *n = t->buckets[i];
            while (n) {
                struct htable_node *next = n->next;
                size_t j = h_index(&nt, n->key);
                n->next = b[j];
                b[j] = n;
                n = next;
            }
        }
        free(t->buckets);
        *t = nt;
    }
    size_t i = h_index(t, node->key);
    node->next = t->buckets[i];
    t->buckets[i] = node;
    t->n++;
    return 0;
}

void htable_del(struct htable *t, struct htable_node *node)
{
    if (!t->n_buckets)
        return;
    struct htable_node **p = &t->buckets[h_index(t, node->key)];
    while (*p && *p != node)
        p = &(*p)->next;
    if (*p) {
        *p = node->next;
        t->n--;
    }
}

void htable_free(struct htable *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->n_buckets = t->n = 0;
}

void htable_iter_init(struct htable_iter *it, const struct htable *t)
{
    it->t = t;
    it->bucket = 0;
    it->next = NULL;
}

struct htable_node *htable_iter_next(struct htable_iter *it)
{
    while (!it->next && it->bucket < it->t->n_buckets)
        it->next = it->t->buckets[it->bucket++];
    struct htable_node *n = it->next;
    if (n)
        it->next = n->next;
    return n;
}
