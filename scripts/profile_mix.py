#!/usr/bin/env python3
"""Drives a fixed request mix against a `studysync serve` running under
callgrind and dumps one profile per kind of request.

Usage: profile_mix.py run URL VALGRIND_PID OUT_DIR REQUESTS
       profile_mix.py report OUT_DIR REPORT.md

Waits until the worker has carried the seed to MongoDB, logs in as a
seeded account, then for each kind: a warm-up, `callgrind_control -z`
(zero the counters), REQUESTS requests on one keep-alive connection, each
checked for errors, and `callgrind_control -d KIND` (dump). Writes
OUT_DIR/mix.json: each kind's name, document and request count.

`report` reads those dumps with callgrind_annotate and writes, per kind,
the instructions per request, their split by crate and the functions that
execute the most instructions of their own.
"""
import collections
import datetime
import glob
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

TODOS_PAGE = "query { todos(first: 20) { edges { node { id title owner { name } } } } }"
LEADERBOARD = (
    "query { leaderboard(period: WEEK, first: 10) "
    "{ edges { node { rank minutes user { name } } } } }"
)
CREATE_TODO = "mutation { createTodo(input: {title: \"profiled\"}) { id } }"
TYPENAME = "query { __typename }"


def slug(kind):
    """The dump's name for a kind: callgrind_control drops hints with
    punctuation."""
    return re.sub(r"[^A-Za-z0-9]+", "_", kind).strip("_")


class Client:
    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port, self.path = parsed.hostname, parsed.port, parsed.path or "/graphql"
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def gql(self, query, token=None, variables=None):
        body = json.dumps({"query": query, "variables": variables or {}})
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.conn.request("POST", self.path, body=body, headers=headers)
        reply = json.loads(self.conn.getresponse().read())
        if reply.get("errors"):
            raise SystemExit(f"{query[:60]}: {reply['errors']}")
        return reply["data"]

    def get(self, path):
        self.conn.request("GET", path)
        return json.loads(self.conn.getresponse().read())


def run(url, pid, out_dir, requests):
    client = Client(url)
    deadline = time.time() + 600
    while client.get("/api/health/sync").get("queueSize", 1) > 0:
        if time.time() > deadline:
            raise SystemExit("the worker did not carry the seed to MongoDB")
        time.sleep(2)
    reader = client.gql(
        "mutation { logIn(email: \"user1@example.com\", password: \"studysync-demo\") { token } }"
    )["logIn"]["token"]

    kinds = [
        ("typename", TYPENAME, None),
        ("todos page with owners", TODOS_PAGE, reader),
        ("leaderboard(WEEK, first: 10)", LEADERBOARD, reader),
        ("createTodo", CREATE_TODO, reader),
    ]
    mix = []
    for name, query, token in kinds:
        for _ in range(10):
            client.gql(query, token)
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        for _ in range(requests):
            client.gql(query, token)
        subprocess.run(
            ["callgrind_control", "-d", slug(name), pid],
            check=True,
            capture_output=True,
        )
        mix.append({"kind": name, "query": query, "requests": requests})
        print(f"  {name}: {requests} requests profiled", flush=True)
    with open(f"{out_dir}/mix.json", "w", encoding="utf-8") as f:
        json.dump(mix, f, indent=2)


LINE = re.compile(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)$")


