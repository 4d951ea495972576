# GoogleTest unit tests, run by lit so one runner reports everything.
import os
import lit.formats

config.name = "wopt-unit"
config.suffixes = []
config.test_source_root = os.path.join(config.wopt_obj_root, "test", "unit")
config.test_exec_root = config.test_source_root
config.test_format = lit.formats.GoogleTest(".", "Tests")
