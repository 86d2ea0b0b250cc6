#!/usr/bin/env bash
# For a GitOps repository's CI: validate the manifests, then summarise what
# applying them would change as Markdown (for a pull-request comment or the
# job summary).
#
#   albd-ci.sh -m DIR [--against URL | --state FILE] [--albd BINARY]
#              [--summary FILE] [--detailed-exitcode] [--refuse-foreign]
#
#   -m DIR               the manifest folder (required)
#   --against URL        compare with a running albd's admin endpoint
#   --state FILE         compare with a saved /config document (e.g. fetched
#                        by a deploy job: curl http://127.0.0.1:9901/config)
#                        neither: compare with nothing (everything is added)
#   --albd BINARY        the albd to run (default: albd on PATH)
#   --summary FILE       also append the Markdown to FILE (default:
#                        $GITHUB_STEP_SUMMARY when set, as GitHub Actions sets it)
#   --detailed-exitcode  exit 2 when the plan has changes (as albd plan does)
#   --refuse-foreign     a document of another API (not albd/...) in DIR is an
#                        error; by default it is skipped and listed as a note
#
# The Markdown goes to stdout. Exit 0: valid (with or without changes);
# 1: invalid manifests or the plan failed (the errors are in the Markdown,
# with file:line:col); 2: changes, with --detailed-exitcode; 64: usage.
# Needs bash and python3 (for the JSON; schemas/api/plan.json describes it).
#
# GitHub Actions, for instance:
#   - run: contrib/ci/albd-ci.sh -m manifests --state deployed-config.json
set -uo pipefail

usage() {
  sed -n '6,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 64
}

ALBD=albd DIR="" AGAINST="" STATE="" SUMMARY="${GITHUB_STEP_SUMMARY:-}" DETAILED=0
FOREIGN=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--manifests) [[ $# -ge 2 ]] || usage; DIR=$2; shift 2 ;;
    --against) [[ $# -ge 2 ]] || usage; AGAINST=$2; shift 2 ;;
    --state) [[ $# -ge 2 ]] || usage; STATE=$2; shift 2 ;;
    --albd) [[ $# -ge 2 ]] || usage; ALBD=$2; shift 2 ;;
    --summary) [[ $# -ge 2 ]] || usage; SUMMARY=$2; shift 2 ;;
    --detailed-exitcode) DETAILED=1; shift ;;
    --refuse-foreign) FOREIGN=(--refuse-foreign); shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "albd-ci.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n "$DIR" ]] || { echo "albd-ci.sh: -m DIR is required" >&2; usage; }
[[ -z "$AGAINST" || -z "$STATE" ]] || { echo "albd-ci.sh: --against and --state exclude each other" >&2; usage; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MD="$TMP/summary.md"

emit() {
  cat "$MD"
  if [[ -n "$SUMMARY" ]]; then
    cat "$MD" >>"$SUMMARY"
  fi
}

# A fenced block whose fence is longer than any backtick run inside.
fenced() {
  local fence='```'
  while grep -q -- "$fence" "$1"; do fence="$fence\`"; done
  printf '%s\n' "$fence"
  cat "$1"
  printf '%s\n' "$fence"
}

"$ALBD" validate -m "$DIR" "${FOREIGN[@]}" >"$TMP/validate.out" 2>"$TMP/validate.err"
status=$?
if [[ $status -ne 0 ]]; then
  {
    printf '### albd: the manifests in `%s` are invalid\n\n' "$DIR"
    fenced "$TMP/validate.err"
  } >"$MD"
  emit
  exit 1
fi

args=(plan -m "$DIR" -o json "${FOREIGN[@]}")
[[ -n "$AGAINST" ]] && args+=(--against "$AGAINST")
[[ -n "$STATE" ]] && args+=(--state "$STATE")
"$ALBD" "${args[@]}" >"$TMP/plan.json" 2>"$TMP/plan.err"
status=$?
if [[ $status -ne 0 && $status -ne 2 ]]; then
  {
    printf '### albd plan failed (exit %d)\n\n' "$status"
    fenced "$TMP/plan.err"
  } >"$MD"
  emit
  exit 1
fi

python3 - "$TMP/plan.json" "$DIR" "$AGAINST${STATE:+state file $STATE}" >"$MD" <<'PY'
import json
import sys

plan = json.load(open(sys.argv[1]))
where, against = sys.argv[2], sys.argv[3] or "nothing (a first deployment)"


def cell(v, limit=80):
    s = "(absent)" if v is None else json.dumps(v, sort_keys=True)
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    return s.replace("|", "\\|").replace("`", "'")


s = plan["summary"]
print(f"### albd plan: {s['add']} to add, {s['change']} to change, {s['destroy']} to destroy\n")
print(f"Manifests `{where}` compared with {against}.\n")
if not plan["changes"]:
    print("No changes: applying these manifests changes nothing.")
    sys.exit(0)
sign = {"create": "+ create", "update": "~ update", "delete": "- delete"}
print("| | Resource | Fields |")
print("|---|---|---|")
for ch in plan["changes"]:
    n = len(ch["fields"])
    print(f"| {sign.get(ch['action'], ch['action'])} | `{ch['kind']}/{ch['name']}` | {n} |")
print()
for ch in plan["changes"]:
    if ch["action"] != "update":
        continue
    print(f"<details><summary>~ {ch['kind']}/{ch['name']}</summary>\n")
    print("| Field | Old | New |")
    print("|---|---|---|")
    for f in ch["fields"]:
        print(f"| `{f['path']}` | `{cell(f['old'])}` | `{cell(f['new'])}` |")
    print("\n</details>\n")
PY
pystatus=$?
if [[ $pystatus -ne 0 ]]; then
  echo "albd-ci.sh: could not read the plan's JSON" >&2
  exit 1
fi
# Notes (documents of other APIs, skipped) and warnings from validate.
if grep -q -e ': note: ' -e ': warning: ' "$TMP/validate.err"; then
  grep -e ': note: ' -e ': warning: ' "$TMP/validate.err" >"$TMP/notes"
  {
    printf '\n<details><summary>Notes and warnings (%d)</summary>\n\n' "$(wc -l <"$TMP/notes")"
    fenced "$TMP/notes"
    printf '\n</details>\n'
  } >>"$MD"
fi
emit
if [[ $DETAILED -eq 1 && $status -eq 2 ]]; then
  exit 2
fi
exit 0
