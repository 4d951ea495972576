#!/usr/bin/python3
"""Checks what `cmake --install` put under a prefix.

Usage: check_install.py SRCROOT PREFIX [--torch]

- bin/wopt; every header and .def under SRCROOT/include/wopt plus the
  generated wopt/Version.h (the Torch headers only with --torch); the static
  libraries; the CMake package files. Nothing else: no private header
  (AtomicOutput.h, PassUtils.h) and no generated one (wopt_generated.h).
- One version everywhere: project(wopt VERSION x) in SRCROOT/CMakeLists.txt,
  `wopt --version`, WOPT_VERSION_STRING in Version.h, PACKAGE_VERSION in
  WoptConfigVersion.cmake.

Prints "install OK: ..." or exits 1 naming the first difference.
"""
import os
import re
import subprocess
import sys

LIBS = ["IR", "Pass", "Passes", "Serialization", "Manifest", "Synth", "Tools"]


def fail(msg):
    print("install check FAILED: " + msg)
    sys.exit(1)


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def expected_files(src, libdir, torch):
    want = {"bin/wopt", "include/wopt/Version.h"}
    inc = os.path.join(src, "include")
    for f in files_under(inc):
        if not f.endswith((".h", ".def")):
            continue
        if f.startswith("wopt/Torch/") and not torch:
            continue
        want.add("include/" + f)
    for lib in LIBS + (["Torch"] if torch else []):
        want.add("%s/libWopt%s.a" % (libdir, lib))
    pkg = libdir + "/cmake/Wopt/"
    for f in ["WoptConfig.cmake", "WoptConfigVersion.cmake",
              "WoptDependencies.cmake", "WoptTargets.cmake"]:
        want.add(pkg + f)
    if torch:
        want.add(pkg + "WoptTorchTargets.cmake")
    return want


def check_versions(src, prefix, libdir):
    text = open(os.path.join(src, "CMakeLists.txt")).read()
    m = re.search(r"project\(wopt VERSION (\S+)", text)
    if not m:
        fail("no project(wopt VERSION ...) in CMakeLists.txt")
    v = m.group(1)
    out = subprocess.run([os.path.join(prefix, "bin/wopt"), "--version"],
                         capture_output=True, text=True)
    if out.returncode != 0 or out.stdout != "wopt version %s\n" % v:
        fail("wopt --version printed %r (exit %d), CMakeLists.txt has %s"
             % (out.stdout, out.returncode, v))
    header = open(os.path.join(prefix, "include/wopt/Version.h")).read()
    if '#define WOPT_VERSION_STRING "%s"' % v not in header:
        fail("Version.h does not say %s" % v)
    cfg = open(os.path.join(prefix, libdir, "cmake/Wopt/WoptConfigVersion.cmake")).read()
    if 'set(PACKAGE_VERSION "%s")' % v not in cfg:
        fail("WoptConfigVersion.cmake does not say %s" % v)
    return v


def main():
    src, prefix = sys.argv[1], sys.argv[2]
    torch = "--torch" in sys.argv[3:]
    have = files_under(prefix)
    libdirs = sorted(os.path.dirname(f) for f in have if f.endswith("/libWoptIR.a"))
    if len(libdirs) != 1:
        fail("libWoptIR.a installed %d times" % len(libdirs))
    libdir = libdirs[0]
    # Build-type specific target files: WoptTargets-release.cmake, ...
    have_main = {f for f in have if not re.search(r"Targets-\w+\.cmake$", f)}
    want = expected_files(src, libdir, torch)
    missing, extra = sorted(want - have_main), sorted(have_main - want)
    if missing:
        fail("not installed: " + ", ".join(missing))
    if extra:
        fail("installed but not public: " + ", ".join(extra))
    v = check_versions(src, prefix, libdir)
    headers = sum(1 for f in want if f.startswith("include/"))
    libs = sum(1 for f in want if f.endswith(".a"))
    print("install OK: %d headers, %d libraries, bin/wopt, package in %s/cmake/Wopt, version %s"
          % (headers, libs, libdir, v))


if __name__ == "__main__":
    main()
