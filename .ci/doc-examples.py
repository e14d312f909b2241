#!/usr/bin/env python3
"""Every Swift example in the docs is compiled code: fails CI on drift (issue 13, item 7).

Examples are fenced ```swift blocks in README.md and in the DocC catalog's articles
(Sources/*/*.docc/**/*.md), and ```swift blocks in `///` doc comments of Sources/**/*.swift.
Each must appear verbatim (the same lines, in order; the whole block may be indented by a
common prefix, as when it sits in a test's function body) in a Swift file under Tests/, which CI
compiles (and mostly runs) as part of `swift build --build-tests`. So an example that no longer
compiles, or one edited in the docs but not in its test, fails here, naming the block and the
first line that differs from its closest copy.

Markers, an HTML comment on the line just before a Markdown fence (nothing renders it):
  <!-- doc-example: not-compiled (why) -->  a fragment that is not Swift source of a module,
                                           such as a Package.swift line; checked by nothing.
  <!-- doc-example: program -->            a whole program (an `@main` type, or top-level code
                                           as in main.swift): type-checked as one file of its
                                           own against the debug build's modules, since a test
                                           target cannot hold a second entry point.
A marker with anything else is an error, as is a not-compiled marker without a reason.

Usage: python3 .ci/doc-examples.py [--build-path .build]   (after `swift build --build-tests`)
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

MARKER = re.compile(r"^\s*<!--\s*doc-example:\s*(.*?)\s*-->\s*$")


class Block:
    def __init__(self, path, line, lines, marker):
        self.path, self.line, self.lines, self.marker = path, line, dedent(lines), marker

    def where(self):
        return f"{self.path}:{self.line}"


def dedent(lines):
    indents = [len(l) - len(l.lstrip(" ")) for l in lines if l.strip()]
    cut = min(indents) if indents else 0
    return [l[cut:].rstrip() for l in lines]


def markdown_blocks(path):
    blocks, lines = [], open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```swift\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        marker = MARKER.match(lines[start - 1]) if start > 0 else None
        blocks.append(Block(path, start + 1, body, marker.group(1) if marker else None))
        i += 1
    return blocks


def doc_comment_blocks(path):
    blocks, lines = [], open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if not re.match(r"^\s*/// ?```swift\s*$", lines[i]):
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*/// ?```\s*$", lines[i]):
            text = re.sub(r"^\s*///", "", lines[i])
            body.append(text[1:] if text.startswith(" ") else text)
            i += 1
        blocks.append(Block(path, start + 1, body, None))
        i += 1
    return blocks


def longest_run(block, target_lines):
    """(matched lines, target line index) of the best verbatim placement of block in target."""
    first = next(k for k, l in enumerate(block.lines) if l.strip())
    best = (0, None)
    for t, text in enumerate(target_lines):
        stripped = text.rstrip()
        if not stripped.endswith(block.lines[first]) or stripped.strip() != block.lines[first].strip():
            continue
        prefix = stripped[: len(stripped) - len(block.lines[first])]
        if prefix.strip():
            continue
        top = t - first
        if top < 0:
            continue
        matched = 0
        for k, want in enumerate(block.lines):
            if top + k >= len(target_lines):
                break
            have = target_lines[top + k].rstrip()
            if (want == "" and have.strip() == "") or have == prefix + want:
                matched += 1
            else:
                break
        if matched > best[0]:
            best = (matched, top)
    return best


def test_target_flags(build_path):
    """The search paths, module maps and language flags SwiftPM compiled IOPoolTests with (from
    its build manifest), so a program sees the same modules; not its package name, so a program
    sees only public API, as a user's would."""
    manifest = open(os.path.join(build_path, "debug.yaml"), encoding="utf-8").read()
    found = re.search(r'"C\.IOPoolTests-[^"]*-debug\.module":\n(?:    .*\n)*?    args: (\[.*\])\n', manifest)
    if not found:
        sys.exit(f"error: no IOPoolTests compile command in {build_path}/debug.yaml: run `swift build --build-tests` first")
    args, flags, i = json.loads(found.group(1)), [], 0
    with_value = ("-I", "-Xcc", "-swift-version", "-target", "-sdk", "-F", "-module-cache-path", "-Xfrontend")
    while i < len(args):
        if args[i] in with_value:
            flags += args[i:i + 2]
            i += 2
            continue
        if args[i].startswith("-D"):
            flags.append(args[i])
        i += 1
    return flags


def typecheck_program(block, flags):
    with tempfile.TemporaryDirectory() as scratch:
        is_main_type = any(l.startswith("@main") for l in block.lines)
        source = os.path.join(scratch, "example.swift" if is_main_type else "main.swift")
        with open(source, "w") as f:
            f.write("\n".join(block.lines) + "\n")
        command = ["swiftc", "-typecheck"] + (["-parse-as-library"] if is_main_type else []) + flags + [source]
        result = subprocess.run(command, capture_output=True, text=True)
        output = (result.stdout + result.stderr).strip()
        return result.returncode == 0 and "warning:" not in output, output


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-path", default=".build")
    args = parser.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

    blocks = markdown_blocks("README.md")
    for path in sorted(glob.glob("Sources/*/*.docc/**/*.md", recursive=True)):
        blocks += markdown_blocks(path)
    for path in sorted(glob.glob("Sources/**/*.swift", recursive=True)):
        blocks += doc_comment_blocks(path)

    tests = {path: open(path, encoding="utf-8").read().split("\n")
             for path in sorted(glob.glob("Tests/**/*.swift", recursive=True))}
    failures, counts = 0, {"verbatim in a test": 0, "program": 0, "not-compiled": 0}
    for block in blocks:
        if not any(l.strip() for l in block.lines):
            print(f"{block.where()}: error: an empty swift block")
            failures += 1
            continue
        if block.marker is not None:
            if block.marker == "program":
                ok, output = typecheck_program(block, test_target_flags(args.build_path))
                if not ok:
                    print(f"{block.where()}: error: this program does not type-check without warnings:\n{output}")
                    failures += 1
                counts["program"] += 1
            elif re.match(r"^not-compiled\s*\(.+\)$", block.marker):
                counts["not-compiled"] += 1
            else:
                print(f"{block.where()}: error: unknown marker 'doc-example: {block.marker}' "
                      "(known: 'program', 'not-compiled (why)')")
                failures += 1
            continue
        best = (0, None, None)
        for path, lines in tests.items():
            matched, top = longest_run(block, lines)
            if matched == len(block.lines):
                best = (matched, path, top)
                break
            if matched > best[0]:
                best = (matched, path, top)
        matched, path, top = best
        if matched == len(block.lines):
            counts["verbatim in a test"] += 1
            continue
        failures += 1
        print(f"{block.where()}: error: this swift block is not verbatim in any file under Tests/")
        print(f"    {block.lines[next(k for k, l in enumerate(block.lines) if l.strip())]}")
        if path is None:
            print("    (not even its first line is there: add the example to a test, or mark it)")
        else:
            print(f"    closest copy: {path}:{top + 1}, the same for {matched} of {len(block.lines)} lines; "
                  f"first difference, line {matched + 1} of the block:")
            print(f"      docs: {block.lines[matched]}")
            have = lines_at(tests[path], top + matched)
            print(f"      test: {have}")
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    print(f"doc examples: {len(blocks)} swift blocks: {summary}; {failures} failing")
    return 1 if failures else 0


def lines_at(lines, index):
    return lines[index].strip() if index < len(lines) else "(end of file)"


if __name__ == "__main__":
    sys.exit(main())
