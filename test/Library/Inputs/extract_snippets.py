#!/usr/bin/env python3
"""Extracts the code blocks of a Markdown file so that tests compile them.

    extract_snippets.py cpp DOC OUTDIR
        ```cpp blocks -> OUTDIR/core.inc (the blocks without main() and
        without wopt/Torch), OUTDIR/torch.inc (those including wopt/Torch/),
        OUTDIR/main-N.cpp (each block that defines main()). Each block starts
        with a #line directive, so compiler errors point into DOC. Files are
        rewritten only when their text changes. Prints the main-N.cpp paths,
        ';'-separated (a CMake list).
    extract_snippets.py sh DOC TEXT
        prints the first ```sh block that contains TEXT.
"""
import os
import re
import sys


def blocks(doc, lang):
    """(first line number, text) of every ```lang block."""
    out, cur, start = [], None, 0
    with open(doc) as f:
        for n, line in enumerate(f, 1):
            if cur is None:
                if re.match(r"^```%s\s*$" % re.escape(lang), line):
                    cur, start = [], n + 1
            elif line.startswith("```"):
                out.append((start, "".join(cur)))
                cur = None
            else:
                cur.append(line)
    if cur is not None:
        sys.exit("%s:%d: unterminated ```%s block" % (doc, start - 1, lang))
    return out


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)


def cpp(doc, outdir):
    os.makedirs(outdir, exist_ok=True)
    doc = os.path.abspath(doc)
    groups = {"core": [], "torch": []}
    mains = []
    for start, text in blocks(doc, "cpp"):
        piece = '#line %d "%s"\n%s' % (start, doc, text)
        if re.search(r"\bint main\(", text):
            path = os.path.join(outdir, "main-%d.cpp" % len(mains))
            write_if_changed(path, piece)
            mains.append(path)
        elif "wopt/Torch/" in text:
            groups["torch"].append(piece)
        else:
            groups["core"].append(piece)
    for name, pieces in groups.items():
        header = "// Generated from %s by extract_snippets.py; do not edit.\n" % doc
        write_if_changed(os.path.join(outdir, name + ".inc"), header + "".join(pieces))
    print(";".join(mains), end="")


def sh(doc, needle):
    for _, text in blocks(doc, "sh"):
        if needle in text:
            sys.stdout.write(text)
            return
    sys.exit("%s: no ```sh block contains %r" % (doc, needle))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "cpp":
        cpp(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "sh":
        sh(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
