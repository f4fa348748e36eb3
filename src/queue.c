/* queue: waiting chats per skill queue in service order, online agents and
 * their capacity, auto-assignment, wait estimates, pickup targets and
 * business hours.
 *
 * DESIGN. A few hundred waiting chats at most and a few dozen agents: plain
 * arrays kept in service order beat any clever structure at that size and
 * are easy to reason about. Nothing here does I/O or reads the clock; the
 * caller passes the time. Wait estimates use the mean of the last
 * QUEUE_RECENT pickup waits (or the pickup target before there is any),
 * scaled by the chat's position and divided by the agents available for
 * its queue. */
#include "queue.h"

#include "auth.h"
#include "cd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX_NAMES 16
#define QUEUE_RECENT    50

struct queue {
    struct queue_settings settings;
    char names_text[QUEUE_MAX_NAMES * QUEUE_NAME_MAX];
    char names[QUEUE_MAX_NAMES][QUEUE_NAME_MAX];
    int n_names;
    struct queue_item *items; /* service order */
    int n_items, cap_items;
    uint64_t next_arrival;
    uint64_t *arrival; /* parallel to items: tie-breaker */
    struct queue_agent *agents;
    int n_agents, cap_agents;
    int recent_waits[QUEUE_RECENT];
    int n_recent, recent_pos;
    int64_t n_picked, n_within_target;
};

static int parse_names(struct queue *q, const char *list)
{
    q->n_names = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= QUEUE_NAME_MAX || q->n_names == QUEUE_MAX_NAMES)
            return CD_EINVAL;
        memcpy(q->names[q->n_names], p, len);
        q->names[q->n_names][len] = '\0';
        if (!auth_skills_valid(q->names[q->n_names]))
            return CD_EINVAL;
        q->n_names++;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return CD_EINVAL;
    }
    if (q->n_names == 0)
        return CD_EINVAL;
    snprintf(q->names_text, sizeof q->names_text, "%s", list);
    return 0;
}

void queue_settings_defaults(struct queue_settings *s)
{
    if (s->agent_capacity <= 0)
        s->agent_capacity = QUEUE_DEFAULT_AGENT_CAPACITY;
    if (s->pickup_target_s <= 0)
        s->pickup_target_s = QUEUE_DEFAULT_PICKUP_TARGET_S;
}

struct queue *queue_new(const struct queue_settings *settings)
{
    struct queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    if (settings)
        q->settings = *settings;
    queue_settings_defaults(&q->settings);
    const char *names = q->settings.names ? q->settings.names : QUEUE_DEFAULT_NAMES;
    q->settings.names = NULL; /* not kept: the caller's string may go away */
    if (parse_names(q, names)) {
        free(q);
        return NULL;
    }
    return q;
}

void queue_free(struct queue *q)
{
    if (!q)
        return;
    free(q->items);
    free(q->arrival);
    free(q->agents);
    free(q);
}

int queue_exists(const struct queue *q, const char *name)
{
    for (int i = 0; name && i < q->n_names; i++)
        if (!strcmp(q->names[i], name))
            return 1;
    return 0;
}

const char *queue_names(const struct queue *q)
{
    return q->names_text;
}

/* ---- waiting chats ---- */

static int find_item(const struct queue *q, int64_t conversation)
{
    for (int i = 0; i < q->n_items; i++)
        if (q->items[i].conversation == conversation)
            return i;
    return -1;
}

/* 1 if a is served before b. */
static int serves_before(const struct queue_item *a, uint64_t arrival_a, const struct queue_item *b,
                         uint64_t arrival_b)
{
    if (a->priority != b->priority)
        return a->priority < b->priority;
    if (a->enqueued_s != b->enqueued_s)
        return a->enqueued_s < b->enqueued_s;
    return arrival_a < arrival_b;
}

