#!/usr/bin/env python3
"""Every ```cpp block of README.md and docs/**/*.md compiles, and the README's job runs.

usage: check_doc_snippets.py --root REPO --cxx COMPILER --library LIBFILE --work DIR

1. The blocks compile. All blocks go into one translation unit, each in its own
   namespace after a `#line` naming its page and line (so an error points at the doc);
   their #include lines are hoisted to the top. A block that contains `int main(` is
   compiled as a whole file; any other block is a fragment, compiled as the body of a
   function (local classes are fine). Two HTML comments just above a block adjust it:
     <!-- compile: file -->            compile it at namespace scope
     <!-- compile-context: CODE -->    CODE (declarations the fragment uses) goes first
   Compiled with -std=c++17 -Wall -Wextra -Werror (unused names allowed) against the
   repository's include/.
2. The README's job runs: its one block with `int main(` is built as it is against
   LIBFILE, then run twice against a dataset (64 records of float32[8], values 0..511)
   served over HTTP on 127.0.0.1 by this script: the first run downloads and caches
   ("cache Downloaded", "epoch 0"), the second runs with the server stopped and resumes
   from its checkpoint ("cache Reused", "epoch 1"); both print the sum of the epoch's
   floats read through data_as<float>() ("sum 130816").

Exit 0: all compiled and the job ran as described; 1 otherwise.
"""
import argparse
import functools
import http.server
import os
import re
import struct
import subprocess
import sys
import threading
from pathlib import Path

DIRECTIVE = re.compile(r"<!--\s*compile(-context)?:\s*(.*?)\s*-->", re.S)


def pages(root):
    out = [root / "README.md"]
    out += sorted((root / "docs").rglob("*.md"))
    return out


def blocks(path):
    """(first code line number, code lines, scope, context) for each ```cpp block."""
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() != "```cpp":
            i += 1
            continue
        # Directives: the HTML comments right above the fence (blank lines allowed).
        above, j = [], i - 1
        while j >= 0 and (not lines[j].strip() or lines[j].strip().endswith("-->")):
            if lines[j].strip():
                k = j
                while "<!--" not in lines[k]:
                    k -= 1
                above.insert(0, "\n".join(lines[k:j + 1]))
                j = k - 1
            else:
                j -= 1
        start, i = i + 1, i + 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        code = lines[start:i]
        scope = "file" if any("int main(" in l for l in code) else "fragment"
        context = []
        for comment in above:
            for m in DIRECTIVE.finditer(comment):
                if m.group(1):
                    context.append(m.group(2))
                elif m.group(2) == "file":
                    scope = "file"
        out.append((start + 1, code, scope, context))
        i += 1
    return out


def translation_unit(root):
    includes, bodies, count = [], [], 0
    for page in pages(root):
        rel = page.relative_to(root)
        for n, (line, code, scope, context) in enumerate(blocks(page)):
            count += 1
            body = []
            for k, text in enumerate(code):
                if text.lstrip().startswith("#include"):
                    if text.strip() not in includes:
                        includes.append(text.strip())
                    body.append("")  # keep the line numbers
                else:
                    body.append(text)
            ns = f"doc_snippet_{count}"
            unit = [f"namespace {ns} {{"]
            if scope == "fragment":
                unit.append("[[maybe_unused]] void snippet() {")
            unit += context
            unit.append(f'#line {line} "{rel}"')
            unit += body
            if scope == "fragment":
                unit.append("}")
            unit.append(f"}}  // namespace {ns}")
            bodies.append("\n".join(unit))
    return "\n".join(includes + ["#include <harmonics/dataset.hpp>"] + bodies) + "\n", count


def compile_all(args, root, work):
    source, count = translation_unit(root)
    tu = work / "doc_snippets.cpp"
    tu.write_text(source)
    cmd = [args.cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
           "-Wno-unused-variable", "-Wno-unused-but-set-variable", "-Wno-unused-parameter",
           "-Wno-unused-function", "-Wno-unused-local-typedefs", "-I", str(root / "include"), str(tu)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"the C++ blocks of the docs do not compile ({tu}):\n{r.stderr}")
        return False
    print(f"{count} C++ blocks of README.md and docs/ compiled")
    return True


def dataset():
    """64 wire records of float32[8]: record i holds 8*i .. 8*i+7."""
    out = bytearray()
    for i in range(64):
        values = [float(8 * i + j) for j in range(8)]
        out += struct.pack("<BII", 0, 1, 8) + struct.pack("<I", 32) + struct.pack("<8f", *values)
    return bytes(out)


def run_job(args, root, work):
    mains = [(line, code) for line, code, scope, _ in blocks(root / "README.md") if any("int main(" in l for l in code)]
    if len(mains) != 1:
        print(f"README.md has {len(mains)} blocks with main(); the job is expected to be one")
        return False
    line, code = mains[0]
    src = work / "readme_job.cpp"
    src.write_text("\n".join(code) + "\n")
    exe = work / "readme_job"
    lib = Path(args.library).absolute()
    cmd = [args.cxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", str(root / "include"), str(src),
           str(lib), f"-Wl,-rpath,{lib.parent}", "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"README.md:{line}: the job does not build:\n{r.stderr}")
        return False
    print(f"README.md:{line}: the job ({len(code)} lines) built")

    www = work / "www"
    www.mkdir()
    (www / "train.bin").write_bytes(dataset())
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/train.bin"
    run_dir = work / "run"
    run_dir.mkdir()
    env = dict(os.environ, HARMONICS_CACHE_DIR=str(work / "cache"))

    def run(label, expected):
        r = subprocess.run([str(exe), url], cwd=run_dir, env=env, capture_output=True, text=True, timeout=300)
        print(f"{label}:\n  " + "\n  ".join(r.stdout.splitlines()))
        missing = [e for e in expected if e not in r.stdout]
        if r.returncode != 0 or missing:
            print(f"  exit {r.returncode}, missing {missing}\n  stderr: {r.stderr}")
            return False
        return True

    ok = run("run 1 (server up)", ["64 records, cache Downloaded", "epoch 0", "sum 130816"])
    server.shutdown()
    server.server_close()
    ok = run("run 2 (server stopped)", ["64 records, cache Reused", "epoch 1", "sum 130816"]) and ok
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--cxx", required=True)
    p.add_argument("--library", required=True)
    p.add_argument("--work", required=True)
    args = p.parse_args()
    root = Path(args.root).resolve()
    work = Path(args.work)
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    compiled = compile_all(args, root, work)
    ran = run_job(args, root, work)
    return 0 if compiled and ran else 1


if __name__ == "__main__":
    sys.exit(main())
