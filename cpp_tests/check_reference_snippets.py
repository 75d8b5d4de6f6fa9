#!/usr/bin/env python3
"""Checks that every ```cpp block of the reference documentation appears verbatim
(line by line, indentation aside) in a compiled test or example source, so the
"every snippet compiles and does what it says" promise cannot silently rot.

usage: check_reference_snippets.py DOC SOURCE...
Exit 0: all found; 1: a snippet is missing; 77: the document is not available.
"""
import sys
from pathlib import Path


def blocks(text, lang):
    out, cur = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if cur is None and stripped == "```" + lang:
            cur = []
        elif cur is not None and stripped == "```":
            out.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    return out


def normalise(lines):
    return [l.strip() for l in lines if l.strip()]


def contains(haystack, needle):
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    doc = Path(sys.argv[1])
    if not doc.is_file():
        print(f"SKIP: {doc} not found (the reference doc lives in ../shared)")
        return 77
    sources = {p: normalise(Path(p).read_text().splitlines()) for p in sys.argv[2:]}
    missing = 0
    for i, block in enumerate(blocks(doc.read_text(), "cpp"), 1):
        want = normalise(block)
        where = [p for p, lines in sources.items() if contains(lines, want)]
        if where:
            print(f"snippet {i} ({want[0][:50]}...): found in {', '.join(where)}")
        else:
            missing += 1
            print(f"snippet {i} MISSING from every source:\n  " + "\n  ".join(want))
    print(f"{missing} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
