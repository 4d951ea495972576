"""Byte-exact builders for the malformed-input catalogue (catalogue.py).

Every format is assembled by hand (struct, json), never with torch, so that
each case controls every byte it breaks and the catalogue runs in
milliseconds per case.
"""
import json
import struct

# --- zip (as torch.save writes it: stored entries, zip64 end records) -------

LOCAL_SIG, CENTRAL_SIG = 0x04034B50, 0x02014B50
EOCD_SIG, Z64_EOCD_SIG, Z64_LOC_SIG = 0x06054B50, 0x06064B50, 0x07064B50


class Entry:
    def __init__(self, name, data=b"", method=0, flags=0, local_name=None,
                 zip64_extra=False, pad=0):
        self.name = name.encode() if isinstance(name, str) else name
        self.data = data
        self.method = method
        self.flags = flags
        self.local_name = self.name if local_name is None else local_name
        self.zip64_extra = zip64_extra  # sizes and offset in a zip64 extra field
        self.pad = pad                  # extra bytes in the local header


class Zip:
    """A zip archive and where each of its structures is (for patching)."""

    def __init__(self, entries, zip64=True, comment=b""):
        out = bytearray()
        self.local = []
        for e in entries:
            self.local.append(len(out))
            extra = struct.pack("<HH", 0xCAFE, e.pad) + b"\0" * e.pad if e.pad else b""
            out += struct.pack("<IHHHHHIIIHH", LOCAL_SIG, 20, e.flags, e.method, 0, 0, 0,
                               len(e.data), len(e.data), len(e.local_name), len(extra))
            out += e.local_name + extra + e.data
        self.cd = len(out)
        self.central = []
        for e, off in zip(entries, self.local):
            self.central.append(len(out))
            size = 0xFFFFFFFF if e.zip64_extra else len(e.data)
            offset = 0xFFFFFFFF if e.zip64_extra else off
            extra = (struct.pack("<HHQQQ", 1, 24, len(e.data), len(e.data), off)
                     if e.zip64_extra else b"")
            out += struct.pack("<IHHHHHHIIIHHHHHII", CENTRAL_SIG, 45, 20, e.flags,
                               e.method, 0, 0, 0, size, size, len(e.name), len(extra),
                               0, 0, 0, 0, offset)
            out += e.name + extra
        self.cd_size = len(out) - self.cd
        self.z64_eocd = self.z64_loc = None
        n = len(entries)
        if zip64:
            self.z64_eocd = len(out)
            out += struct.pack("<IQHHIIQQQQ", Z64_EOCD_SIG, 44, 45, 45, 0, 0, n, n,
                               self.cd_size, self.cd)
            self.z64_loc = len(out)
            out += struct.pack("<IIQI", Z64_LOC_SIG, 0, self.z64_eocd, 1)
        self.eocd = len(out)
        out += struct.pack("<IHHHHIIH", EOCD_SIG, 0, 0, n, n, self.cd_size, self.cd,
                           len(comment)) + comment
        self.bytes = out

    # Patching helpers: offsets are those of the structure's fields.
    def put(self, fmt, at, *values):
        struct.pack_into("<" + fmt, self.bytes, at, *values)
        return self


# --- pickles (protocol 2, the opcodes torch.save emits) ---------------------

def U(s):  # BINUNICODE
    b = s.encode() if isinstance(s, str) else s
    return b"X" + struct.pack("<I", len(b)) + b


def I(n):  # BININT, or LONG1 beyond 32 bits, as pickle writes ints
    if -(1 << 31) <= n < (1 << 31):
        return b"J" + struct.pack("<i", n)
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def G(mod, name):  # GLOBAL
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def pid(key="0", stype="FloatStorage", numel=3, legacy=False):
    items = [U("storage"), G("torch", stype), U(key), U("cpu"), I(numel)]
    if legacy:
        items.append(b"N")
    return tup(*items) + b"Q"


def tensor(storage=None, offset=0, size=(3,), stride=(1,), grad=b"\x89",
           fn="_rebuild_tensor_v2", args=None):
    storage = pid() if storage is None else storage
    if args is None:
        args = [storage, I(offset), tup(*map(I, size)), tup(*map(I, stride)), grad,
                G("collections", "OrderedDict") + b")R"]
    return G("torch._utils", fn) + tup(*args) + b"R"


def state_dict(*entries):
    body = b"".join(U(k) + v for k, v in entries)
    return b"\x80\x02}(" + body + b"u."


def torch_zip(pkl, records=None, prefix="archive", extra=()):
    """A torch.save-like stored zip: data.pkl, data/<key>, version."""
    if records is None:
        records = {"0": struct.pack("<3f", 1, 2, 3)}
    entries = [Entry(prefix + "/data.pkl", pkl)]
    entries += [Entry(prefix + "/data/" + k, v) for k, v in records.items()]
    entries += [Entry(prefix + "/version", b"3\n")]
    entries += list(extra)
    return bytes(Zip(entries).bytes)


def good_pickle():
    return state_dict(("w", tensor()))


# --- the legacy format: five pickles, then each storage's numel and bytes ---

LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."


def legacy(root=None, keys=None, storages=None, protocol=1001, little=True):
    """root: pickle 4 (tensors with 6-tuple persistent ids); keys: pickle 5;
    storages: bytes after it (default: storage '0', 3 floats)."""
    proto = b"\x80\x02M" + struct.pack("<H", protocol) + b"."
    info = (b"\x80\x02}(" + U("protocol_version") + b"M" + struct.pack("<H", 1001) +
            U("little_endian") + (b"\x88" if little else b"\x89") +
            U("type_sizes") + b"}(" + U("short") + b"K\x02" + U("int") + b"K\x04" +
            U("long") + b"K\x08" + b"uu.")
    if root is None:
        root = state_dict(("w", tensor(pid(legacy=True))))
    if keys is None:
        keys = b"\x80\x02]" + b"(" + U("0") + b"e."
    if storages is None:
        storages = struct.pack("<q", 3) + struct.pack("<3f", 1, 2, 3)
    return LEGACY_MAGIC + proto + info + root + keys + storages


# --- safetensors --------------------------------------------------------------

def safetensors(header, data=b"", length=None, pad=True):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data


def st_entry(dtype="F32", shape=(3,), offsets=(0, 12)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


F32x3 = struct.pack("<3f", 1, 2, 3)


# --- text inputs --------------------------------------------------------------

# The checkpoint the manifest and pipeline cases run on.
SMALL_WIR = """checkpoint odict {
  tensor "a" : f32[4] = [1.0, 2.0, 3.0, 4.0]
  tensor "b.weight" : f32[2, 2] = [1.0, 0.0, 0.0, 1.0]
}
"""


def manifest(entries, **fields):
    m = {"format": "wopt-manifest", "version": 1}
    m.update(fields)
    m["entries"] = entries
    return json.dumps(m).encode()