int queue_push(struct queue *q, const struct queue_item *item)
{
    if (find_item(q, item->conversation) >= 0)
        return CD_EEXIST;
    if (cd_grow_each(&q->cap_items, q->n_items, 32, &q->items, sizeof *q->items, &q->arrival,
                     sizeof *q->arrival, (void *)NULL))
        return CD_ENOMEM;
    struct queue_item it = *item;
    it.queue[QUEUE_NAME_MAX - 1] = '\0';
    it.intent[sizeof it.intent - 1] = '\0';
    it.preview[QUEUE_PREVIEW_MAX] = '\0';
    it.customer[sizeof it.customer - 1] = '\0';
    if (!queue_exists(q, it.queue))
        snprintf(it.queue, sizeof it.queue, "%s",
                 queue_exists(q, "general") ? "general" : q->names[0]);
    if (it.priority <= 0)
        it.priority = 3;
    uint64_t arrival = q->next_arrival++;
    int pos = q->n_items;
    while (pos > 0 && serves_before(&it, arrival, &q->items[pos - 1], q->arrival[pos - 1]))
        pos--;
    memmove(&q->items[pos + 1], &q->items[pos], (size_t)(q->n_items - pos) * sizeof *q->items);
    memmove(&q->arrival[pos + 1], &q->arrival[pos],
            (size_t)(q->n_items - pos) * sizeof *q->arrival);
    q->items[pos] = it;
    q->arrival[pos] = arrival;
    q->n_items++;
    return 0;
}

int queue_remove(struct queue *q, int64_t conversation)
{
    int i = find_item(q, conversation);
    if (i < 0)
        return CD_ENOTFOUND;
    memmove(&q->items[i], &q->items[i + 1], (size_t)(q->n_items - i - 1) * sizeof *q->items);
    memmove(&q->arrival[i], &q->arrival[i + 1], (size_t)(q->n_items - i - 1) * sizeof *q->arrival);
    q->n_items--;
    return 0;
}

const struct queue_item *queue_find(const struct queue *q, int64_t conversation)
{
    int i = find_item(q, conversation);
    return i < 0 ? NULL : &q->items[i];
}

void queue_set_preview(struct queue *q, int64_t conversation, const char *text)
{
    int i = find_item(q, conversation);
    if (i < 0 || !text)
        return;
    /* Cut at a UTF-8 boundary. */
    size_t n = strlen(text);
    if (n > QUEUE_PREVIEW_MAX) {
        n = QUEUE_PREVIEW_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(q->items[i].preview, text, n);
    q->items[i].preview[n] = '\0';
}

void queue_set_offline(struct queue *q, int64_t conversation, int is_offline)
{
    int i = find_item(q, conversation);
    if (i >= 0)
        q->items[i].is_offline = is_offline ? 1 : 0;
}

int queue_position(const struct queue *q, int64_t conversation)
{
    int i = find_item(q, conversation);
    if (i < 0)
        return CD_ENOTFOUND;
    int pos = 1;
    for (int j = 0; j < i; j++)
        if (!strcmp(q->items[j].queue, q->items[i].queue))
            pos++;
    return pos;
}

int queue_length(const struct queue *q)
{
    return q->n_items;
}

const struct queue_item *queue_at(const struct queue *q, int i)
{
    return i >= 0 && i < q->n_items ? &q->items[i] : NULL;
}

int64_t queue_longest_wait_s(const struct queue *q, int64_t now_s)
{
    int64_t longest = 0;
    for (int i = 0; i < q->n_items; i++)
        if (now_s - q->items[i].enqueued_s > longest)
            longest = now_s - q->items[i].enqueued_s;
    return longest;
}

/* ---- agents ---- */

static struct queue_agent *agent_find(const struct queue *q, int64_t agent_id)
{
    for (int i = 0; i < q->n_agents; i++)
        if (q->agents[i].id == agent_id)
            return &q->agents[i];
    return NULL;
}

static struct queue_agent *agent_add(struct queue *q, int64_t agent_id, const char *name)
{
    if (cd_grow(&q->agents, &q->cap_agents, q->n_agents, sizeof *q->agents, 16))
        return NULL;
    struct queue_agent *a = &q->agents[q->n_agents++];
    memset(a, 0, sizeof *a);
    a->id = agent_id;
    snprintf(a->name, sizeof a->name, "%s", name ? name : "");
    a->capacity = q->settings.agent_capacity;
    a->is_available = 1;
    return a;
}

int queue_agent_online(struct queue *q, int64_t agent_id, const char *name, const char *skills,
                       int capacity)
{
    struct queue_agent *a = agent_find(q, agent_id);
    if (!a) {
        a = agent_add(q, agent_id, name);
        if (!a)
            return CD_ENOMEM;
    }
    if (name)
        snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->skills, sizeof a->skills, "%s", skills ? skills : "");
    a->capacity = capacity > 0 ? capacity : q->settings.agent_capacity;
    if (a->n_connections == 0)
        a->is_available = 1;
    a->n_connections++;
    a->offline_since_s = 0;
    return 0;
}

