/* Forwarding rules (rules.h): spec.rules and defaultAction's redirect or
 * fixed response, checked against alb-api.md section 4. What the proxy
 * cannot do yet (rewrite, header operations, traffic limits) is refused
 * here with "not supported yet", never accepted and ignored. */
#include "reconciler/rules.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/ip.h"
#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/listener.h"
#include "reconciler/field.h"
#include "reconciler/reuse.h"

static const char *const method_names[] = {"HEAD", "GET",   "POST",  "OPTIONS",
                                           "PUT",  "PATCH", "DELETE"};

struct ctx {
    struct rc_load *L;
    struct rc_doc *d;
    struct rc_listener *li;
    const struct rc_refs *r;
    bool basic;
    /* In a containment pass: the first group of the rule being built that is
     * invalid and has no version (the rule is left out), else NULL. */
    const char *broken_group;
};

static size_t seq_len(const yaml_node_t *n)
{
    return n && n->type == YAML_SEQUENCE_NODE
               ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
               : 0;
}

static yaml_node_t *seq_at(struct rc_doc *d, const yaml_node_t *n, size_t i)
{
    return yaml_document_get_node(d->y, n->data.sequence.items.start[i]);
}

static bool has_wildcard(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

/* A string list condition: copied into the arena (lowercased when lower).
 * Counts its entries and wildcard entries. */
static int str_list(struct ctx *c, yaml_node_t *n, const char ***out, size_t *n_out, bool lower,
                    int *conds, int *wild)
{
    size_t k = seq_len(n);
    if (k == 0)
        return 0;
    const char **v = rc_arena_alloc(c->L->arena, k * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < k; i++) {
        const char *s = rc_y_str(seq_at(c->d, n, i));
        char *cp = rc_arena_strdup(c->L->arena, s ? s : "");
        if (!cp)
            return -1;
        if (lower)
            for (char *p = cp; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        v[i] = cp;
        (*conds)++;
        *wild += has_wildcard(cp);
    }
    *out = v;
    *n_out = k;
    return 0;
}

static void rerr(struct ctx *c, yaml_node_t *n, const char *path, const char *msg, const char *arg)
{
    rc_doc_err(c->L, c->d, RC_ERROR, n, path, msg, arg);
}

/* Host values: the reference's 3-128 characters with at least one '.',
 * letters, digits, '-', '.', and the wildcards '*' and '?'. */
static void check_hosts(struct ctx *c, yaml_node_t *n, const char *base)
{
    for (size_t i = 0; i < seq_len(n); i++) {
        yaml_node_t *v = seq_at(c->d, n, i);
        const char *s = rc_y_str(v);
        char path[96];
        snprintf(path, sizeof path, "%s.conditions.host[%zu]", base, i);
        if (!s)
            continue;
        bool ok = strchr(s, '.') != NULL;
        for (const char *p = s; *p && ok; p++)
            ok = isalnum((unsigned char)*p) || strchr("-.*?", *p);
        if (!ok)
            rerr(c, v, path,
                 "\"%s\" is not a host name (letters, digits, '-', '.', wildcards '*' and '?', at "
                 "least one '.')",
                 s);
    }
}

/* Path values: start with '/', visible ASCII, no '?' or '#' other than as
 * the one-character wildcard (a query never takes part in a path match). */
static void check_paths(struct ctx *c, yaml_node_t *n, const char *base)
{
    for (size_t i = 0; i < seq_len(n); i++) {
        yaml_node_t *v = seq_at(c->d, n, i);
        const char *s = rc_y_str(v);
        char path[96];
        snprintf(path, sizeof path, "%s.conditions.path[%zu]", base, i);
        if (!s)
            continue;
        bool ok = true;
        for (const char *p = s; *p && ok; p++)
            ok = *p > 0x20 && *p < 0x7f && *p != '#';
        if (!ok)
            rerr(c, v, path, "\"%s\" has a character a path may not hold (space, '#', non-ASCII)",
                 s);
        else if (strstr(s, "/../") || strstr(s, "/./") || strstr(s, "//"))
            rerr(c, v, path,
                 "\"%s\" can never match: requests are matched on their normalised path (no "
                 "'//', '.' or '..' segments)",
                 s);
    }
}

/* Header values: printable, no leading or trailing space. */
static void check_printable(struct ctx *c, yaml_node_t *v, const char *path, bool no_edge_space,
                            const char *forbidden)
{
    const char *s = rc_y_str(v);
    if (!s)
        return;
    size_t len = strlen(s);
    bool ok = true;
    for (size_t i = 0; i < len && ok; i++)
        ok = s[i] >= 0x20 && s[i] < 0x7f && !(forbidden && strchr(forbidden, s[i]));
    if (!ok)
        rerr(c, v, path, "\"%s\" has a character that is not allowed here", s);
    else if (no_edge_space && len && (s[0] == ' ' || s[len - 1] == ' '))
        rerr(c, v, path, "\"%s\" may not begin or end with a space", s);
}

static int kv_list(struct ctx *c, yaml_node_t *n, const char *base, const char *field,
                   struct rc_kv **out, size_t *n_out, int *conds, int *wild)
{
    size_t k = seq_len(n);
    if (k == 0)
        return 0;
    struct rc_kv *v = rc_arena_alloc(c->L->arena, k * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < k; i++) {
        yaml_node_t *e = seq_at(c->d, n, i);
        char path[112];
        yaml_node_t *kn = rc_at(c->d, e, "key"), *vn = rc_at(c->d, e, "value");
        snprintf(path, sizeof path, "%s.conditions.%s[%zu].key", base, field, i);
        check_printable(c, kn, path, true, " #[]{}\\|<>&;=");
        snprintf(path, sizeof path, "%s.conditions.%s[%zu].value", base, field, i);
        check_printable(c, vn, path, true, " #[]{}\\|<>&;");
        const char *ks = rc_y_str(kn), *vs = rc_y_str(vn);
        char *kc = rc_arena_strdup(c->L->arena, ks ? ks : "");
        char *vc = rc_arena_strdup(c->L->arena, vs ? vs : "");
        if (!kc || !vc)
            return -1;
        for (char *p = kc; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        for (char *p = vc; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        v[i] = (struct rc_kv){kc, vc};
        (*conds)++;
        *wild += has_wildcard(kc) || has_wildcard(vc);
    }
    *out = v;
    *n_out = k;
    return 0;
}

static const char *const header_forbidden[] = {"cookie", "host", NULL};

static int build_conditions(struct ctx *c, yaml_node_t *cn, const char *base, struct rc_rule *ru,
                            yaml_node_t *rule_node)
{
    int conds = 0, wild = 0;
    yaml_node_t *n;
    if ((n = rc_at(c->d, cn, "host"))) {
        check_hosts(c, n, base);
        if (str_list(c, n, &ru->hosts, &ru->n_hosts, true, &conds, &wild))
            return -1;
    }
    if ((n = rc_at(c->d, cn, "path"))) {
        check_paths(c, n, base);
        if (str_list(c, n, &ru->paths, &ru->n_paths, false, &conds, &wild))
            return -1;
    }
    if ((n = rc_at(c->d, cn, "method"))) {
        for (size_t i = 0; i < seq_len(n); i++) {
            const char *s = rc_y_str(seq_at(c->d, n, i));
            for (unsigned b = 0; s && b < sizeof method_names / sizeof method_names[0]; b++)
                if (!strcmp(s, method_names[b]))
                    ru->methods |= 1u << b;
        }
        conds++;
    }
    if ((n = rc_at(c->d, cn, "header"))) {
        yaml_node_t *nn = rc_at(c->d, n, "name");
        const char *name = rc_y_str(nn);
        char path[96];
        snprintf(path, sizeof path, "%s.conditions.header.name", base);
        for (size_t i = 0; name && header_forbidden[i]; i++)
            if (!strcasecmp(name, header_forbidden[i]))
                rerr(c, nn, path,
                     "\"%s\" cannot be a Header condition (use the host or cookie "
                     "condition)",
                     name);
        if (name && !(ru->header_name = rc_arena_strdup(c->L->arena, name)))
            return -1;
        yaml_node_t *vals = rc_at(c->d, n, "values");
        for (size_t i = 0; i < seq_len(vals); i++) {
            snprintf(path, sizeof path, "%s.conditions.header.values[%zu]", base, i);
            check_printable(c, seq_at(c->d, vals, i), path, true, NULL);
        }
        if (str_list(c, vals, &ru->header_values, &ru->n_header_values, false, &conds, &wild))
            return -1;
    }
    if ((n = rc_at(c->d, cn, "query")) &&
        kv_list(c, n, base, "query", &ru->query, &ru->n_query, &conds, &wild))
        return -1;
    if ((n = rc_at(c->d, cn, "cookie")) &&
        kv_list(c, n, base, "cookie", &ru->cookies, &ru->n_cookies, &conds, &wild))
        return -1;
    if ((n = rc_at(c->d, cn, "sourceIp"))) {
        for (size_t i = 0; i < seq_len(n); i++) {
            yaml_node_t *v = seq_at(c->d, n, i);
            const char *s = rc_y_str(v);
            char path[96];
            snprintf(path, sizeof path, "%s.conditions.sourceIp[%zu]", base, i);
            struct cm_cidr cidr;
            if (!s || !cm_cidr_parse(s, strlen(s), &cidr))
                rerr(c, v, path, "\"%s\" is not an IP address or CIDR range", s ? s : "");
            else if (!strncmp(s, "0.0.0.0/", 8))
                rerr(c, v, path,
                     "\"%s\": a 0.0.0.0/N range is refused (the reference's rule); leave the "
                     "condition out to match every address",
                     s);
        }
        if (str_list(c, n, &ru->source_ips, &ru->n_source_ips, false, &conds, &wild))
            return -1;
    }
    if (c->basic) {
        static const char *const std_only[] = {"method", "query", "cookie", "sourceIp"};
        for (size_t i = 0; i < sizeof std_only / sizeof std_only[0]; i++)
            if ((n = rc_at(c->d, cn, std_only[i]))) {
                char path[96];
                snprintf(path, sizeof path, "%s.conditions.%s", base, std_only[i]);
                rerr(c, n, path,
                     "%s conditions need a Standard or WAF instance (Basic has host, path and "
                     "header only)",
                     std_only[i]);
            }
    }
    int max_c = c->basic ? RC_RULE_CONDS_BASIC : RC_RULE_CONDS_STD;
    int max_w = c->basic ? RC_RULE_WILDCARDS_BASIC : RC_RULE_WILDCARDS_STD;
    char path[96];
    snprintf(path, sizeof path, "%s.conditions", base);
    if (conds > max_c)
        rc_doc_err(c->L, c->d, RC_ERROR, cn ? cn : rule_node, path,
                   "%d condition entries, more than the %d a rule may have on a %s instance", conds,
                   max_c, c->basic ? "Basic" : "Standard or WAF");
    if (wild > max_w)
        rc_doc_err(c->L, c->d, RC_ERROR, cn ? cn : rule_node, path,
                   "%d wildcard entries, more than the %d a rule may have on a %s instance", wild,
                   max_w, c->basic ? "Basic" : "Standard or WAF");
    return 0;
}

/* Checks that every ${...} in a template names one of the variables in
 * allowed (space-separated, braces included). */
static void check_template(struct ctx *c, yaml_node_t *n, const char *path, const char *allowed)
{
    const char *s = rc_y_str(n);
    for (const char *p = s ? strstr(s, "${") : NULL; p; p = strstr(p + 2, "${")) {
        const char *e = strchr(p, '}');
        char var[24];
        size_t len = e ? (size_t)(e - p + 1) : 0;
        if (!e || len >= sizeof var) {
            rerr(c, n, path, "\"%s\" has an unterminated ${...} variable", s);
            return;
        }
        memcpy(var, p, len);
        var[len] = '\0';
        const char *hit = strstr(allowed, var);
        if (var[2] >= '1' && var[2] <= '9')
            rerr(c, n, path,
                 "%s: regular-expression captures need regex conditions, which albd does not "
                 "support (only exact and wildcard values)",
                 var);
        else if (!hit)
            rerr(c, n, path, "%s is not a variable allowed here", var);
    }
}

static const char *tmpl(struct ctx *c, yaml_node_t *a, const char *key, const char *def,
                        const char *base, const char *allowed)
{
    yaml_node_t *n = rc_at(c->d, a, key);
    if (!n)
        return def;
    char path[112];
    snprintf(path, sizeof path, "%s.%s", base, key);
    check_printable(c, n, path, false, " #");
    check_template(c, n, path, allowed);
    const char *s = rc_y_str(n);
    return s ? rc_arena_strdup(c->L->arena, s) : def;
}

static int build_redirect(struct ctx *c, yaml_node_t *a, const char *base, struct rc_action *ac)
{
    char path[112];
    ac->kind = RC_ACTION_REDIRECT;
    ac->redirect.code = rc_field_int(c->d, a, "code", 302);
    const char *proto = rc_field_str(c->d, a, "protocol", "${protocol}");
    ac->redirect.protocol = !strcmp(proto, "HTTP")    ? "http"
                            : !strcmp(proto, "HTTPS") ? "https"
                                                      : "${protocol}";
    if (c->li->protocol == RC_LISTENER_HTTPS && !strcmp(proto, "HTTP")) {
        snprintf(path, sizeof path, "%s.protocol", base);
        rerr(c, rc_at(c->d, a, "protocol"), path, "%s: an HTTPS listener redirects only to HTTPS",
             proto);
    }
    ac->redirect.host = tmpl(c, a, "host", "${host}", base, "${host}");
    ac->redirect.port = tmpl(c, a, "port", "${port}", base, "${port}");
    ac->redirect.path = tmpl(c, a, "path", "${path}", base, "${host} ${path} ${port} ${protocol}");
    ac->redirect.query =
        tmpl(c, a, "query", "${query}", base, "${host} ${path} ${port} ${protocol} ${query}");
    if (!ac->redirect.host || !ac->redirect.port || !ac->redirect.path || !ac->redirect.query)
        return -1;
    const char *host = ac->redirect.host;
    if (strcmp(host, "${host}") && !strstr(host, "${")) {
        size_t hl = strlen(host);
        bool ok = hl >= 3 && hl <= 128;
        for (const char *p = host; *p && ok; p++)
            ok = isalnum((unsigned char)*p) || strchr("-.:[]", *p);
        if (!ok) {
            snprintf(path, sizeof path, "%s.host", base);
            rerr(c, rc_at(c->d, a, "host"), path,
                 "\"%s\" is not a host name (3-128 letters, digits, '-', '.')", host);
        }
    }
    const char *port = ac->redirect.port;
    if (strcmp(port, "${port}")) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535 || !isdigit((unsigned char)port[0])) {
            snprintf(path, sizeof path, "%s.port", base);
            rerr(c, rc_at(c->d, a, "port"), path, "\"%s\" is not ${port} or a port 1-65535", port);
        }
    }
    if (ac->redirect.path[0] != '/' && strncmp(ac->redirect.path, "${", 2)) {
        snprintf(path, sizeof path, "%s.path", base);
        rerr(c, rc_at(c->d, a, "path"), path, "\"%s\" must begin with '/' or a variable",
             ac->redirect.path);
    }
    /* A redirect to the very URL asked for loops (the reference: not all
     * fields may stay default). */
    if (!strcmp(ac->redirect.protocol, "${protocol}") && !strcmp(host, "${host}") &&
        !strcmp(port, "${port}") && !strcmp(ac->redirect.path, "${path}") &&
        !strcmp(ac->redirect.query, "${query}")) {
        snprintf(path, sizeof path, "%s", base);
        rerr(c, a, path, "%s",
             "a redirect with every field at its default sends the client to the URL it asked "
             "for: set protocol, host, port, path or query");
    }
    return 0;
}

static int build_fixed(struct ctx *c, yaml_node_t *a, const char *base, struct rc_action *ac)
{
    char path[112];
    ac->kind = RC_ACTION_FIXED;
    ac->fixed.code = rc_field_int(c->d, a, "code", 200);
    if (ac->fixed.code / 100 == 3) {
        snprintf(path, sizeof path, "%s.code", base);
        rc_doc_err(c->L, c->d, RC_ERROR, rc_at(c->d, a, "code"), path,
                   "%d: a fixed response is 2xx, 4xx or 5xx (use redirect for 3xx)",
                   ac->fixed.code);
    }
    ac->fixed.content_type =
        rc_arena_strdup(c->L->arena, rc_field_str(c->d, a, "contentType", "text/plain"));
    yaml_node_t *cn = rc_at(c->d, a, "content");
    const char *content = rc_y_str(cn);
    ac->fixed.content = rc_arena_strdup(c->L->arena, content ? content : "");
    if (!ac->fixed.content_type || !ac->fixed.content)
        return -1;
    ac->fixed.content_len = strlen(ac->fixed.content);
    bool ascii = true;
    for (size_t i = 0; i < ac->fixed.content_len && ascii; i++) {
        unsigned char ch = (unsigned char)ac->fixed.content[i];
        ascii = (ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\r' || ch == '\t';
    }
    snprintf(path, sizeof path, "%s.content", base);
    if (!ascii)
        rerr(c, cn, path, "%s", "the content must be printable ASCII (the reference's rule)");
    if (ac->fixed.content_len > 1024)
        rc_doc_err(c->L, c->d, RC_ERROR, cn, path, "%zu bytes, more than the 1024 allowed",
                   ac->fixed.content_len);
    return 0;
}

static int build_actions(struct ctx *c, yaml_node_t *an, const char *base, struct rc_action *ac,
                         bool is_default)
{
    char path[112];
    /* The default action's mapping allows final actions only (schema); a
     * default forward to an invalid group fails the listener. */
    static const char *const finals[] = {"forward", "redirect", "fixedResponse"};
    int n_final = 0, n_actions = 0;
    for (size_t i = 0; i < 3; i++)
        n_final += rc_at(c->d, an, finals[i]) != NULL;
    if (an && an->type == YAML_MAPPING_NODE)
        n_actions = (int)(an->data.mapping.pairs.top - an->data.mapping.pairs.start);
    /* Each header inserted or removed is one action of the reference's. */
    size_t n_ins = seq_len(rc_at(c->d, an, "insertHeaders"));
    size_t n_rem = seq_len(rc_at(c->d, an, "removeHeaders"));
    n_actions += (int)(n_ins ? n_ins - 1 : 0) + (int)(n_rem ? n_rem - 1 : 0);
    if (n_final != 1) {
        snprintf(path, sizeof path, "%s", base);
        rerr(c, an, path, "%s",
             n_final ? "more than one final action: give exactly one of forward, redirect, "
                       "fixedResponse"
                     : "no final action: give exactly one of forward, redirect, fixedResponse");
    }
    int max_a = c->basic ? RC_RULE_ACTIONS_BASIC : RC_RULE_ACTIONS_STD;
    if (n_actions > max_a) {
        snprintf(path, sizeof path, "%s", base);
        rc_doc_err(c->L, c->d, RC_ERROR, an, path,
                   "%d actions, more than the %d a rule may have on a %s instance", n_actions,
                   max_a, c->basic ? "Basic" : "Standard or WAF");
    }
    yaml_node_t *a;
    if ((a = rc_at(c->d, an, "forward"))) {
        ac->kind = RC_ACTION_FORWARD;
        yaml_node_t *gs = rc_at(c->d, a, "serverGroups");
        size_t k = seq_len(gs);
        for (size_t i = 0; i < k && i < RC_RULE_MAX_GROUPS; i++) {
            yaml_node_t *e = seq_at(c->d, gs, i);
            snprintf(path, sizeof path, "%s.forward.serverGroups[%zu].name", base, i);
            yaml_node_t *nn = rc_at(c->d, e, "name");
            if (!nn)
                continue;
            for (size_t j = 0; j < i; j++) {
                const char *other = rc_y_str(rc_at(c->d, seq_at(c->d, gs, j), "name"));
                if (other && rc_y_str(nn) && !strcmp(other, rc_y_str(nn)))
                    rerr(c, nn, path, "server group \"%s\" is named twice", other);
            }
            const char *gname = rc_y_str(nn);
            if (!is_default && c->L->contain && gname && rc_kind_find(&c->r->groups, gname) < 0 &&
                rc_kind_broken(&c->r->groups, gname)) {
                /* Contain the rule, not the listener (rc_build_rules). */
                if (c->broken_group == NULL)
                    c->broken_group = gname;
                continue;
            }
            long gi = rc_resolve(c->L, c->d, nn, path, "ServerGroup", &c->r->groups);
            if (gi < 0)
                continue;
            size_t g = ac->forward.n_groups++;
            ac->forward.groups[g] = &c->L->m->groups[gi];
            ac->forward.weights[g] = rc_field_int(c->d, e, "weight", 100);
        }
        yaml_node_t *ss = rc_at(c->d, a, "stickySession");
        if (ss && rc_field_bool(c->d, ss, "enabled", false)) {
            ac->forward.sticky = true;
            ac->forward.sticky_timeout_s = rc_field_int(c->d, ss, "timeoutSeconds", 1000);
            for (size_t g = 0; g < ac->forward.n_groups; g++)
                if (!ac->forward.groups[g]->sticky.enabled) {
                    snprintf(path, sizeof path, "%s.forward.stickySession", base);
                    rerr(c, ss, path,
                         "group stickiness needs stickySession enabled on every group, and "
                         "\"%s\" has none",
                         ac->forward.groups[g]->meta.name);
                }
        }
        if (k > 1)
            for (size_t i = 0; i < k; i++)
                if (!rc_at(c->d, seq_at(c->d, gs, i), "weight")) {
                    snprintf(path, sizeof path, "%s.forward.serverGroups[%zu]", base, i);
                    rerr(c, seq_at(c->d, gs, i), path, "%s",
                         "a weight is required when a rule forwards to several groups");
                }
    } else if ((a = rc_at(c->d, an, "redirect"))) {
        snprintf(path, sizeof path, "%s.redirect", base);
        if (build_redirect(c, a, path, ac))
            return -1;
    } else if ((a = rc_at(c->d, an, "fixedResponse"))) {
        snprintf(path, sizeof path, "%s.fixedResponse", base);
        if (c->basic)
            rerr(c, a, path, "%s",
                 "fixed responses need a Standard or WAF instance (Basic has forward and "
                 "redirect only)");
        if (build_fixed(c, a, path, ac))
            return -1;
    }
    return 0;
}

/* Request headers a rule may neither insert nor remove: the reference's
 * reserved list (alb-api.md 4.3), the same one client-certificate headers
 * may not be renamed to (rc_header_reserved, listener.c). */
static bool forbidden_header(const char *name)
{
    return rc_header_reserved(name);
}

static const char *const system_values[] = {"ClientSrcPort", "ClientSrcIp", "Protocol", "SLBId",
                                            "SLBPort"};

/* A string list of cors: each entry checked by ok (NULL: any), copied,
 * and joined with ", " into *joined. Returns 0 or -1 (no memory). */
static int cors_list(struct ctx *c, yaml_node_t *cn, const char *key, const char *base,
                     bool (*ok)(const char *), const char *what, const char ***out, size_t *n_out,
                     const char **joined)
{
    char path[160];
    yaml_node_t *l = rc_at(c->d, cn, key);
    size_t n = seq_len(l), total = 1;
    *out = NULL;
    *n_out = 0;
    *joined = NULL;
    if (!n)
        return 0;
    if (!(*out = rc_arena_alloc(c->L->arena, n * sizeof(char *))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *v = seq_at(c->d, l, i);
        const char *s = rc_y_str(v);
        s = s ? s : "";
        snprintf(path, sizeof path, "%s.%s[%zu]", base, key, i);
        if (ok && !ok(s))
            rc_doc_err(c->L, c->d, RC_ERROR, v, path, "\"%s\" is not %s", s, what);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp((*out)[j], s))
                rerr(c, v, path, "\"%s\" is given twice", s);
        if (!((*out)[i] = rc_arena_strdup(c->L->arena, s)))
            return -1;
        total += strlen(s) + 2;
    }
    char *j = rc_arena_alloc(c->L->arena, total);
    if (!j)
        return -1;
    j[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(j, ", ");
        strcat(j, (*out)[i]);
    }
    *n_out = n;
    *joined = j;
    return 0;
}

/* "*" or http(s)://host[:port] (the reference's AllowOrigin): a host of
 * letters, digits, '-' and '.', or a bracketed IPv6 address; no path. */
static bool cors_origin_ok(const char *s)
{
    if (!strcmp(s, "*"))
        return true;
    const char *p = !strncasecmp(s, "http://", 7)    ? s + 7
                    : !strncasecmp(s, "https://", 8) ? s + 8
                                                     : NULL;
    if (!p || !*p)
        return false;
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (!e || e == p + 1)
            return false;
        for (const char *q = p + 1; q < e; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return false;
        p = e + 1;
    } else {
        const char *h = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '.')
            p++;
        if (p == h)
            return false;
    }
    if (*p == ':') {
        const char *d = ++p;
        long port = 0;
        while (isdigit((unsigned char)*p) && port <= 65535)
            port = port * 10 + (*p++ - '0');
        if (p == d || port < 1 || port > 65535)
            return false;
    }
    return *p == '\0';
}

/* A field name (RFC 9110 token, the characters albd forwards), or "*". */
static bool cors_header_ok(const char *s)
{
    if (!strcmp(s, "*"))
        return true;
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static bool cors_method_ok(const char *s)
{
    static const char *const m[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(s, m[i]))
            return true;
    return false;
}

static int build_cors(struct ctx *c, yaml_node_t *cn, const char *base, bool fwd,
                      struct rc_rule *ru)
{
    char path[128];
    snprintf(path, sizeof path, "%s.cors", base);
    if (!fwd)
        rerr(c, cn, path, "%s", "cors needs a forward action");
    struct rc_cors *co = rc_arena_alloc(c->L->arena, sizeof *co);
    if (!co)
        return -1;
    *co = (struct rc_cors){0};
    if (cors_list(c, cn, "allowOrigin", path, cors_origin_ok,
                  "\"*\" or an origin http(s)://host[:port]", &co->origins, &co->n_origins,
                  &(const char *){NULL}) ||
        cors_list(c, cn, "allowMethods", path, cors_method_ok,
                  "one of GET POST PUT DELETE HEAD OPTIONS PATCH", &co->methods, &co->n_methods,
                  &co->methods_j) ||
        cors_list(c, cn, "allowHeaders", path, cors_header_ok, "a header name or \"*\"",
                  &co->headers, &co->n_headers, &co->headers_j) ||
        cors_list(c, cn, "exposeHeaders", path, cors_header_ok, "a header name or \"*\"",
                  &co->expose, &co->n_expose, &co->expose_j))
        return -1;
    if (!co->n_origins)
        rerr(c, cn, path, "%s", "cors needs allowOrigin (\"*\" or the origins allowed)");
    for (size_t i = 0; i < co->n_origins; i++)
        co->any_origin |= !strcmp(co->origins[i], "*");
    co->credentials = rc_field_bool(c->d, cn, "allowCredentials", true);
    yaml_node_t *ma = rc_at(c->d, cn, "maxAge");
    if (ma) {
        co->has_max_age = true;
        co->max_age = rc_field_int(c->d, cn, "maxAge", 0);
        if (co->max_age < -1 || co->max_age > 172800) {
            snprintf(path, sizeof path, "%s.cors.maxAge", base);
            rc_doc_err(c->L, c->d, RC_ERROR, ma, path, "%d is outside -1..172800 seconds",
                       co->max_age);
        }
    }
    ru->cors = co;
    return 0;
}

static int build_extras(struct ctx *c, yaml_node_t *an, const char *base, struct rc_rule *ru)
{
    char path[128];
    yaml_node_t *rw = rc_at(c->d, an, "rewrite");
    bool fwd = rc_at(c->d, an, "forward") != NULL;
    if (rw) {
        snprintf(path, sizeof path, "%s.rewrite", base);
        if (!fwd)
            rerr(c, rw, path, "%s", "rewrite needs a forward action");
        ru->rewrite_host = tmpl(c, rw, "host", NULL, path, "${host}");
        ru->rewrite_path = tmpl(c, rw, "path", NULL, path, "${host} ${path} ${port} ${protocol}");
        ru->rewrite_query =
            tmpl(c, rw, "query", NULL, path, "${host} ${path} ${port} ${protocol} ${query}");
        if (ru->rewrite_path && ru->rewrite_path[0] != '/' && strncmp(ru->rewrite_path, "${", 2)) {
            snprintf(path, sizeof path, "%s.rewrite.path", base);
            rerr(c, rc_at(c->d, rw, "path"), path, "\"%s\" must begin with '/' or a variable",
                 ru->rewrite_path);
        }
        if (!ru->rewrite_host && !ru->rewrite_path && !ru->rewrite_query)
            rerr(c, rw, path, "%s", "rewrite needs host, path or query");
    }
    yaml_node_t *cn = rc_at(c->d, an, "cors");
    if (cn && build_cors(c, cn, base, fwd, ru))
        return -1;
    yaml_node_t *tm = rc_at(c->d, an, "trafficMirror");
    if (tm) {
        snprintf(path, sizeof path, "%s.trafficMirror", base);
        if (!fwd)
            rerr(c, tm, path, "%s", "trafficMirror needs a forward action");
        yaml_node_t *gs = rc_at(c->d, tm, "serverGroups");
        if (seq_len(gs) != 1) {
            snprintf(path, sizeof path, "%s.trafficMirror.serverGroups", base);
            rerr(c, gs ? gs : tm, path, "%s", "trafficMirror takes exactly one server group");
        } else {
            yaml_node_t *nn = rc_at(c->d, seq_at(c->d, gs, 0), "name");
            snprintf(path, sizeof path, "%s.trafficMirror.serverGroups[0].name", base);
            const char *gname = nn ? rc_y_str(nn) : NULL;
            long gi = -1;
            if (c->L->contain && gname && rc_kind_find(&c->r->groups, gname) < 0 &&
                rc_kind_broken(&c->r->groups, gname)) {
                /* An invalid mirror group contains the rule, as a forward
                 * group does (rc_build_rules), not the listener. */
                if (c->broken_group == NULL)
                    c->broken_group = gname;
            } else if (nn) {
                gi = rc_resolve(c->L, c->d, nn, path, "ServerGroup", &c->r->groups);
            }
            if (gi >= 0)
                ru->mirror_group = &c->L->m->groups[gi];
        }
    }
    yaml_node_t *tl = rc_at(c->d, an, "trafficLimit");
    if (tl) {
        snprintf(path, sizeof path, "%s.trafficLimit", base);
        if (!fwd)
            rerr(c, tl, path, "%s", "trafficLimit needs a forward action");
        ru->limit_qps = rc_field_int(c->d, tl, "qps", 0);
        ru->limit_per_ip_qps = rc_field_int(c->d, tl, "perIpQps", 0);
        ru->limit_status = rc_field_int(c->d, tl, "status", 503);
        if (!ru->limit_qps && !ru->limit_per_ip_qps)
            rerr(c, tl, path, "%s", "trafficLimit needs qps, perIpQps or both");
        if (ru->limit_qps && ru->limit_per_ip_qps >= ru->limit_qps) {
            snprintf(path, sizeof path, "%s.trafficLimit.perIpQps", base);
            rc_doc_err(c->L, c->d, RC_ERROR, rc_at(c->d, tl, "perIpQps"), path,
                       "%d must be smaller than qps (%d)", ru->limit_per_ip_qps, ru->limit_qps);
        }
    }
    yaml_node_t *rm = rc_at(c->d, an, "removeHeaders");
    size_t n = seq_len(rm);
    if (n) {
        if (!fwd) {
            snprintf(path, sizeof path, "%s.removeHeaders", base);
            rerr(c, rm, path, "%s", "removeHeaders needs a forward action");
        }
        if (!(ru->remove_headers = rc_arena_alloc(c->L->arena, n * sizeof(char *))))
            return -1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *v = seq_at(c->d, rm, i);
            const char *name = rc_y_str(v);
            snprintf(path, sizeof path, "%s.removeHeaders[%zu]", base, i);
            if (name && forbidden_header(name))
                rerr(c, v, path, "\"%s\" is a header albd manages; it cannot be removed", name);
            if (!(ru->remove_headers[i] = rc_arena_strdup(c->L->arena, name ? name : "")))
                return -1;
        }
        ru->n_remove_headers = n;
    }
    yaml_node_t *ins = rc_at(c->d, an, "insertHeaders");
    n = seq_len(ins);
    if (!n)
        return 0;
    if (!fwd) {
        snprintf(path, sizeof path, "%s.insertHeaders", base);
        rerr(c, ins, path, "%s", "insertHeaders needs a forward action");
    }
    if (!(ru->insert_headers = rc_arena_alloc(c->L->arena, n * sizeof *ru->insert_headers)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = seq_at(c->d, ins, i);
        struct rc_header_op *op = &ru->insert_headers[i];
        yaml_node_t *nn = rc_at(c->d, e, "name"), *vn = rc_at(c->d, e, "value");
        const char *name = rc_y_str(nn), *value = rc_y_str(vn);
        name = name ? name : "";
        value = value ? value : "";
        snprintf(path, sizeof path, "%s.insertHeaders[%zu].name", base, i);
        if (forbidden_header(name) || !strncasecmp(name, "x-forwarded-", 12))
            rerr(c, nn, path, "\"%s\" is a header albd manages; it cannot be inserted", name);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(ru->insert_headers[j].name, name))
                rerr(c, nn, path, "\"%s\" is inserted twice", name);
        const char *type = rc_field_str(c->d, e, "valueType", "UserDefined");
        op->type = !strcmp(type, "ReferenceHeader") ? RC_HDR_REFERENCE
                   : !strcmp(type, "SystemDefined") ? RC_HDR_SYSTEM
                                                    : RC_HDR_USER;
        snprintf(path, sizeof path, "%s.insertHeaders[%zu].value", base, i);
        if (op->type == RC_HDR_USER) {
            check_printable(c, vn, path, false, "\"");
        } else if (op->type == RC_HDR_REFERENCE) {
            bool ok = strlen(value) <= 40;
            for (const char *p = value; *p && ok; p++)
                ok = isalnum((unsigned char)*p) || *p == '-' || *p == '_';
            if (!ok)
                rerr(c, vn, path, "\"%s\" is not a header name", value);
        } else {
            size_t k = 0;
            while (k < 5 && strcmp(value, system_values[k]))
                k++;
            if (k == 5)
                rerr(c, vn, path,
                     "\"%s\" is not one of ClientSrcPort, ClientSrcIp, Protocol, SLBId, SLBPort",
                     value);
            op->system = k < 5 ? (enum rc_system_value)k : RC_SYS_PROTOCOL;
        }
        op->name = rc_arena_strdup(c->L->arena, name);
        op->value = rc_arena_strdup(c->L->arena, value);
        if (!op->name || !op->value)
            return -1;
    }
    ru->n_insert_headers = n;
    return 0;
}

/* Headers a response rule may neither insert nor remove (the reference's
 * response list, alb-api.md 4.3). */
static const char *const resp_forbidden[] = {"connection", "upgrade", "content-length",
                                             "transfer-encoding", NULL};

static bool resp_forbidden_header(const char *name)
{
    for (size_t i = 0; resp_forbidden[i]; i++)
        if (!strcasecmp(name, resp_forbidden[i]))
            return true;
    return false;
}

/* responseStatusCode and responseHeader: refused on a request rule. */
static int build_resp_conditions(struct ctx *c, yaml_node_t *cn, const char *base,
                                 struct rc_rule *ru)
{
    char path[112];
    yaml_node_t *sc = rc_at(c->d, cn, "responseStatusCode");
    yaml_node_t *rh = rc_at(c->d, cn, "responseHeader");
    if (!ru->response) {
        if (sc || rh) {
            snprintf(path, sizeof path, "%s.conditions.%s", base,
                     sc ? "responseStatusCode" : "responseHeader");
            rerr(c, sc ? sc : rh, path, "%s", "response conditions need direction: Response");
        }
        return 0;
    }
    size_t n = seq_len(sc);
    if (n) {
        if (!(ru->statuses = rc_arena_alloc(c->L->arena, n * sizeof *ru->statuses)))
            return -1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *v = seq_at(c->d, sc, i);
            const char *s = rc_y_str(v);
            int lo = 0, hi = 0, used = 0;
            snprintf(path, sizeof path, "%s.conditions.responseStatusCode[%zu]", base, i);
            if (!s || sscanf(s, "%d%n", &lo, &used) != 1)
                lo = hi = 0;
            else if (s[used] == '-' && sscanf(s + used + 1, "%d", &hi) == 1)
                ;
            else
                hi = lo;
            if (lo < 100 || hi > 599 || lo > hi)
                rerr(c, v, path, "\"%s\" is not a status 100-599 or a range lo-hi of them",
                     s ? s : "");
            ru->statuses[i][0] = lo;
            ru->statuses[i][1] = hi;
        }
        ru->n_statuses = n;
    }
    if (rh) {
        const char *name = rc_y_str(rc_at(c->d, rh, "name"));
        if (!(ru->resp_header_name = rc_arena_strdup(c->L->arena, name ? name : "")))
            return -1;
        yaml_node_t *vals = rc_at(c->d, rh, "values");
        for (size_t i = 0; i < seq_len(vals); i++) {
            snprintf(path, sizeof path, "%s.conditions.responseHeader.values[%zu]", base, i);
            check_printable(c, seq_at(c->d, vals, i), path, true, NULL);
        }
        int conds = 0, wild = 0;
        if (str_list(c, vals, &ru->resp_header_values, &ru->n_resp_header_values, false, &conds,
                     &wild))
            return -1;
    }
    return 0;
}

/* A response rule's actions: fixedResponse, or insertHeaders and/or
 * removeHeaders (UserDefined values only; the response-forbidden names
 * refused). */
static int build_resp_actions(struct ctx *c, yaml_node_t *an, const char *base, struct rc_rule *ru)
{
    char path[128];
    static const char *const request_only[] = {"forward",      "redirect", "rewrite",
                                               "trafficLimit", "cors",     "trafficMirror"};
    for (size_t i = 0; i < sizeof request_only / sizeof request_only[0]; i++) {
        yaml_node_t *x = rc_at(c->d, an, request_only[i]);
        if (x) {
            snprintf(path, sizeof path, "%s.%s", base, request_only[i]);
            rerr(c, x, path,
                 "%s is a request action: a response rule has fixedResponse, insertHeaders "
                 "and removeHeaders",
                 request_only[i]);
        }
    }
    yaml_node_t *fr = rc_at(c->d, an, "fixedResponse");
    yaml_node_t *ins = rc_at(c->d, an, "insertHeaders"), *rm = rc_at(c->d, an, "removeHeaders");
    ru->action.kind = RC_ACTION_FORWARD; /* no groups: edit the response */
    if (fr) {
        snprintf(path, sizeof path, "%s.fixedResponse", base);
        if (ins || rm)
            rerr(c, fr, path, "%s",
                 "a fixed response replaces the whole response: give it without insertHeaders "
                 "or removeHeaders");
        if (build_fixed(c, fr, path, &ru->action))
            return -1;
    } else if (!seq_len(ins) && !seq_len(rm)) {
        rerr(c, an, base, "%s",
             "a response rule needs fixedResponse, insertHeaders or removeHeaders");
    }
    size_t n = seq_len(rm);
    if (n) {
        if (!(ru->remove_headers = rc_arena_alloc(c->L->arena, n * sizeof(char *))))
            return -1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *v = seq_at(c->d, rm, i);
            const char *name = rc_y_str(v);
            snprintf(path, sizeof path, "%s.removeHeaders[%zu]", base, i);
            if (name && resp_forbidden_header(name))
                rerr(c, v, path, "\"%s\" frames the response; it cannot be removed", name);
            if (!(ru->remove_headers[i] = rc_arena_strdup(c->L->arena, name ? name : "")))
                return -1;
        }
        ru->n_remove_headers = n;
    }
    n = seq_len(ins);
    if (!n)
        return 0;
    if (!(ru->insert_headers = rc_arena_alloc(c->L->arena, n * sizeof *ru->insert_headers)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = seq_at(c->d, ins, i);
        struct rc_header_op *op = &ru->insert_headers[i];
        yaml_node_t *nn = rc_at(c->d, e, "name"), *vn = rc_at(c->d, e, "value");
        const char *name = rc_y_str(nn), *value = rc_y_str(vn);
        name = name ? name : "";
        value = value ? value : "";
        snprintf(path, sizeof path, "%s.insertHeaders[%zu].name", base, i);
        if (resp_forbidden_header(name))
            rerr(c, nn, path, "\"%s\" frames the response; it cannot be inserted", name);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(ru->insert_headers[j].name, name))
                rerr(c, nn, path, "\"%s\" is inserted twice", name);
        const char *type = rc_field_str(c->d, e, "valueType", "UserDefined");
        if (strcmp(type, "UserDefined")) {
            snprintf(path, sizeof path, "%s.insertHeaders[%zu].valueType", base, i);
            rerr(c, rc_at(c->d, e, "valueType"), path,
                 "%s: a response rule inserts UserDefined values only", type);
        }
        op->type = RC_HDR_USER;
        snprintf(path, sizeof path, "%s.insertHeaders[%zu].value", base, i);
        check_printable(c, vn, path, false, "\"");
        op->name = rc_arena_strdup(c->L->arena, name);
        op->value = rc_arena_strdup(c->L->arena, value);
        if (!op->name || !op->value)
            return -1;
    }
    ru->n_insert_headers = n;
    return 0;
}