def annotate(path, inclusive):
    """(total instructions, [(instructions, function)]) of one dump, each
    function's own instructions or, with `inclusive`, with its callees'."""
    out = subprocess.run(
        [
            "callgrind_annotate",
            f"--inclusive={'yes' if inclusive else 'no'}",
            "--threshold=100",
            "--auto=no",
            path,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total, rows = None, collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ir, what = int(m.group(1).replace(",", "")), m.group(3)
        if what.startswith("PROGRAM TOTALS"):
            total = ir
            continue
        if what.startswith(("=>", "*")):
            continue
        # "file:function [object]": the file is where the code was inlined
        # from, so one function can have several rows; they are summed.
        what = re.sub(r"\s+\[[^\]]*\]$", "", what)
        what = re.sub(r"^(\?\?\?|[^ ]*?\.(rs|c|h|S|cpp)):", "", what)
        rows[what] += ir
    if total is None:
        raise SystemExit(f"no totals in {path}")
    # Frames that were on the stack when the counters were zeroed and
    # dumped (the runtime's worker loop and its callers) are charged the
    # whole interval; no single function really spends it.
    kept = [(ir, what) for what, ir in rows.items() if ir < 0.9 * total]
    return total, sorted(kept, reverse=True)


def crate_of(function):
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", function)
    if not m:
        return "C library and allocator"
    name = m.group(1)
    return {"core": "std", "alloc": "std", "std": "std"}.get(name, name)


def dump_for(out_dir, hint):
    for path in sorted(glob.glob(os.path.join(out_dir, "callgrind.out*"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
        if re.search(rf"^desc: Trigger: dump {re.escape(hint)}$", head, re.M):
            return path
    raise SystemExit(f"no callgrind dump for {hint} in {out_dir}")


def shown(function):
    """A function's name as a table cell: shortened, pipes escaped."""
    text = function if len(function) <= 110 else function[:107] + "..."
    return text.replace("|", "\\|")


def report(out_dir, target):
    with open(os.path.join(out_dir, "mix.json"), encoding="utf-8") as f:
        mix = json.load(f)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Instruction-count profile of a fixed request mix",
        "",
        f"`scripts/profile.sh` on commit `{commit or 'unknown'}`, "
        f"{datetime.date.today().isoformat()}: the release `studysync serve` "
        "(no worker in the process) under `valgrind --tool=callgrind`, one "
        "keep-alive client, a seeded database. Instruction counts do not "
        "depend on how busy the machine is, so these figures compare across "
        "runs where timings cannot. Every instruction of the server process "
        "is counted (HTTP, GraphQL, the SQL and MongoDB drivers, the "
        "allocator, tokio), the databases' own work is not. Valgrind hides "
        "the CPU's SHA extensions, so SHA-256 (JWTs, cursors) runs the "
        "portable code here and weighs more than it does natively.",
        "",
        "| request | instructions per request |",
        "|---|---:|",
    ]
    details = []
    for kind in mix:
        dump = dump_for(out_dir, slug(kind["kind"]))
        total, rows = annotate(dump, inclusive=False)
        _, calls = annotate(dump, inclusive=True)
        ours = [(ir, what) for ir, what in calls if re.match(r"^<?studysync::", what)]
        n = kind["requests"]
        lines.append(f"| `{kind['kind']}` | {total / n:,.0f} |")
        crates = collections.Counter()
        for ir, what in rows:
            crates[crate_of(what)] += ir
        details += [
            "",
            f"## `{kind['kind']}`",
            "",
            f"`{kind['query']}`, {n} requests, {total / n:,.0f} instructions each.",
            "",
            "| crate | share | per request |",
            "|---|---:|---:|",
        ]
        for crate, ir in crates.most_common(10):
            details.append(f"| `{crate}` | {100 * ir / total:.1f} % | {ir / n:,.0f} |")
        details += ["", "| function (own instructions) | share |", "|---|---:|"]
        for ir, what in rows[:12]:
            details.append(f"| `{shown(what)}` | {100 * ir / total:.1f} % |")
        details += [
            "",
            "| the project's own functions (with what they call) | share | per request |",
            "|---|---:|---:|",
        ]
        for ir, what in ours[:12]:
            details.append(f"| `{shown(what)}` | {100 * ir / total:.1f} % | {ir / n:,.0f} |")
    with open(target, "w", encoding="utf-8") as f:
        f.write("\n".join(lines + details) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"] and len(sys.argv) == 6:
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1:2] == ["report"] and len(sys.argv) == 4:
        report(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
