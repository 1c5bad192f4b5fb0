#!/usr/bin/env python3
"""Writes Sources/CodeRL/Resources/basic-problems.jsonl: the package's own small Python
problems (written for this project), each with a description, the function to write, assert
tests, and a reference solution that is checked here to pass them.

Every fifth problem is held out (split "heldout": evaluated, never trained on); the rest
are split "train". The first assert of each problem is its example test, shown in the
prompt; all asserts are the hidden tests that decide rewards.

    python3 scripts/basic_problems.py            # verify and write
"""
import json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
from basic_problems_1 import P as P1
from basic_problems_2 import P as P2

problems = P1 + P2
out = os.path.join(os.path.dirname(__file__), "..", "Sources", "CodeRL", "Resources", "basic-problems.jsonl")
names = set()
lines = []
for i, (name, desc, sol, tests) in enumerate(problems):
    entry = sol.split("def ", 1)[1].split("(", 1)[0]
    assert entry not in names, f"duplicate function {entry}"
    names.add(entry)
    scope = {}
    exec(sol, scope)
    for t in tests:
        assert entry in t, f"{name}: test does not call {entry}: {t}"
        exec("assert " + t, dict(scope))
    asserts = ["assert " + t for t in tests]
    record = {
        "id": f"basic/{i + 1:03d}-{name}",
        "prompt": desc,
        "split": "heldout" if (i + 1) % 5 == 0 else "train",
        "difficulty": "basic",
        "entry_point": entry,
        "solutions": [sol + "\n"],
        "tests": {"format": "assert", "cases": [{"code": a} for a in asserts]},
        "example_tests": {"format": "assert", "cases": [{"code": asserts[0]}]},
    }
    lines.append(json.dumps(record, ensure_ascii=False))
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"{len(lines)} problems ({sum(1 for l in lines if 'heldout' in l)} held out) written to {os.path.normpath(out)}")
