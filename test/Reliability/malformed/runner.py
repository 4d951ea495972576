"""The lit test format of the malformed-input catalogue: one test per case
of catalogue.py, named Reliability/malformed/<reader>/<case>."""
import os
import shutil
import subprocess
import sys

import lit.formats
import lit.Test

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "Inputs"))
import builders  # noqa: E402
import catalogue  # noqa: E402
import patch_wopt  # noqa: E402

# Peak resident set allowed: wopt itself needs ~5 MiB; the rest is twice
# the input, so that a size claimed by a header is never allocated.
RSS_BUDGET_KIB = 16 * 1024


class Context:
    """What a case's make() may use to build its input."""

    def __init__(self, wopt, tmp):
        self.wopt, self.tmp = wopt, tmp

    def wopt_file(self, wir_text):
        src, out = os.path.join(self.tmp, "base.wir"), os.path.join(self.tmp, "base.wopt")
        with open(src, "w") as f:
            f.write(wir_text)
        subprocess.run([self.wopt, src, "-o", out], check=True)
        with open(out, "rb") as f:
            return f.read()

    @staticmethod
    def patch_wopt(data, edits):
        buf = patch_wopt.Buf(data)
        for e in edits:
            if e.startswith("ident="):
                buf.b[4:8] = e[len("ident="):].encode()
            else:
                patch_wopt.apply(buf, e)
        return bytes(buf.b)


def command(wopt, reader, tmp):
    """wopt's command line for a case, and the path of its input."""
    ext = catalogue.EXTENSION[reader]
    inp = os.path.join(tmp, "in." + ext)
    out = os.path.join(tmp, "out", "result.pth")
    if reader == "manifest":
        ck = os.path.join(tmp, "ck.wir")
        with open(ck, "w") as f:
            f.write(builders.SMALL_WIR)
        return [wopt, ck, "-pass-pipeline=verify-against-manifest{manifest=%s}" % inp, "-o", out], inp
    if reader == "pipeline":
        ck = os.path.join(tmp, "ck.wir")
        with open(ck, "w") as f:
            f.write(builders.SMALL_WIR)
        return None, inp  # the pipeline text is an argument, set by the caller
    return [wopt, inp, "-o", out], inp


def check_lines(reader, lines, expect):
    """None when stderr is the one error line (plus, for text formats, the
    quoted source line and its caret, and note: lines)."""
    if not lines or not lines[0].startswith("wopt: error: "):
        return "stderr does not start with 'wopt: error: '"
    if expect not in lines[0]:
        return "the error line does not contain %r" % expect
    rest = lines[1:]
    if reader in ("wir", "pipeline") and len(rest) >= 2 and rest[1].strip() == "^":
        rest = rest[2:]
    elif reader in ("wir", "pipeline") and len(rest) >= 2 and rest[1].lstrip().startswith("^"):
        rest = rest[2:]
    extra = [l for l in rest if not l.startswith("note: ")]
    if extra:
        return "more than one error line: %r" % extra
    return None


class CatalogueFormat(lit.formats.TestFormat):
    def getTestsInDirectory(self, testSuite, path_in_suite, litConfig, localConfig):
        for c in catalogue.CASES:
            yield lit.Test.Test(testSuite, path_in_suite + (c.reader, c.name), localConfig)

    def execute(self, test, litConfig):
        reader, name = test.path_in_suite[-2:]
        c = next(c for c in catalogue.CASES if c.reader == reader and c.name == name)
        tmp = test.getExecPath() + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(os.path.join(tmp, "out"))
        wopt = os.path.join(test.config.wopt_tools_dir, "wopt")
        data = c.make(Context(wopt, tmp))
        cmd, inp = command(wopt, reader, tmp)
        if reader == "pipeline":
            cmd = [wopt, os.path.join(tmp, "ck.wir"), "-pass-pipeline=" + data.decode("latin-1"),
                   "-o", os.path.join(tmp, "out", "result.pth")]
        with open(inp, "wb") as f:
            f.write(data)
        # Peak RSS from /usr/bin/time: a child forked from this (large)
        # Python process would report the parent's pages as its own.
        rss = os.path.join(tmp, "rss")
        with open(os.path.join(tmp, "stderr"), "wb") as err:
            returncode = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", rss] + cmd,
                                         stdout=subprocess.DEVNULL, stderr=err)
        with open(rss) as f:
            # "Command exited with non-zero status N" comes first.
            peak_kib = int(f.read().split()[-1])
        with open(os.path.join(tmp, "stderr"), "rb") as f:
            stderr = f.read().decode("utf-8", "replace")
        report = ["$ " + " ".join(cmd), stderr.rstrip("\n"),
                  "exit %d, peak RSS %d KiB" % (returncode, peak_kib)]
        problems = []
        if returncode != 2:
            problems.append("exit code %d, expected 2" % returncode)
        bad = check_lines(reader, stderr.rstrip("\n").split("\n"), c.expect)
        if bad:
            problems.append(bad)
        left = os.listdir(os.path.join(tmp, "out"))
        if left:
            problems.append("files left in the output directory: %s" % left)
        budget = RSS_BUDGET_KIB + 2 * len(data) // 1024
        if peak_kib > budget:
            problems.append("peak RSS %d KiB exceeds %d KiB" % (peak_kib, budget))
        if problems:
            return lit.Test.FAIL, "\n".join(report + ["FAILED: " + p for p in problems])
        shutil.rmtree(tmp, ignore_errors=True)
        return lit.Test.PASS, "\n".join(report)
