#!/usr/bin/env python3
"""A forwarding rule whose ServerGroup is invalid (and has no last good
version) is contained on its own: a reload that points rule "rb" at a new,
broken group while it also moves rule "ra" to a new group applies the
listener's new version without rule "rb": rule "ra" serves its new group, the
default action still serves, and rule "rb"'s requests go to the default
action (the rule is left out, not kept at an older version). /status names
the rule (name, priority), the group and why, at the rule's file:line:col.
Fixing the group brings the rule back and the report goes away. Before,
the whole listener fell back to its last good version (rule "ra" kept its
old group)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import doc, free_ports, http_listener, instance, run, server_group  # noqa: E402
from reconcile_support import (backend_of, generation, line_of, status, wait_backend,  # noqa: E402
                               wait_generation_above, yaml_docs)


def fwd(name):
    return {"forward": {"serverGroups": [{"name": name}]}}


def body(env):
    c = env.check
    be = {n: env.backend(n) for n in ("web", "a", "b", "c", "b2")}
    (port,) = free_ports(1)
    path = os.path.join(env.manifest_dir, "albd.yaml")

    def write(rule_a, rule_b, b2_port=None):
        groups = [server_group(n, [be[n[1:] if n != "web" else n].addr]) for n in ("web", "ga", "gb", "gc")]
        if b2_port is not None:
            groups.append(doc("ServerGroup", "gb2", {"servers": [{"address": "127.0.0.1", "port": b2_port}],
                                                     "healthCheck": {"enabled": False}}))
        rules = [{"name": "ra", "priority": 10, "conditions": {"path": ["/a/*"]}, "actions": fwd(rule_a)},
                 {"name": "rb", "priority": 20, "conditions": {"path": ["/b/*"]}, "actions": fwd(rule_b)}]
        text = yaml_docs(instance(), *groups, http_listener("web", port, "web", rules=rules))
        tmp = os.path.join(env.manifest_dir, ".albd.yaml.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return text

    def which(p):
        return backend_of(env, port, tls=False, path=p)

    def contained(st):
        return [p for p in st.get("problems", []) if "RuleContained" in p.get("message", "")]

    write("ga", "gb")
    albd = env.start_albd(ports=(port,))
    c.require(wait_backend(env, port, "web", tls=False), "albd serves the default action")
    c.eq(which("/a/x"), "a", "before: rule ra serves group ga")
    c.eq(which("/b/x"), "b", "before: rule rb serves group gb")

    # Rule a moves to gc; rule rb points at gb2, whose port is out of range.
    gen = generation(albd)
    text = write("gc", "gb2", b2_port=70000)
    c.require(wait_generation_above(albd, gen), "the reload with an invalid group applies something")
    c.eq(which("/a/x"), "c", "rule ra serves its new group (the listener's new version applies)")
    c.eq(which("/b/x"), "web", "the contained rule's requests go to the default action")
    c.eq(which("/other"), "web", "the default action serves")
    st = status(albd)
    found = contained(st)
    c.eq(len(found), 1, "/status reports one contained rule")
    p = found[0] if found else {}
    msg = p.get("message", "")
    for part in ("rule rb (priority 20)", "ServerGroup gb2", "70000"):
        c.ok(part in msg, f"the report names {part!r}", part, msg)
    c.eq(p.get("reason"), "RuleContained", "the report's reason")
    c.eq(p.get("kind"), "Listener", "the report is on the Listener")
    c.eq(p.get("name"), "web", "the report names the listener")
    c.eq(p.get("severity"), "warning", "a contained rule is a warning (the listener applies)")
    c.eq(p.get("path"), "spec.rules[1]", "the report's path is the rule")
    want = f"{path}:{line_of(text, 'name: rb')}:"
    c.ok(p.get("source", "").startswith(want), "the report is at the rule's file:line:col", want, p.get("source"))
    listener = [r for r in st.get("resources", []) if r.get("kind") == "Listener" and r.get("name") == "web"]
    conds = listener[0].get("conditions", []) if listener else []
    c.ok(any(k.get("type") == "Ready" and k.get("status") == "True" for k in conds),
         "the listener itself is Ready (applied)", "Ready=True", conds)

    # The group fixed: rule rb serves it, the report is gone.
    gen = generation(albd)
    write("gc", "gb2", b2_port=be["b2"].addr[1])
    c.require(wait_generation_above(albd, gen), "the fix applies")
    c.eq(which("/b/x"), "b2", "fixed: rule rb serves group gb2")
    c.eq(which("/a/x"), "c", "fixed: rule ra still serves gc")
    c.eq(contained(status(albd)), [], "fixed: no contained rule is reported")


run("contains_a_rule_with_an_invalid_group", body)
