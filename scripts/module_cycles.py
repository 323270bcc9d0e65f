#!/usr/bin/env python3
"""Fails when a library crate's modules import each other in a cycle.

    python3 scripts/module_cycles.py [CRATE_DIR...]   (default: every workspace crate)

A module's dependencies are the `crate::<module>` paths in its source, outside
comments and outside its `#[cfg(test)]` test module (tests may use anything).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["ledger", "grid-data", "collector", "pipelines", "credentials", "config", "pdf", "report", "serve"]


def deps(path: pathlib.Path, modules: set) -> set:
    text = path.read_text()
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests", text, re.M)
    if cut:
        text = text[: cut.start()]
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
    found = set()
    for m in re.finditer(r"crate::(\{[^}]*\}|[a-z_][a-z0-9_]*)", text):
        for name in re.findall(r"[a-z_][a-z0-9_]*", m.group(1)):
            if name in modules:
                found.add(name)
    return found - {path.stem}


def cycles(crate: pathlib.Path) -> list:
    files = {p.stem: p for p in (crate / "src").glob("*.rs") if p.stem not in ("lib", "main")}
    graph = {m: deps(p, set(files)) for m, p in files.items()}
    out, state = [], {}

    def visit(u, stack):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                out.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    return out


def main() -> int:
    crates = sys.argv[1:] or CRATES
    bad = 0
    for c in crates:
        for cyc in cycles(ROOT / c):
            print(f"{c}: module import cycle: {' -> '.join(cyc)}")
            bad += 1
    if not bad:
        print(f"no module import cycle in {', '.join(crates)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
