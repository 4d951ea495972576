#!/usr/bin/env python3
"""Breaks one thing in a .wopt file, reading the flatbuffer by hand.

    patch_wopt.py IN OUT EDIT...

EDIT is one of
    version=N             Checkpoint.version
    data-start=N          Checkpoint.data_start
    storage-offset=I:N    storages[I].offset
    storage-size=I:N      storages[I].size
    tensor-storage=N      the first tensor node's storage index
    tensor-offset=N       the first tensor node's storage_offset
    first-child=N         the first child reference of the root node
    root=N                Checkpoint.root
    kind=I:K              nodes[I].kind
    truncate=N            keep the first N bytes
    drop-tail=N           drop the last N bytes

The writer forces every field, so every field has a slot to patch. Field
numbers follow lib/Serialization/schema/wopt.fbs.
"""
import struct
import sys

CK_VERSION, CK_DATA_START, CK_STORAGES, CK_NODES, CK_ROOT = 0, 1, 7, 8, 9
ST_OFFSET, ST_SIZE = 3, 4
NODE_KIND, NODE_CHILDREN, NODE_TENSOR = 0, 4, 7
T_STORAGE_OFFSET, T_STORAGE = 3, 6
KIND_TENSOR = 12


class Buf:
    def __init__(self, data):
        self.b = bytearray(data)

    def u32(self, at):
        return struct.unpack_from("<I", self.b, at)[0]

    def field(self, table, k):
        """Position of field k of the table at `table` (None if absent)."""
        vt = table - struct.unpack_from("<i", self.b, table)[0]
        vt_size = struct.unpack_from("<H", self.b, vt)[0]
        if 4 + 2 * k >= vt_size:
            return None
        off = struct.unpack_from("<H", self.b, vt + 4 + 2 * k)[0]
        return table + off if off else None

    def deref(self, at):
        return at + self.u32(at)

    def vector(self, table, k):
        """Element positions of a vector field (tables are dereferenced)."""
        at = self.deref(self.field(table, k))
        n = self.u32(at)
        return [at + 4 + 4 * i for i in range(n)]

    def root(self):
        return self.u32(0)


def first_tensor(buf):
    for n in buf.vector(buf.root(), CK_NODES):
        node = buf.deref(n)
        if buf.b[buf.field(node, NODE_KIND)] == KIND_TENSOR:
            return buf.deref(buf.field(node, NODE_TENSOR))
    raise SystemExit("no tensor node")


def storage(buf, i):
    return buf.deref(buf.vector(buf.root(), CK_STORAGES)[i])


def apply(buf, edit):
    name, _, arg = edit.partition("=")
    if name == "version":
        struct.pack_into("<I", buf.b, buf.field(buf.root(), CK_VERSION), int(arg))
    elif name == "data-start":
        struct.pack_into("<Q", buf.b, buf.field(buf.root(), CK_DATA_START), int(arg))
    elif name in ("storage-offset", "storage-size"):
        i, n = map(int, arg.split(":"))
        k = ST_OFFSET if name == "storage-offset" else ST_SIZE
        struct.pack_into("<Q", buf.b, buf.field(storage(buf, i), k), n)
    elif name == "tensor-storage":
        struct.pack_into("<i", buf.b, buf.field(first_tensor(buf), T_STORAGE), int(arg))
    elif name == "tensor-offset":
        struct.pack_into("<q", buf.b, buf.field(first_tensor(buf), T_STORAGE_OFFSET), int(arg))
    elif name == "root":
        struct.pack_into("<i", buf.b, buf.field(buf.root(), CK_ROOT), int(arg))
    elif name == "first-child":
        at = struct.unpack_from("<i", buf.b, buf.field(buf.root(), CK_ROOT))[0]
        root_node = buf.deref(buf.vector(buf.root(), CK_NODES)[at])
        kids = buf.vector(root_node, NODE_CHILDREN)
        struct.pack_into("<I", buf.b, kids[0], int(arg))
    elif name == "kind":
        i, k = map(int, arg.split(":"))
        node = buf.deref(buf.vector(buf.root(), CK_NODES)[i])
        buf.b[buf.field(node, NODE_KIND)] = k
    elif name == "truncate":
        del buf.b[int(arg):]
    elif name == "drop-tail":
        del buf.b[len(buf.b) - int(arg):]
    else:
        raise SystemExit("unknown edit " + edit)


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        buf = Buf(f.read())
    for edit in argv[3:]:
        apply(buf, edit)
    with open(argv[2], "wb") as f:
        f.write(buf.b)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
