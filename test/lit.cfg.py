# The wopt lit suite: per-pass .wir tests, text-IR tests, driver tests, and
# import/export tests that make fixtures with real PyTorch at test time.
import os
import shutil
import subprocess

import lit.formats
import lit.util

config.name = "wopt"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".wir", ".test"]
config.excludes = ["Inputs", "unit", "bench", "CMakeLists.txt", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.wopt_obj_root, "test")

# Tools: ours first, then LLVM's FileCheck/not/split-file/count.
path = os.path.pathsep.join(
    [config.wopt_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])]
)
config.environment["PATH"] = path
for var in ["HOME", "TMPDIR"]:
    if var in os.environ:
        config.environment[var] = os.environ[var]
config.environment["PYTHONDONTWRITEBYTECODE"] = "1"


def tool(name, dir_):
    return os.path.join(dir_, name)


# `not` is substituted everywhere (lit's defaults only do it after a pipe).
config.substitutions.append(("%wopt", tool("wopt", config.wopt_tools_dir)))
config.substitutions.append(("%python-torch", config.python_with_torch))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.substitutions.append(("%srcroot", config.wopt_src_root))
for name in ["FileCheck", "not", "split-file", "count"]:
    config.substitutions.append(
        (r"(?<![\w./%-])" + name + r"(?![\w.-])", tool(name, config.llvm_tools_dir))
    )

# Import/export tests need a Python that has torch (Debian's /usr/bin/python3).
try:
    subprocess.run(
        [config.python_with_torch, "-c", "import torch"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    config.available_features.add("torch")
except (OSError, subprocess.CalledProcessError):
    lit_config.warning("no torch in %s: import/export tests are unsupported" % config.python_with_torch)

# Multi-GB export tests (test/Serialization/large-file.test): ~10 GB of disk,
# ~9 GB of memory, a few minutes of I/O. They run whenever the machine has
# room for them (20 GB free beside the build, 12 GB of memory available);
# WOPT_LARGE_TESTS=1 (or `lit --param large-tests=1`) forces them on, =0 off.


def _has_room_for_large_tests():
    try:
        st = os.statvfs(config.wopt_obj_root)
        free_disk = st.f_bavail * st.f_frsize
        with open("/proc/meminfo") as f:
            mem = dict(line.split(":", 1) for line in f)
        avail_mem = int(mem["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return False
    return free_disk >= 20 << 30 and avail_mem >= 12 << 30


_large = os.environ.get("WOPT_LARGE_TESTS", lit_config.params.get("large-tests", ""))
if _large in ("1", "true") or (_large not in ("0", "false") and _has_room_for_large_tests()):
    config.available_features.add("large-tests")

# The cast pass (issue 10, item 3) is built on another branch: the synthesis
# test that needs it runs once the build has it.
try:
    subprocess.run(
        [tool("wopt", config.wopt_tools_dir), "--help-pass=cast"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    config.available_features.add("cast-pass")
except (OSError, subprocess.CalledProcessError):
    pass