void queue_agent_offline(struct queue *q, int64_t agent_id, int64_t now_s)
{
    struct queue_agent *a = agent_find(q, agent_id);
    if (!a || a->n_connections == 0)
        return;
    if (--a->n_connections == 0) {
        a->offline_since_s = now_s;
        if (a->n_active == 0) /* nothing to wait for: forget it */
            *a = q->agents[--q->n_agents];
    }
}

int queue_agent_set_available(struct queue *q, int64_t agent_id, int is_available)
{
    struct queue_agent *a = agent_find(q, agent_id);
    if (!a)
        return CD_ENOTFOUND;
    a->is_available = is_available ? 1 : 0;
    return 0;
}

const struct queue_agent *queue_agent_get(const struct queue *q, int64_t agent_id)
{
    return agent_find(q, agent_id);
}

int queue_agent_add_chat(struct queue *q, int64_t agent_id, const char *name)
{
    struct queue_agent *a = agent_find(q, agent_id);
    if (!a) {
        a = agent_add(q, agent_id, name);
        if (!a)
            return CD_ENOMEM;
        a->offline_since_s = cd_wall_s();
    }
    a->n_active++;
    return 0;
}

void queue_agent_release(struct queue *q, int64_t agent_id)
{
    struct queue_agent *a = agent_find(q, agent_id);
    if (!a)
        return;
    if (a->n_active > 0)
        a->n_active--;
    if (a->n_active == 0 && a->n_connections == 0)
        *a = q->agents[--q->n_agents];
}

int64_t queue_agents_gone(struct queue *q, int64_t now_s, int grace_s)
{
    for (int i = 0; i < q->n_agents; i++) {
        struct queue_agent *a = &q->agents[i];
        if (a->n_connections == 0 && a->n_active > 0 && now_s - a->offline_since_s >= grace_s) {
            int64_t id = a->id;
            q->agents[i] = q->agents[--q->n_agents];
            return id;
        }
    }
    return 0;
}

static int agent_serves(const struct queue_agent *a, const char *name)
{
    return !a->skills[0] || !name || auth_has_skill(a->skills, name);
}

int queue_agents_available(const struct queue *q, const char *name, int *n_with_room)
{
    int n = 0, n_room = 0;
    for (int i = 0; i < q->n_agents; i++) {
        const struct queue_agent *a = &q->agents[i];
        if (a->n_connections == 0 || !a->is_available || !agent_serves(a, name))
            continue;
        n++;
        if (a->n_active < a->capacity)
            n_room++;
    }
    if (n_with_room)
        *n_with_room = n_room;
    return n;
}

/* ---- assignment ---- */

int queue_claim(struct queue *q, int64_t conversation, int64_t agent_id, int64_t now_s)
{
    struct queue_agent *a = agent_find(q, agent_id);
    if (!a)
        return CD_EPERM;
    int i = find_item(q, conversation);
    if (i < 0)
        return CD_ENOTFOUND;
    if (a->n_active >= a->capacity)
        return CD_EBUSY;
    int64_t wait = now_s - q->items[i].enqueued_s;
    if (wait < 0)
        wait = 0;
    queue_remove(q, conversation);
    a->n_active++;
    q->recent_waits[q->recent_pos] = (int)(wait > 1000000 ? 1000000 : wait);
    q->recent_pos = (q->recent_pos + 1) % QUEUE_RECENT;
    if (q->n_recent < QUEUE_RECENT)
        q->n_recent++;
    q->n_picked++;
    if (wait <= q->settings.pickup_target_s)
        q->n_within_target++;
    return 0;
}