static int cmp_priority(const void *a, const void *b)
{
    const struct rc_rule *x = a, *y = b;
    return (x->priority > y->priority) - (x->priority < y->priority);
}

struct uniq {
    const struct rc_rule *r;
    size_t i; /* index in spec.rules */
};

static int cmp_uniq_priority(const void *a, const void *b)
{
    const struct uniq *x = a, *y = b;
    if (x->r->priority != y->r->priority)
        return (x->r->priority > y->r->priority) - (x->r->priority < y->r->priority);
    return (x->i > y->i) - (x->i < y->i);
}

static int cmp_uniq_name(const void *a, const void *b)
{
    const struct uniq *x = a, *y = b;
    int c = strcmp(x->r->name, y->r->name);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Priorities and names are unique per listener: each repeat is reported
 * at the later rule, naming the first. Sorting keeps it O(n log n) (a
 * listener may hold 10,000 rules). Returns 0 or -1 (no memory). */
static int check_unique(struct rc_load *L, struct rc_doc *d, yaml_node_t *rs,
                        const struct rc_rule *v, size_t n)
{
    struct uniq *u = malloc(n * sizeof *u);
    if (!u)
        return -1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++)
            u[i] = (struct uniq){&v[i], i};
        qsort(u, n, sizeof *u, pass ? cmp_uniq_name : cmp_uniq_priority);
        size_t first = 0;
        for (size_t k = 1; k < n; k++) {
            bool same = pass ? !strcmp(u[k].r->name, u[first].r->name)
                             : u[k].r->priority == u[first].r->priority;
            if (!same) {
                first = k;
                continue;
            }
            yaml_node_t *rn = seq_at(d, rs, u[k].i);
            char path[64];
            if (pass) {
                snprintf(path, sizeof path, "spec.rules[%zu].name", u[k].i);
                yaml_node_t *nn = rc_at(d, rn, "name");
                rc_doc_err(L, d, RC_ERROR, nn ? nn : rn, path,
                           "rule name \"%s\" is already used by spec.rules[%zu]", u[k].r->name,
                           u[first].i);
            } else {
                snprintf(path, sizeof path, "spec.rules[%zu].priority", u[k].i);
                rc_doc_err(L, d, RC_ERROR, rc_at(d, rn, "priority"), path,
                           "priority %d is already rule \"%s\"'s (spec.rules[%zu]): priorities "
                           "are unique per listener",
                           u[k].r->priority, u[first].r->name, u[first].i);
            }
        }
    }
    free(u);
    return 0;
}

