"""Python's own unpickler as the judge of a pickle round trip.

load(data) unpickles with every global replaced by a recording stub (a few
harmless builtins excepted), so nothing from the file runs, and returns a
canonical tree: two pickles are the same value for Python when their trees
are equal. Storage keys are numbered in order of first use, since an
exporter may renumber them.
"""
import _compat_pickle
import codecs
import collections
import io
import math
import pickle

# Globals that build plain values: kept real, so that the spellings of one
# value (BINBYTES or _codecs.encode; protocol 2 or 4) compare equal.
REAL = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): codecs.encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "bytes"): bytes,
    ("builtins", "complex"): complex,
}


class Stub:
    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items, obj.entries = args, kwargs, None, [], []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.items.append(item)

    def extend(self, items):
        self.items.extend(items)

    def __setitem__(self, key, value):
        self.entries.append((key, value))


_stubs = {}


def _stub(module, name):
    key = (module, name)
    if key not in _stubs:
        _stubs[key] = type("Stub_" + name, (Stub,), {"global_name": key})
    return _stubs[key]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        # The names protocol 2 spells the Python 2 way (__builtin__.set).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        return REAL.get((module, name)) or _stub(module, name)

    def persistent_load(self, pid):
        return ("persistent id", pid)


def canonical(value):
    keys, seen = {}, {}

    def walk(v):
        if id(v) in seen:
            return ("ref", seen[id(v)])
        if isinstance(v, (list, dict, Stub, set, frozenset)):
            seen[id(v)] = len(seen)
        if isinstance(v, tuple) and len(v) == 2 and v[0] == "persistent id":
            pid = v[1]
            if isinstance(pid, tuple) and len(pid) >= 3:
                k = keys.setdefault(repr(pid[2]), len(keys))
                pid = (pid[0], walk(pid[1]), k) + tuple(walk(x) for x in pid[3:])
            return ("pid", pid)
        if isinstance(v, Stub):
            return ("object", type(v).global_name, walk(v.args), walk(sorted(v.kwargs.items())),
                    walk(v.state), walk(v.items), walk(v.entries))
        if isinstance(v, dict):
            return (type(v).__name__, [(walk(k), walk(x)) for k, x in v.items()])
        if isinstance(v, list):
            return ("list", [walk(x) for x in v])
        if isinstance(v, tuple):
            return ("tuple", [walk(x) for x in v])
        if isinstance(v, (set, frozenset)):
            return (type(v).__name__, sorted(repr(walk(x)) for x in v))
        if isinstance(v, float) and math.isnan(v):
            return ("float", "nan")
        if isinstance(v, type):
            return ("global", getattr(v, "global_name", v.__name__))
        return (type(v).__name__, v)

    return walk(value)


def load(data):
    """The canonical tree of the pickle data, or raises what pickle raises."""
    return canonical(_Unpickler(io.BytesIO(data), encoding="latin1").load())


def persistent_ids(data):
    """(key, storage class name, numel) of every storage the pickle names."""
    found = []

    class Finder(_Unpickler):
        def persistent_load(self, pid):
            if isinstance(pid, tuple) and len(pid) >= 5 and isinstance(pid[1], type):
                found.append((pid[2], pid[1].global_name[1], pid[4]))
            return ("persistent id", pid)

    Finder(io.BytesIO(data), encoding="latin1").load()
    return found


def globals_named(data):
    """Every (module, name) the pickle's GLOBAL and STACK_GLOBAL opcodes name."""
    import pickletools
    out, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, name = arg.split(" ", 1)
            out.add((module, name))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            out.add((strings[-2], strings[-1]))
        if isinstance(arg, str):
            strings.append(arg)
    return out
