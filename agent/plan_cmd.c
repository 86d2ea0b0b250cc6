/* `albd plan`: diff the manifests against a running albd's /config, a saved
 * state file, or nothing. */
#include "agent/plan_cmd.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconciler/diff.h"
#include "reconciler/export.h"
#include "reconciler/plan.h"
#include "reconciler/rc.h"
#include "reconciler/selector.h"

enum { CONFIG_MAX = 256 << 20 };

struct body {
    char *p;
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t add = size * n;
    if (b->len + add > CONFIG_MAX)
        return 0;
    char *p = realloc(b->p, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* Appends one -l SELECTOR to the selector text (several -l are ANDed, like
 * requirements joined by commas). 0, or -1 when out of memory. */
static int selector_add(char **text, const char *more)
{
    size_t old = *text ? strlen(*text) : 0;
    char *t = realloc(*text, old + strlen(more) + 2);
    if (t == NULL)
        return -1;
    if (old > 0)
        t[old++] = ',';
    strcpy(t + old, more);
    *text = t;
    return 0;
}

/* GETs URL/config from a running albd's admin endpoint. */
static json_t *fetch_running(const char *url)
{
    char full[2048];
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    snprintf(full, sizeof full, "%.*s/config", (int)ul, url);
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "albd plan: cannot initialise libcurl\n");
        return NULL;
    }
    struct body b = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "albd plan: %s: %s\n", full, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        free(b.p);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(b.p ? b.p : "", b.len, 0, &je);
    free(b.p);
    if (!j)
        fprintf(stderr, "albd plan: %s: not JSON: line %d: %s\n", full, je.line, je.text);
    return j;
}

int ag_plan_main(int argc, char **argv)
{
    const char *dir = NULL, *against = NULL, *state = NULL, *format = "text";
    char *sel_text = NULL;
    /* clang-format off */
    static const struct option opts[] = {{"manifests", required_argument, NULL, 'm'},
                                         {"against", required_argument, NULL, 'a'},
                                         {"state", required_argument, NULL, 's'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"selector", required_argument, NULL, 'l'},
                                         {NULL, 0, NULL, 0}};
    /* clang-format on */
    int c;
    while ((c = getopt_long(argc, argv, "m:a:s:o:l:", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'a':
            against = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'o':
            format = optarg;
            break;
        case 'l':
            if (selector_add(&sel_text, optarg) != 0) {
                fputs("albd plan: out of memory\n", stderr);
                free(sel_text);
                return 1;
            }
            break;
        default:
            fputs("usage: albd plan -m DIR [--against URL|--state FILE] [-o text|json]\n", stderr);
            free(sel_text);
            return 1;
        }
    }
    if (!dir || optind != argc || (against && state) ||
        (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)) {
        fputs("usage: albd plan -m DIR [--against URL|--state FILE] [-o text|json]\n", stderr);
        free(sel_text);
        return 1;
    }

    /* A selector keeps the resources whose labels match it, on either side
     * (see reconciler/selector.h); a bad one is a usage error. */
    struct rc_selector *sel = NULL;
    char sel_err[256];
    int sel_rc = rc_selector_parse(sel_text, &sel, sel_err, sizeof sel_err);
    if (sel_rc != 0) {
        fprintf(stderr, "albd plan: bad label selector \"%s\": %s\n", sel_text ? sel_text : "",
                sel_err);
        free(sel_text);
        return 64; /* EX_USAGE */
    }
    free(sel_text);

    json_t *running = NULL;
    if (state) {
        json_error_t je;
        running = json_load_file(state, 0, &je);
        if (!running) {
            fprintf(stderr, "%s:%d:%d: error: %s\n", state, je.line, je.column, je.text);
            rc_selector_free(sel);
            return 1;
        }
    } else if (against) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        running = fetch_running(against);
        curl_global_cleanup();
        if (!running) {
            rc_selector_free(sel);
            return 1;
        }
    }

    struct rc_model *m = NULL;
    struct rc_errs errs;
    rc_errs_init(&errs);
    int rc = rc_load_dir(dir, time(NULL), &m, &errs);
    rc_errs_sort(&errs);
    rc_errs_print(&errs, stderr);
    rc_errs_cleanup(&errs);
    if (rc != 0) {
        json_decref(running);
        rc_selector_free(sel);
        return 1;
    }
    json_t *desired = rc_export_model(m);
    rc_model_unref(m);
    struct rc_diff d;
    rc_diff_init(&d);
    int status = 1;
    if (desired && rc_selector_filter_exports(sel, running, desired) == 0 &&
        rc_diff_compute(running, desired, &d) == 0) {
        int w = strcmp(format, "json") == 0 ? rc_plan_write_json(&d, stdout)
                                            : rc_plan_write_text(&d, stdout);
        if (w == 0)
            status = rc_diff_has_changes(&d) ? 2 : 0;
    } else {
        fprintf(stderr, "albd plan: %s\n", d.error[0] ? d.error : "out of memory");
    }
    rc_diff_cleanup(&d);
    json_decref(desired);
    json_decref(running);
    rc_selector_free(sel);
    return status;
}