int rc_build_rules(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec, struct rc_listener *li,
                   const struct rc_refs *r)
{
    struct ctx c = {L, d, li, r, li->instance && li->instance->edition == RC_EDITION_BASIC, NULL};
    d->rules_contained = false;
    yaml_node_t *da = rc_at(d, spec, "defaultAction");
    if (da && (rc_at(d, da, "redirect") || rc_at(d, da, "fixedResponse"))) {
        struct rc_action *ac = rc_arena_alloc(L->arena, sizeof *ac);
        if (!ac || build_actions(&c, da, "spec.defaultAction", ac, true))
            return -1;
        li->default_action = ac;
    } else if (da && !rc_at(d, da, "forward")) {
        rerr(&c, da, "spec.defaultAction", "%s",
             "give exactly one of forward, redirect, fixedResponse");
    } else if (da) {
        build_actions(&c, da, "spec.defaultAction", &(struct rc_action){0}, true);
        li->default_action = NULL; /* forward: li->default_group */
    }
    yaml_node_t *rs = rc_at(d, spec, "rules");
    size_t n = seq_len(rs);
    if (n == 0)
        return 0;
    struct rc_rule *v = rc_arena_alloc(L->arena, n * sizeof *v);
    if (!v)
        return -1;
    size_t n_resp = 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *rn = seq_at(d, rs, i);
        struct rc_rule *ru = &v[i];
        char base[48], path[96];
        snprintf(base, sizeof base, "spec.rules[%zu]", i);
        ru->loc = rc_y_loc(d, rn);
        ru->priority = rc_field_int(d, rn, "priority", 0);
        const char *name = rc_field_str(d, rn, "name", NULL);
        char defname[24];
        if (!name) {
            snprintf(defname, sizeof defname, "rule-%d", ru->priority);
            name = defname;
        }
        if (!(ru->name = rc_arena_strdup(L->arena, name)))
            return -1;
        ru->response = !strcmp(rc_field_str(d, rn, "direction", "Request"), "Response");
        yaml_node_t *cn = rc_at(d, rn, "conditions");
        if (build_conditions(&c, cn, base, ru, rn) || build_resp_conditions(&c, cn, base, ru))
            return -1;
        snprintf(path, sizeof path, "%s.actions", base);
        yaml_node_t *an = rc_at(d, rn, "actions");
        if (ru->response) {
            if (build_resp_actions(&c, an, path, ru))
                return -1;
            if (++n_resp > RC_RESP_RULES_MAX) {
                snprintf(path, sizeof path, "%s.direction", base);
                rc_doc_err(L, d, RC_ERROR, rc_at(d, rn, "direction"), path,
                           "more than %d response rules on one listener", RC_RESP_RULES_MAX);
            }
        } else {
            c.broken_group = NULL;
            if (build_actions(&c, an, path, &ru->action, false) || build_extras(&c, an, path, ru))
                return -1;
            if (c.broken_group)
                rc_contain_rule(L, d, ru, i, c.broken_group);
        }
    }
    if (check_unique(L, d, rs, v, n) != 0)
        return -1;
    /* Rules a containment pass leaves out (their group is invalid and has
     * no version): the listener serves without them. They are the last
     * entries of L->contained, and checked above like the others. */
    if (d->rules_contained) {
        size_t first = L->n_contained;
        while (first > 0 && L->contained[first - 1].d == d)
            first--;
        size_t kept = 0, k = first; /* recorded in index order */
        for (size_t i = 0; i < n; i++) {
            if (k < L->n_contained && L->contained[k].index == i)
                k++;
            else
                v[kept++] = v[i];
        }
        n = kept;
    }
    qsort(v, n, sizeof *v, cmp_priority);
    /* Request rules first, then the response rules, each by priority. */
    struct rc_rule *resp = n_resp ? rc_arena_alloc(L->arena, n_resp * sizeof *resp) : NULL;
    if (n_resp && !resp)
        return -1;
    size_t k = 0, kr = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].response)
            resp[kr++] = v[i];
        else
            v[k++] = v[i];
    }
    li->rules = v;
    li->n_rules = k;
    li->resp_rules = resp;
    li->n_resp_rules = kr;
    return 0;
}

bool rc_rules_reuse(struct rc_load *L, struct rc_listener *c)
{
    if (c->n_rules == 0)
        return true;
    struct rc_rule *v = rc_arena_alloc(L->arena, c->n_rules * sizeof *v);
    if (!v) {
        L->oom = true;
        return false;
    }
    memcpy(v, c->rules, c->n_rules * sizeof *v);
    for (size_t i = 0; i < c->n_rules; i++)
        for (size_t g = 0; g < v[i].action.forward.n_groups; g++) {
            const void *ng =
                rc_copy_of(v[i].action.forward.groups[g], L->prev->groups, L->prev->n_groups,
                           L->m->groups, L->m->n_groups, sizeof(struct rc_server_group), true);
            if (!ng)
                return false;
            v[i].action.forward.groups[g] = ng;
        }
    for (size_t i = 0; i < c->n_rules; i++)
        if (v[i].mirror_group) {
            const void *ng =
                rc_copy_of(v[i].mirror_group, L->prev->groups, L->prev->n_groups, L->m->groups,
                           L->m->n_groups, sizeof(struct rc_server_group), true);
            if (!ng)
                return false;
            v[i].mirror_group = ng;
        }
    c->rules = v;
    return true;
}