int queue_next_assignment(const struct queue *q, int64_t *conversation, int64_t *agent_id)
{
    for (int i = 0; i < q->n_items; i++) {
        const struct queue_agent *best = NULL;
        for (int j = 0; j < q->n_agents; j++) {
            const struct queue_agent *a = &q->agents[j];
            if (a->n_connections == 0 || !a->is_available || a->n_active >= a->capacity ||
                !agent_serves(a, q->items[i].queue))
                continue;
            if (!best || a->n_active < best->n_active)
                best = a;
        }
        if (best) {
            *conversation = q->items[i].conversation;
            *agent_id = best->id;
            return 1;
        }
    }
    return 0;
}

/* ---- estimates, targets, business hours ---- */

int queue_estimate_wait_s(const struct queue *q, int64_t conversation, int64_t now_s)
{
    int i = find_item(q, conversation);
    if (i < 0)
        return CD_ENOTFOUND;
    int n_room = 0;
    int n_agents = queue_agents_available(q, q->items[i].queue, &n_room);
    if (n_agents == 0)
        return -1;
    double mean = q->settings.pickup_target_s / 2.0;
    if (q->n_recent > 0) {
        double sum = 0;
        for (int k = 0; k < q->n_recent; k++)
            sum += q->recent_waits[k];
        mean = sum / q->n_recent;
    }
    /* Each chat of the queue up to this one, in service order: chats ahead that agents with
     * room will take at once cost nothing; the time a chat has waited already comes off its
     * share; and a chat never expects less than the one before it plus 5 s, so the estimate
     * grows with the position however long the chats ahead have waited. */
    double estimate = 0;
    int pos = 0;
    for (int j = 0; j <= i; j++) {
        if (strcmp(q->items[j].queue, q->items[i].queue))
            continue;
        int ahead = pos++ - n_room;
        if (ahead < 0)
            continue;
        double own = (ahead + 1) * mean / n_agents;
        double waited = (double)(now_s - q->items[j].enqueued_s);
        own -= waited > 0 && waited < own ? waited : 0;
        estimate = own > estimate + 5 ? own : estimate + 5;
    }
    return (int)(estimate + 0.5);
}

void queue_pickup_counts(const struct queue *q, int64_t *n_picked, int64_t *n_within_target)
{
    *n_picked = q->n_picked;
    *n_within_target = q->n_within_target;
}

int queue_pickup_target_s(const struct queue *q)
{
    return q->settings.pickup_target_s;
}

static int always_open(const struct queue *q)
{
    return q->settings.business_open_min == q->settings.business_close_min &&
           (q->settings.business_days_mask == 0 || q->settings.business_days_mask == 0x7f);
}

/* 1 if the local time tm is within business hours. */
static int open_at(const struct queue *q, const struct tm *tm)
{
    int mask = q->settings.business_days_mask ? q->settings.business_days_mask : 0x7f;
    if (!(mask & (1 << tm->tm_wday)))
        return 0;
    int open = q->settings.business_open_min, close = q->settings.business_close_min;
    if (open == close)
        return 1;
    int now = tm->tm_hour * 60 + tm->tm_min;
    if (open < close)
        return now >= open && now < close;
    return now >= open || now < close; /* hours past midnight */
}

int queue_is_open(const struct queue *q, int64_t now_s)
{
    if (always_open(q))
        return 1;
    time_t t = (time_t)now_s;
    struct tm tm;
    localtime_r(&t, &tm);
    return open_at(q, &tm);
}

int64_t queue_next_open_s(const struct queue *q, int64_t now_s)
{
    if (queue_is_open(q, now_s))
        return now_s;
    /* Step minute by minute from the next whole minute, for at most 8 days. */
    int64_t t = now_s - now_s % 60 + 60;
    for (int i = 0; i < 8 * 24 * 60; i++, t += 60)
        if (queue_is_open(q, t))
            return t;
    return now_s; /* no open time at all: treat as open */
}
