/* Agent events (see events.h). */
#include "agent/events.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/log.h"
#include "reconciler/diff.h"
#include "reconciler/export.h"

/* Resources and fields named in one line; the rest is counted. */
#define MAX_NAMED 24
#define MAX_FIELDS 6

struct line {
    char buf[1536];
    size_t len;
};

static void add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct line *l, const char *fmt, ...)
{
    if (l->len >= sizeof l->buf - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof l->buf - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < sizeof l->buf - l->len ? (size_t)n : sizeof l->buf - 1 - l->len;
}

void ag_events_changes(const struct rc_model *old, const struct rc_model *new)
{
    /* Unchanged certificates left out of both: cost follows the change. */
    json_t *a = NULL, *b = NULL;
    int erc = rc_export_pair(old, new, &a, &b);
    struct rc_diff d;
    rc_diff_init(&d);
    if (erc != 0 || rc_diff_compute(a, b, &d) != 0) {
        px_log_warn("reconcile: cannot compute what changed: %s",
                    d.error[0] ? d.error : "no memory");
        goto out;
    }
    if (!rc_diff_has_changes(&d))
        goto out;
    struct line l = {.len = 0};
    add(&l,
        "reconcile changed %zu resource(s) (%zu created, %zu updated, %zu deleted):", d.n_changes,
        d.n_create, d.n_update, d.n_delete);
    for (size_t i = 0; i < d.n_changes && i < MAX_NAMED; i++) {
        const struct rc_diff_change *ch = &d.changes[i];
        add(&l, "%s %s %s/%s", i ? ";" : "", rc_diff_action_name(ch->action), ch->kind, ch->name);
        if (ch->action != RC_DIFF_UPDATE)
            continue;
        add(&l, " (");
        for (size_t f = 0; f < ch->n_fields && f < MAX_FIELDS; f++)
            add(&l, "%s%s", f ? ", " : "", ch->fields[f].path);
        if (ch->n_fields > MAX_FIELDS)
            add(&l, ", %zu more", ch->n_fields - MAX_FIELDS);
        add(&l, ")");
    }
    if (d.n_changes > MAX_NAMED)
        add(&l, "; %zu more", d.n_changes - MAX_NAMED);
    px_log_info("%s", l.buf);
out:
    rc_diff_cleanup(&d);
    json_decref(a);
    json_decref(b);
}

/* Which certificates were warned about, and when. */
struct warned {
    char fingerprint[65];
    time_t when;
};
static struct warned *warned;
static size_t n_warned, cap_warned;
/* An index over warned (entry + 1, 0 empty; open addressing, at most half
 * full): 10,000 certificates near expiry are looked up in linear time. */
static size_t *warned_ix;
static size_t warned_ix_mask;

static size_t *warned_slot(const char *fp)
{
    for (size_t i = cm_hash_str(fp) & warned_ix_mask;; i = (i + 1) & warned_ix_mask)
        if (warned_ix[i] == 0 || strcmp(warned[warned_ix[i] - 1].fingerprint, fp) == 0)
            return &warned_ix[i];
}

static struct warned *find_warned(const char *fp)
{
    if (warned_ix == NULL)
        return NULL;
    size_t *slot = warned_slot(fp);
    return *slot ? &warned[*slot - 1] : NULL;
}

/* Indexes warned[n_warned - 1]; false when out of memory. */
static bool index_warned(void)
{
    if (warned_ix == NULL || 2 * n_warned > warned_ix_mask + 1) {
        size_t cap = 64;
        while (cap < 4 * n_warned)
            cap <<= 1;
        size_t *v = calloc(cap, sizeof *v);
        if (v == NULL)
            return false;
        free(warned_ix);
        warned_ix = v;
        warned_ix_mask = cap - 1;
        for (size_t i = 0; i + 1 < n_warned; i++)
            *warned_slot(warned[i].fingerprint) = i + 1;
    }
    *warned_slot(warned[n_warned - 1].fingerprint) = n_warned;
    return true;
}

void ag_events_cert_expiry(const struct rc_model *m, time_t now)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_certificates; i++) {
        const struct rc_certificate *c = m->certificates[i];
        if (!c->not_after || c->not_after - now > (time_t)AG_CERT_WARN_DAYS * 86400)
            continue;
        struct warned *w = find_warned(c->fingerprint_sha256);
        if (w && now - w->when < 86400)
            continue;
        if (!w) {
            if (n_warned == cap_warned) {
                size_t cap = cap_warned ? 2 * cap_warned : 16;
                struct warned *v = realloc(warned, cap * sizeof *v);
                if (!v)
                    return;
                warned = v;
                cap_warned = cap;
            }
            w = &warned[n_warned++];
            snprintf(w->fingerprint, sizeof w->fingerprint, "%s", c->fingerprint_sha256);
            if (!index_warned()) {
                n_warned--;
                return;
            }
        }
        w->when = now;
        struct tm tm;
        char when[32];
        gmtime_r(&c->not_after, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        long days = (long)((c->not_after - now) / 86400);
        if (c->not_after <= now)
            px_log_error("certificate %s expired at %s (sha256 %.16s...)", c->meta.name, when,
                         c->fingerprint_sha256);
        else
            px_log_warn("certificate %s expires at %s, in %ld day(s) (sha256 %.16s...)",
                        c->meta.name, when, days, c->fingerprint_sha256);
    }
}

bool ag_events_is_expiry_warning(const struct rc_err *e)
{
    static const char prefix[] = "the certificate expires on";
    return e->severity == RC_WARNING && e->kind && strcmp(e->kind, "Certificate") == 0 && e->msg &&
           strncmp(e->msg, prefix, sizeof prefix - 1) == 0;
}

void ag_events_cleanup(void)
{
    free(warned);
    warned = NULL;
    n_warned = cap_warned = 0;
    free(warned_ix);
    warned_ix = NULL;
    warned_ix_mask = 0;
}
