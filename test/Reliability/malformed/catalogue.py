#!/usr/bin/env python3
"""The malformed-input catalogue: every way a file can be wrong that wopt's
readers must refuse, one named case each (docs/Reliability.md has the
table, generated from this file: `catalogue.py --markdown`).

Each case builds its input byte by byte (builders.py) and gives the text its
one-line error must contain. The lit format (lit.local.cfg, runner.py) runs
every case as a test of its own: exit code 2, that error, no other error
line (a wir or pipeline error may quote the line with a caret, and notes
may follow), no output file, and a peak resident set no larger than a small
fixed budget plus twice the input: a header that claims terabytes must be
refused, not believed.

    catalogue.py --list        every case
    catalogue.py --markdown    the table for docs/Reliability.md
"""
import collections
import struct
import sys

from builders import (Entry, F32x3, G, I, SMALL_WIR, U, Zip, legacy, manifest,
                      pid, safetensors, st_entry, state_dict, tensor, torch_zip,
                      tup, good_pickle)

Case = collections.namedtuple("Case", "reader name what make expect")
CASES = []

# What the input file is called for each reader, and how it is fed to wopt:
# checkpoint readers read it as the input; manifests and pipelines run on
# SMALL_WIR.
EXTENSION = {"zip": "pth", "pickle": "pth", "legacy": "pt", "safetensors": "safetensors",
             "wopt": "wopt", "wir": "wir", "manifest": "json", "pipeline": "txt"}
READERS = list(EXTENSION)


def case(reader, name, what, expect):
    def register(make):
        CASES.append(Case(reader, name, what, make, expect))
        return make
    return register


def simple(reader, name, what, expect, data):
    CASES.append(Case(reader, name, what, lambda ctx: data, expect))


def zip_case(name, what, expect):
    """make(z) patches z, a Zip of a good torch archive."""
    def register(patch):
        def make(ctx):
            z = Zip([Entry("archive/data.pkl", good_pickle()),
                     Entry("archive/data/0", F32x3), Entry("archive/version", b"3\n")])
            out = patch(z)
            return bytes(z.bytes if out is None else out)
        CASES.append(Case("zip", name, what, make, expect))
        return patch
    return register


def pickle_case(name, what, expect, pkl, records=None):
    CASES.append(Case("pickle", name, what, lambda ctx: torch_zip(pkl, records), expect))


def entries(*es):
    return bytes(Zip(list(es)).bytes)


# --- zip: the container ---------------------------------------------------------

simple("zip", "only-signature", "the 4-byte local header signature and nothing else",
       "file of 4 bytes is too small to be a zip archive", b"PK\x03\x04")
simple("zip", "empty-end-record", "an end record and no entries at all",
       "zip: archive has no entries", struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0, 0, 0, 0, 0))


@zip_case("truncated-end-record", "the last 10 bytes (half the end record) are cut off",
          "no end-of-central-directory record (truncated or not a zip)")
def _(z):
    return z.bytes[:-10]


@zip_case("comment-length-past-end", "the end record's comment length says 200 bytes, none follow",
          "no end-of-central-directory record")
def _(z):
    z.put("H", z.eocd + 20, 200)


@zip_case("multi-disk-end-record", "the end record says it is on disk 1",
          "zip: multi-disk archives are not supported")
def _(z):
    z.put("H", z.eocd + 4, 1)


@zip_case("multi-disk-locator", "the zip64 locator says the archive spans 3 disks",
          "zip: multi-disk archives are not supported")
def _(z):
    z.put("I", z.z64_loc + 16, 3)


@zip_case("saturated-count-no-locator", "entry count 0xFFFF in the end record, no zip64 locator",
          "end record needs zip64 values but there is no zip64 locator")
def _(z):
    z.put("I", z.z64_loc, 0)  # break the locator signature
    z.put("HH", z.eocd + 8, 0xFFFF, 0xFFFF)


@zip_case("directory-past-end", "the end record puts the central directory at byte 2^32-2",
          "central directory (byte 4294967294, ")
def _(z):
    z.put("I", z.z64_loc, 0)
    z.put("I", z.eocd + 16, 0xFFFFFFFE)


@zip_case("locator-past-end", "the zip64 locator points at byte 2^40, far past the file",
          "zip64 locator points at byte 1099511627776, outside the file")
def _(z):
    z.put("Q", z.z64_loc + 8, 1 << 40)


@zip_case("locator-at-garbage", "the zip64 locator points at the first local header",
          "no zip64 end-of-central-directory record at byte 0 where the locator points")
def _(z):
    z.put("Q", z.z64_loc + 8, 0)


@zip_case("zip64-directory-huge", "the zip64 end record claims a 2^62-byte central directory",
          "central directory (byte ")
def _(z):
    z.put("Q", z.z64_eocd + 40, 1 << 62)


@zip_case("zip64-directory-offset-huge", "the zip64 end record puts the directory at byte 2^63",
          "central directory (byte 9223372036854775808,")
def _(z):
    z.put("Q", z.z64_eocd + 48, 1 << 63)


@zip_case("count-exceeds-directory", "the directory claims 10^9 entries in its few hundred bytes",
          "central directory claims 1000000000 entries in ")
def _(z):
    z.put("Q", z.z64_eocd + 32, 10**9)


@zip_case("bad-central-signature", "the first central directory header's signature is zeroed",
          "bad central directory entry 0 at byte ")
def _(z):
    z.put("I", z.central[0], 0)


@zip_case("central-name-past-directory", "a central header's name length runs past the directory",
          "central directory entry 2 at byte ")
def _(z):
    z.put("H", z.central[2] + 28, 60000)


@zip_case("extra-field-past-entry", "a central header's extra field claims more bytes than it has",
          "entry 'archive/version' has an extra field past its end")
def _(z):
    # Give the last entry a 4-byte extra field whose length says 400.
    at = z.central[2]
    name_len = struct.unpack_from("<H", z.bytes, at + 28)[0]
    z.bytes[at + 46 + name_len:at + 46 + name_len] = struct.pack("<HH", 0x1234, 400)
    z.put("H", at + 30, 4)
    z.cd_size += 4
    z.put("Q", z.z64_eocd + 40 + 4, z.cd_size)  # everything after shifted by 4
    z.put("I", z.eocd + 4 + 12, z.cd_size)
    z.put("Q", z.z64_loc + 4 + 8, z.z64_eocd + 4)


@zip_case("saturated-size-no-extra", "a central header's size is 0xFFFFFFFF with no zip64 extra field",
          "entry 'archive/data/0' needs zip64 values but has no zip64 extra field")
def _(z):
    z.put("II", z.central[1] + 20, 0xFFFFFFFF, 0xFFFFFFFF)


@case("zip", "short-zip64-extra", "the zip64 extra field holds one of the three values it must",
      "entry 'archive/data/0' has a short zip64 extra field")
def _(ctx):
    z = Zip([Entry("archive/data.pkl", good_pickle()), Entry("archive/data/0", F32x3, zip64_extra=True),
             Entry("archive/version", b"3\n")])
    z.put("H", z.central[1] + 46 + len("archive/data/0") + 2, 8)  # field length 24 -> 8
    return bytes(z.bytes)


@case("zip", "zip64-extra-entry-2^40", "a zip64 extra field gives a record 2^40 bytes (the file has 600)",
      "entry 'archive/data/0' (1099511627776 bytes at byte ")
def _(ctx):
    z = Zip([Entry("archive/data.pkl", good_pickle()), Entry("archive/data/0", F32x3, zip64_extra=True),
             Entry("archive/version", b"3\n")])
    at = z.central[1] + 46 + len("archive/data/0") + 4
    z.put("QQ", at, 1 << 40, 1 << 40)
    return bytes(z.bytes)


@zip_case("stored-size-mismatch", "a stored entry's compressed size differs from its size",
          "stored entry 'archive/data/0' has compressed size 13 != size 12")
def _(z):
    z.put("I", z.central[1] + 20, 13)


@zip_case("local-header-past-end", "a central header puts its local header at byte 2^32-2",
          "entry 'archive/data/0': no local header at byte 4294967294")
def _(z):
    z.put("I", z.central[1] + 42, 0xFFFFFFFE)


@zip_case("local-header-bad-signature", "the local header of a record has no signature",
          "entry 'archive/data/0': no local header at byte ")
def _(z):
    z.put("I", z.local[1], 0)


@zip_case("local-name-differs", "a local header names another record than its central header",
          "entry 'archive/data/0': local header at byte ")
def _(z):
    z.bytes[z.local[1] + 30 + len("archive/data/")] = ord("9")


@zip_case("local-extra-past-end", "a local header's extra field length runs past the file",
          "local header at byte ")
def _(z):
    z.put("H", z.local[2] + 28, 65000)


@zip_case("record-past-end", "a record's size runs past the end of the file",
          "entry 'archive/version' (")
def _(z):
    # Grow the last record in both headers; it overlaps the directory too,
    # but running past the file is checked first.
    z.put("II", z.central[2] + 20, 100000, 100000)


@zip_case("records-overlap", "data.pkl's size grows over the next record's local header",
          "entries 'archive/data.pkl' and 'archive/data/0' overlap")
def _(z):
    n = len(good_pickle()) + 40
    z.put("II", z.central[0] + 20, n, n)
    z.put("II", z.local[0] + 18, n, n)


@zip_case("record-overlaps-directory", "a record's data reaches into the central directory",
          "entry 'archive/version' overlaps the central directory")
def _(z):
    z.put("II", z.central[2] + 20, 40, 40)
    z.put("II", z.local[2] + 18, 40, 40)


@case("zip", "no-folder", "the first record is not inside a folder ('data.pkl')",
      "zip: first entry 'data.pkl' is not inside a folder")
def _(ctx):
    return entries(Entry("data.pkl", good_pickle()), Entry("archive/data/0", F32x3))


@case("zip", "duplicate-record", "two records named archive/data/0",
      "zip: duplicate entry 'archive/data/0'")
def _(ctx):
    return entries(Entry("archive/data.pkl", good_pickle()), Entry("archive/data/0", F32x3),
                   Entry("archive/data/0", F32x3))


@case("zip", "encrypted-record", "data.pkl has the encrypted flag",
      "zip: entry 'archive/data.pkl' is encrypted")
def _(ctx):
    return entries(Entry("archive/data.pkl", good_pickle(), flags=1), Entry("archive/data/0", F32x3))


@case("zip", "deflated-record", "data.pkl is deflated (method 8)",
      "zip: entry 'archive/data.pkl' is compressed (method 8); only stored entries are supported")
def _(ctx):
    return entries(Entry("archive/data.pkl", good_pickle(), method=8), Entry("archive/data/0", F32x3))


@case("zip", "no-data-pkl", "an archive of torch's folder layout without data.pkl",
      "zip: no record 'archive/data.pkl'")
def _(ctx):
    return entries(Entry("archive/data/0", F32x3), Entry("archive/version", b"3\n"))


@case("zip", "torchscript", "a TorchScript archive (it has constants.pkl)",
      "is a TorchScript archive, not a checkpoint")
def _(ctx):
    return entries(Entry("archive/data.pkl", good_pickle()), Entry("archive/constants.pkl", b"\x80\x02)."),
                   Entry("archive/data/0", F32x3))


@case("zip", "unknown-byteorder", "byteorder record says 'middle'",
      "byteorder: unknown byte order 'middle'")
def _(ctx):
    return torch_zip(good_pickle(), extra=[Entry("archive/byteorder", b"middle")])


@case("zip", "missing-storage-record", "the pickle names storage '0', the archive has no data/0",
      "storage '0' has no record 'archive/data/0'")
def _(ctx):
    return torch_zip(good_pickle(), records={})


@case("zip", "storage-record-short", "storage '0' is 3 floats by its numel, its record has 8 bytes",
      "storage '0' holds 12 bytes by its numel but record 'archive/data/0' has 8")
def _(ctx):
    return torch_zip(good_pickle(), records={"0": b"\0" * 8})


# --- pickle: data.pkl ---------------------------------------------------------

P2 = b"\x80\x02"
pickle_case("empty", "data.pkl has no bytes", "data.pkl: empty pickle at byte 0", b"")
pickle_case("no-stop", "data.pkl ends without STOP", "data.pkl: pickle ends without STOP at byte 3",
            P2 + b"N")
pickle_case("protocol-6", "PROTO 6", "data.pkl: unsupported pickle protocol 6 at byte 0", b"\x80\x06N.")
pickle_case("proto-truncated", "PROTO without its argument",
            "data.pkl: PROTO needs 1 bytes but only 0 remain at byte 0", b"\x80")
pickle_case("frame-past-end", "a FRAME of 2^62 bytes",
            "data.pkl: FRAME of 4611686018427387904 bytes runs past the end",
            P2 + b"\x95" + struct.pack("<Q", 1 << 62) + b"N.")
pickle_case("not-an-opcode", "byte 0xff where an opcode belongs",
            "data.pkl: opcode 0xff at byte 2 is not a pickle opcode", P2 + b"\xff.")
pickle_case("unsupported-opcode", "EXT1 (extension registry): known, not supported",
            "data.pkl: opcode EXT1 (0x82) is not supported at byte 2", P2 + b"\x82\x01.")
pickle_case("stop-empty-stack", "STOP with nothing on the stack",
            "data.pkl: STOP with an empty stack at byte 2", P2 + b".")
pickle_case("stack-underflow", "TUPLE1 on an empty stack", "data.pkl: stack underflow at byte 2",
            P2 + b"\x85.")
pickle_case("underflow-below-mark", "TUPLE2 with one value above a MARK",
            "data.pkl: stack underflow (below a MARK) at byte 5", P2 + b"N(N\x86.")
pickle_case("no-mark", "TUPLE without a MARK", "data.pkl: no MARK on the stack at byte 3", P2 + b"Nt.")
pickle_case("pop-mark-no-mark", "POP_MARK without a MARK", "data.pkl: no MARK on the stack at byte 2",
            P2 + b"1N.")
pickle_case("binunicode-4g", "BINUNICODE claiming 4 GiB - 16 bytes",
            "data.pkl: BINUNICODE needs 4294967280 bytes but only 1 remain at byte 2",
            P2 + b"X" + struct.pack("<I", 0xFFFFFFF0) + b".")
pickle_case("binunicode8-2^62", "BINUNICODE8 claiming 2^62 bytes",
            "data.pkl: BINUNICODE8 needs 4611686018427387904 bytes but only 1 remain",
            b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b".")
pickle_case("binbytes-4g", "BINBYTES claiming 4 GiB (0xFFFFFFFF bytes)",
            "data.pkl: BINBYTES needs 4294967295 bytes but only 1 remain",
            b"\x80\x03B" + struct.pack("<I", 0xFFFFFFFF) + b".")
pickle_case("binbytes8-2^63", "BINBYTES8 claiming 2^63 bytes",
            "data.pkl: BINBYTES8 needs 9223372036854775808 bytes",
            b"\x80\x04\x8e" + struct.pack("<Q", 1 << 63) + b".")
pickle_case("bytearray8-2^40", "BYTEARRAY8 claiming 2^40 bytes",
            "data.pkl: BYTEARRAY8 needs 1099511627776 bytes",
            b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b".")
pickle_case("long4-2^31", "LONG4 claiming 2^31 - 1 bytes of integer",
            "data.pkl: LONG4 needs 2147483647 bytes", P2 + b"\x8b" + struct.pack("<i", 0x7FFFFFFF) + b".")
pickle_case("binstring-negative", "BINSTRING with a negative length",
            "data.pkl: BINSTRING has a negative length at byte 2",
            P2 + b"T" + struct.pack("<i", -5) + b".")
pickle_case("short-binunicode-truncated", "SHORT_BINUNICODE of 200 bytes, 3 present",
            "data.pkl: SHORT_BINUNICODE needs 200 bytes but only 3 remain",
            b"\x80\x04\x8c\xc8abc")
pickle_case("binunicode-not-utf8", "BINUNICODE holding the bytes ff fe",
            "data.pkl: BINUNICODE is not valid UTF-8 at byte 2",
            P2 + b"X" + struct.pack("<I", 2) + b"\xff\xfe.")
pickle_case("text-no-newline", "INT argument without its end of line",
            "data.pkl: text argument has no end of line at byte 2", P2 + b"I12")
pickle_case("int-not-integer", "INT argument 'twelve'",
            "data.pkl: INT argument 'twelve' is not an integer at byte 2", P2 + b"Itwelve\n.")
pickle_case("long-not-integer", "LONG argument '12x'", "data.pkl: LONG argument '12x'",
            P2 + b"L12x\n.")
pickle_case("float-not-number", "FLOAT argument 'pi'",
            "data.pkl: FLOAT argument 'pi' is not a number at byte 2", P2 + b"Fpi\n.")
pickle_case("string-not-quoted", "STRING argument without quotes",
            "data.pkl: STRING argument is not quoted at byte 2", P2 + b"Sabc\n.")
pickle_case("string-escapes", "STRING with a backslash escape",
            "data.pkl: STRING with escapes is not supported at byte 2", P2 + b"S'a\\nb'\n.")
pickle_case("unicode-bad-escape", "UNICODE with a cut-off \\u escape",
            "data.pkl: UNICODE argument has a bad \\u or \\U escape at byte 2", P2 + b"Va\\u00\n.")
pickle_case("append-to-int", "APPEND to an int", "data.pkl: APPEND to a value that is not a list, set or object",
            P2 + b"K\x01K\x02a.")
pickle_case("setitem-on-list", "SETITEM on a list",
            "data.pkl: SETITEM on a value that is not a dict or object", P2 + b"]K\x01K\x02s.")
pickle_case("global-empty-name", "GLOBAL with an empty name",
            "data.pkl: global name '' (module 'torch') is not a dotted Python identifier at byte 2",
            P2 + b"ctorch\n\n.")
pickle_case("global-digit-module", "GLOBAL of module '1abc'",
            "data.pkl: global module name '1abc' is not a dotted Python identifier", P2 + b"c1abc\nfoo\n.")


def S(s):  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


pickle_case("global-blank-module", "STACK_GLOBAL of module 'os system' (a GLOBAL could not spell it)",
            "data.pkl: global module name 'os system' is not a dotted Python identifier",
            b"\x80\x04" + S("os system") + S("exec") + b"\x93.")
pickle_case("global-newline-name", "STACK_GLOBAL of name 'print\\nx' (would inject another GLOBAL)",
            "data.pkl: global name 'print\\nx' (module 'builtins') is not a dotted Python identifier",
            b"\x80\x04" + S("builtins") + S("print\nx") + b"\x93.")
pickle_case("global-empty-component", "STACK_GLOBAL of module 'a..b'",
            "data.pkl: global module name 'a..b' is not a dotted Python identifier",
            b"\x80\x04" + S("a..b") + S("c") + b"\x93.")
pickle_case("stack-global-not-strings", "STACK_GLOBAL of two ints",
            "data.pkl: STACK_GLOBAL needs two strings", b"\x80\x04K\x01K\x02\x93.")
pickle_case("newobj-ex-kwargs", "NEWOBJ_EX whose keyword arguments are a list",
            "data.pkl: NEWOBJ_EX keyword arguments are not a dict",
            b"\x80\x04" + G("foo", "Bar") + b")]\x92.")
pickle_case("build-twice", "BUILD on an object that already has a state",
            "data.pkl: BUILD on an object that already has a state",
            P2 + G("foo", "Bar") + b")\x81}b}b.")
pickle_case("build-on-int", "BUILD on an int",
            "data.pkl: BUILD on a value that is not an object or OrderedDict", P2 + b"K\x01}b.")
pickle_case("memo-index-huge", "PUT 2^32 (memo indices are 32 bits)",
            "data.pkl: memo index 4294967296 is too large", P2 + b"Np4294967296\n.")
pickle_case("memo-miss", "BINGET of a memo slot never put", "data.pkl: memo key 5 is not defined",
            P2 + b"h\x05.")
pickle_case("put-not-number", "PUT with the index 'x1'", "data.pkl: memo index 'x1' is not a number",
            P2 + b"Npx1\n.")
pickle_case("nesting-2000", "2000 nested lists (the limit is 1000)",
            "data.pkl: values nested deeper than 1000 (limit)", P2 + b"]" * 2000 + b"a" * 1999 + b".")
pickle_case("persid-not-tuple", "a persistent id that is a string",
            "data.pkl: persistent id is not a 5-tuple", state_dict(("w", tensor(U("x") + b"Q"))))
pickle_case("persid-not-storage", "a persistent id tagged 'module'",
            "data.pkl: persistent id does not start with 'storage'",
            state_dict(("w", tensor(tup(U("module"), G("torch", "FloatStorage"), U("0"), U("cpu"), I(3)) + b"Q"))))
pickle_case("persid-negative-numel", "a storage of -3 elements",
            "data.pkl: persistent id has a bad storage type, key, location or numel",
            state_dict(("w", tensor(pid(numel=-3)))))
pickle_case("unknown-storage-type", "torch.QuarterStorage",
            "data.pkl: unknown storage type torch.QuarterStorage",
            state_dict(("w", tensor(pid(stype="QuarterStorage")))))
pickle_case("storage-numel-2^31", "a storage of 2^31 - 1 floats (8 GiB) in a 600-byte file",
            "storage '0' of 2147483647 FloatStorage elements is larger than the file",
            state_dict(("w", tensor(pid(numel=0x7FFFFFFF)))))
pickle_case("persid-location-int", "a storage whose location is an int",
            "data.pkl: persistent id has a bad storage type, key, location or numel",
            state_dict(("w", tensor(tup(U("storage"), G("torch", "FloatStorage"), U("0"), I(0), I(3)) + b"Q"))))
pickle_case("rebuild-arg-count", "_rebuild_tensor_v2 with 3 arguments",
            "_rebuild_tensor_v2 takes 6 or 7 arguments, not 3",
            state_dict(("w", tensor(args=[pid(), I(0), tup(I(3))]))))
pickle_case("rebuild-not-storage", "_rebuild_tensor_v2 whose storage is an int",
            "_rebuild_tensor_v2: argument 1 is not a storage",
            state_dict(("w", tensor(args=[I(1), I(0), tup(I(3)), tup(I(1)), b"\x89", b"N"]))))
pickle_case("rebuild-negative-offset", "a storage offset of -1",
            "_rebuild_tensor_v2: storage offset is not a non-negative int",
            state_dict(("w", tensor(offset=-1))))
pickle_case("rebuild-stride-length", "a 2-D size with a 1-D stride",
            "_rebuild_tensor_v2: size and stride are not int tuples of one length",
            state_dict(("w", tensor(size=(3, 1), stride=(1,)))))
pickle_case("rebuild-negative-size", "a size of -3", "_rebuild_tensor_v2: negative size -3",
            state_dict(("w", tensor(size=(-3,)))))
pickle_case("rebuild-grad-not-bool", "requires_grad given as None",
            "_rebuild_tensor_v2: requires_grad is not a bool", state_dict(("w", tensor(grad=b"N"))))
pickle_case("shape-2^31-squared", "a tensor of shape [2^31, 2^31] over 3 floats",
            "tensor 'w' (f32[2147483648, 2147483648], strides [2147483648, 1], offset 0) needs "
            "more than 2^64 bytes but storage '0' holds 12",
            state_dict(("w", tensor(size=(1 << 31, 1 << 31), stride=(1 << 31, 1)))))
pickle_case("view-past-storage", "a view starting at element 2 of 3 with 2 elements",
            "tensor 'w' (f32[2], strides [1], offset 2) needs 16 bytes but storage '0' holds 12",
            state_dict(("w", tensor(offset=2, size=(2,)))))
pickle_case("parameter-args", "_rebuild_parameter with 2 arguments",
            "_rebuild_parameter takes 3 arguments, not 2",
            state_dict(("w", G("torch._utils", "_rebuild_parameter") + tup(tensor(), b"\x89") + b"R")))
pickle_case("parameter-not-tensor", "_rebuild_parameter of an int",
            "_rebuild_parameter: arguments are not (tensor, bool, hooks)",
            state_dict(("w", G("torch._utils", "_rebuild_parameter") + tup(I(1), b"\x89", b"N") + b"R")))
pickle_case("rebuild-v3-dtype", "_rebuild_tensor_v3 whose dtype is a string",
            "_rebuild_tensor_v3: argument 7 is not a torch dtype",
            state_dict(("w", tensor(fn="_rebuild_tensor_v3",
                                    args=[pid(stype="UntypedStorage", numel=12), I(0), tup(I(3)),
                                          tup(I(1)), b"\x89", G("collections", "OrderedDict") + b")R",
                                          U("float32")]))))

# --- legacy: torch.save(_use_new_zipfile_serialization=False) -------------------

simple("legacy", "protocol-version", "the second pickle says protocol 1000, not 1001",
       "legacy protocol version is not 1001", legacy(protocol=1000))
simple("legacy", "big-endian", "sys_info says little_endian False",
       "big-endian checkpoints are not supported", legacy(little=False))
simple("legacy", "magic-only", "the magic number and nothing after it",
       "legacy pickle: empty pickle", legacy()[:15])
simple("legacy", "keys-not-list", "the storage key list is a dict",
       "legacy storage key list is not a list", legacy(keys=b"\x80\x02}."))
simple("legacy", "key-not-string", "the storage key list holds an int",
       "legacy storage key list holds a non-string", legacy(keys=b"\x80\x02](K\x00e."))
simple("legacy", "key-unused", "the key list names storage '7', which no tensor uses",
       "legacy storage '7' is listed but not used or listed twice",
       legacy(keys=b"\x80\x02](" + U("0") + U("7") + b"e."))
simple("legacy", "key-twice", "the key list names storage '0' twice",
       "legacy storage '0' is listed but not used or listed twice",
       legacy(keys=b"\x80\x02](" + U("0") + U("0") + b"e."))
simple("legacy", "key-missing", "a storage the tensors use is missing from the key list",
       "a legacy storage is used but missing from the key list", legacy(keys=b"\x80\x02]."))
simple("legacy", "no-storage-size", "the file ends right after the key list",
       "legacy storage '0' at byte ", legacy(storages=b""))
simple("legacy", "numel-mismatch", "the storage's size field says 5 elements, its persistent id 3",
       "has 5 elements, its persistent id says 3",
       legacy(storages=struct.pack("<q", 5) + F32x3))
simple("legacy", "storage-truncated", "the storage's 12 bytes are cut to 4",
       "legacy storage '0' (12 bytes at byte ", legacy(storages=struct.pack("<q", 3) + F32x3[:4]))
simple("legacy", "storage-numel-2^62", "the persistent id claims 2^62 floats",
       "storage '0' of 4611686018427387904 FloatStorage elements is larger than the file",
       legacy(root=state_dict(("w", tensor(tup(U("storage"), G("torch", "FloatStorage"), U("0"),
                                               U("cpu"), b"\x8a\x08" + struct.pack("<q", 1 << 62),
                                               b"N") + b"Q")))))
simple("legacy", "view-metadata", "a storage view (legacy view_metadata) in the persistent id",
       "storage views (legacy view_metadata) are not supported",
       legacy(root=state_dict(("w", tensor(tup(U("storage"), G("torch", "FloatStorage"), U("0"),
                                               U("cpu"), I(3), tup(U("0"), I(0), I(3))) + b"Q")))))
simple("legacy", "zip-style-persid", "a 5-tuple persistent id (the zip format's) in a legacy file",
       "persistent id is not a 6-tuple", legacy(root=state_dict(("w", tensor(pid())))))
simple("legacy", "root-truncated", "the fourth pickle (the checkpoint) is cut in half",
       "legacy pickle: ", legacy()[:150])

# --- safetensors ---------------------------------------------------------------

simple("safetensors", "header-length-2^62", "the header length field says 2^62 bytes",
       "header length 4611686018427387904 exceeds the limit of 100000000 bytes",
       struct.pack("<Q", 1 << 62) + b"{}")
simple("safetensors", "header-length-2^40", "the header length field says 2^40 bytes",
       "header length 1099511627776 exceeds the limit", struct.pack("<Q", 1 << 40) + b"{}      ")
simple("safetensors", "header-past-end", "a header of 64 bytes in a 20-byte file",
       "header length 64 runs past the end of the file (20 bytes)",
       safetensors(b'{"a":{}}', length=64, pad=False) + b"\0" * 4)
simple("safetensors", "not-json", "a header cut in the middle of an object",
       "header is not valid JSON", safetensors(b'{"a": {"dtype": "F32",', F32x3))
simple("safetensors", "not-utf8", "header bytes ff fe inside a key",
       "header is not valid UTF-8 (byte 10)", safetensors(b'{"\xff\xfe": 1}'))
simple("safetensors", "entry-not-object", "a tensor entry that is a number",
       "tensor 'a': header entry is not a JSON object", safetensors({"a": 5}))
simple("safetensors", "dtype-missing", "a tensor without 'dtype'", "tensor 'a': missing 'dtype'",
       safetensors({"a": {"shape": [3], "data_offsets": [0, 12]}}, F32x3))
simple("safetensors", "dtype-not-string", "'dtype': 32", "tensor 'a': 'dtype' is not a string",
       safetensors({"a": st_entry(dtype=32)}, F32x3))
simple("safetensors", "dtype-unknown", "'dtype': 'F12'", "tensor 'a': unknown dtype 'F12'",
       safetensors({"a": st_entry(dtype="F12")}, F32x3))
simple("safetensors", "shape-missing", "a tensor without 'shape'", "tensor 'a': missing 'shape'",
       safetensors({"a": {"dtype": "F32", "data_offsets": [0, 12]}}, F32x3))
simple("safetensors", "shape-not-list", "'shape': 3", "tensor 'a': 'shape' is not a list",
       safetensors({"a": {"dtype": "F32", "shape": 3, "data_offsets": [0, 12]}}, F32x3))
simple("safetensors", "shape-negative", "'shape': [-3]",
       "tensor 'a': 'shape' holds something other than a non-negative integer",
       safetensors({"a": st_entry(shape=(-3,))}, F32x3))
simple("safetensors", "shape-fraction", "'shape': [1.5]",
       "tensor 'a': 'shape' holds something other than a non-negative integer",
       safetensors({"a": st_entry(shape=(1.5,))}, F32x3))
simple("safetensors", "shape-2^31-squared", "'shape': [2^31, 2^31] over 12 bytes",
       "tensor 'a': the size in bits of f32[2147483648, 2147483648] overflows 64 bits",
       safetensors({"a": st_entry(shape=(1 << 31, 1 << 31))}, F32x3))
simple("safetensors", "shape-overflow", "'shape': [2^32, 2^32, 2^32] (overflows 64 bits)",
       "tensor 'a': the size in bits of f32[4294967296, 4294967296, 4294967296] overflows 64 bits",
       safetensors({"a": st_entry(shape=(1 << 32, 1 << 32, 1 << 32))}, F32x3))
simple("safetensors", "offsets-missing", "a tensor without 'data_offsets'",
       "tensor 'a': missing 'data_offsets'", safetensors({"a": {"dtype": "F32", "shape": [3]}}, F32x3))
simple("safetensors", "offsets-three", "'data_offsets': [0, 4, 12]",
       "tensor 'a': 'data_offsets' is not a pair of non-negative integers",
       safetensors({"a": st_entry(offsets=(0, 4, 12))}, F32x3))
simple("safetensors", "offsets-reversed", "'data_offsets': [12, 0]",
       "tensor 'a': data_offsets [12, 0] end before they begin",
       safetensors({"a": st_entry(offsets=(12, 0))}, F32x3))
simple("safetensors", "offsets-2^63", "'data_offsets': [0, 2^63] for f32[2^61]",
       "tensor 'a': the size in bits of f32[2305843009213693952] overflows 64 bits",
       safetensors({"a": st_entry(shape=(1 << 61,), offsets=(0, 1 << 63))}, F32x3))
simple("safetensors", "offsets-gap", "tensor 'b' starts 4 bytes after 'a' ends",
       "tensor 'b': data_offsets [8, 12] leave a gap of 4 bytes after tensor 'a'",
       safetensors({"a": st_entry(shape=(1,), offsets=(0, 4)), "b": st_entry(shape=(1,), offsets=(8, 12))},
                   F32x3))
simple("safetensors", "offsets-overlap", "tensors 'a' and 'b' share bytes 4..8",
       "data_offsets [4, 12] overlap tensor 'a', which ends at 8",
       safetensors({"a": st_entry(shape=(2,), offsets=(0, 8)), "b": st_entry(shape=(2,), offsets=(4, 12))},
                   F32x3))
simple("safetensors", "trailing-bytes", "12 bytes of data after the last tensor",
       "12 trailing bytes after the last tensor's data",
       safetensors({"a": st_entry()}, F32x3 + F32x3))
simple("safetensors", "duplicate-name", "tensor 'a' twice in the header",
       "tensor 'a': name appears twice in the header",
       safetensors(b'{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, '
                   b'"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}', F32x3))
simple("safetensors", "metadata-not-object", "'__metadata__': [1]",
       "__metadata__ is not a JSON object", safetensors({"__metadata__": [1], "a": st_entry()}, F32x3))
simple("safetensors", "metadata-not-string", "a metadata value that is a number",
       "__metadata__ entry 'epoch' is not a string",
       safetensors({"__metadata__": {"epoch": 3}, "a": st_entry()}, F32x3))
simple("safetensors", "metadata-twice", "two __metadata__ objects",
       "__metadata__ appears twice",
       safetensors(b'{"__metadata__": {}, "__metadata__": {}}'))


# --- .wopt (FlatBuffers) ----------------------------------------------------------

WOPT_BASE = """storage %0 : f32 x 4 = [1.0, 2.0, 3.0, 4.0]
checkpoint odict {
  tensor "a" : f32[2] in %0
  tensor "b" : f32[2] offset 2 in %0
  "n": 3
}
"""


def wopt_case(name, what, expect, *edits):
    def make(ctx):
        return ctx.patch_wopt(ctx.wopt_file(WOPT_BASE), list(edits))
    CASES.append(Case("wopt", name, what, make, expect))


wopt_case("truncated-header", "the first 6 bytes only (too short to be told from text)",
          "not a checkpoint wopt can read (expected", "truncate=6")
wopt_case("truncated-flatbuffer", "cut inside the flatbuffer",
          "the flatbuffer fails verification (corrupt or truncated file)", "truncate=100")
wopt_case("version-3", "schema version 3", "unsupported .wopt version 3", "version=3")
wopt_case("version-2^31", "schema version 2^31",
          "unsupported .wopt version 2147483648", "version=2147483648")
wopt_case("data-start-misaligned", "data section start 65",
          "data section start 65 is not a 64-byte aligned offset inside the file", "data-start=65")
wopt_case("data-start-2^62", "data section start 2^62",
          "data section start 4611686018427387904 is not a 64-byte aligned offset inside the file",
          "data-start=4611686018427387904")
wopt_case("data-start-inside", "data section start 0, inside the flatbuffer",
          "the flatbuffer extends past the data section start 0", "data-start=0")
wopt_case("storage-misaligned", "storage 0 at an odd offset",
          "storage 0: data offset 1 is not 64-byte aligned", "storage-offset=0:1")
wopt_case("storage-inside-flatbuffer", "storage 0 at byte 0",
          "storage 0: data offset 0 lies inside the flatbuffer", "storage-offset=0:0")
wopt_case("storage-size-2^62", "storage 0 claims 2^62 bytes",
          "storage 0: data [", "storage-size=0:4611686018427387904")
wopt_case("storage-offset-2^63", "storage 0 at byte 2^63",
          "storage 0: data [9223372036854775808, +16) runs past the end of the file",
          "storage-offset=0:9223372036854775808")
wopt_case("tensor-storage-index", "a tensor naming storage 7 of 1",
          "refers to storage 7 of 1", "tensor-storage=7")
wopt_case("tensor-storage-negative", "a tensor naming storage -2 (-1 is 'no storage')",
          "refers to storage -2 of 1", "tensor-storage=-2")
wopt_case("tensor-offset-negative", "a tensor view at element -1",
          "tensor has a negative size, stride or offset", "tensor-offset=-1")
wopt_case("tensor-reaches-past", "a tensor view at element 3 of a 4-element storage",
          "reaches past storage 0 (16 bytes)", "tensor-offset=3")
wopt_case("node-unreachable", "the root refers to itself instead of node 1",
          "node 1: is not part of the value graph (not reachable from the root)", "first-child=6")
wopt_case("node-out-of-range", "the root refers to node 99 of 7",
          "node 0: refers to node 99 of 7", "first-child=99")
wopt_case("unknown-kind", "a node of kind 99", "unknown value kind 99", "kind=0:99")
wopt_case("truncated-data", "the last 8 bytes of data cut off",
          "runs past the end of the file", "drop-tail=8")
wopt_case("not-wopt", "the WOPT identifier replaced by WOPS: no reader claims the file",
          "not a checkpoint wopt can read (expected a torch.save zip or legacy file, safetensors, "
          ".wopt, a shard index (.index.json) or .wir text)", "ident=WOPS")

# --- .wir (text IR) -------------------------------------------------------------

WIR = [
    ("unknown-dtype", "an element type 'f31'", "unknown element type 'f31'",
     'checkpoint {\n  tensor "w" : f31[2]\n}\n'),
    ("data-count", "2x2 tensor with 3 values", "expected 4 elements of data, found 3",
     'checkpoint {\n  tensor "w" : f32[2, 2] = [1.0, 2.0, 3.0]\n}\n'),
    ("duplicate-key", "the key 'a' twice", 'duplicate key "a"', 'checkpoint {\n  "a": 1\n  "a": 2\n}\n'),
    ("undeclared-storage", "a tensor in %9, never declared", "use of undeclared storage '%9'",
     'checkpoint {\n  tensor "w" : f32[2] in %9\n}\n'),
    ("storage-twice", "storage %0 declared twice", "storage '%0' is already declared",
     'storage %0 : f32 x 1\nstorage %0 : f32 x 1\ncheckpoint {\n}\n'),
    ("extent-past-storage", "a view past its storage", "tensor extent 12 ",
     'storage %0 : f32 x 2\ncheckpoint {\n  tensor "w" : f32[3] in %0\n}\n'),
    ("extent-overflow", "a shape whose extent overflows 64 bits", "tensor extent overflows 64 bits",
     'storage %0 : f32 x 2\ncheckpoint {\n  tensor "w" : f32[4294967296, 4294967296, 4294967296] in %0\n}\n'),
    ("storage-size-overflow", "a storage of 2^62 f64 elements", "storage size overflows 64 bits",
     'storage %0 : f64 x 4611686018427387904\ncheckpoint {\n}\n'),
    ("integer-too-big", "a dimension of 2^64", "integer does not fit in 64 bits",
     'checkpoint {\n  tensor "w" : f32[18446744073709551616]\n}\n'),
    ("int-out-of-range", "300 as u8 data", "integer 300 is out of range for 'u8'",
     'checkpoint {\n  tensor "w" : u8[1] = [300]\n}\n'),
    ("bool-data", "the value 2 in bool data", "expected true or false",
     'checkpoint {\n  tensor "w" : bool[1] = [2]\n}\n'),
    ("float-data", "a string in f32 data", "expected a floating-point number",
     'checkpoint {\n  tensor "w" : f32[1] = ["x"]\n}\n'),
    ("hex-odd", "hex data with 3 digits", "hex data must have an even number of digits",
     'checkpoint {\n  tensor "w" : u8[1] = x"abc"\n}\n'),
    ("hex-length", "4 hex bytes for a 2-byte tensor", "hex data has 4 bytes",
     'checkpoint {\n  tensor "w" : u8[2] = x"00112233"\n}\n'),
    ("bad-escape", "the escape \\q in a string", "unknown escape '\\q'",
     'checkpoint {\n  "s": "a\\qb"\n}\n'),
    ("short-hex-escape", "\\x followed by one digit", "\\x must be followed by two hex digits",
     'checkpoint {\n  "s": "a\\x4"\n}\n'),
    ("one-tuple", "a parenthesized value without a trailing comma", "a 1-tuple needs a trailing comma",
     'checkpoint {\n  "t": (1)\n}\n'),
    ("unclosed-dict", "the checkpoint's closing brace is missing", "expected '}' before end of file",
     'checkpoint {\n  "a": 1\n'),
    ("trailing-garbage", "text after the checkpoint", "expected end of file after the checkpoint",
     'checkpoint {\n}\nagain\n'),
    ("attribute-twice", "the tensor attribute 'offset' given twice", "tensor attribute 'offset' given twice",
     'storage %0 : f32 x 4\ncheckpoint {\n  tensor "w" : f32[1] offset 1 offset 2 in %0\n}\n'),
    ("strides-count", "2 dimensions, 1 stride", "tensor has 2 dimensions",
     'storage %0 : f32 x 4\ncheckpoint {\n  tensor "w" : f32[2, 2] strides [1] in %0\n}\n'),
    ("negative-offset", "a storage offset of -1", "must not be negative",
     'storage %0 : f32 x 4\ncheckpoint {\n  tensor "w" : f32[1] offset -1 in %0\n}\n'),
    ("unknown-attribute", "a checkpoint attribute 'colour'", "unknown checkpoint attribute 'colour'",
     'checkpoint attributes {colour = "red"} {\n}\n'),
    ("storage-data-count", "a 3-element storage with 2 values", "expected 3 elements of data, found 2",
     'storage %0 : f32 x 3 = [1.0, 2.0]\ncheckpoint {\n}\n'),
    ("storage-bytes-size", "6 bytes of f32 storage given as a list of values",
     "storage of 6 bytes is not a whole number of 'f32' elements",
     'storage %0 : f32 bytes 6 = [1.0]\ncheckpoint {\n}\n'),
]
for name, what, expect, text in WIR:
    simple("wir", name, what, expect, text.encode())

# --- manifests (verify-against-manifest{manifest=...}) ---------------------------

def entry(name="a", dtype="f32", shape=(4,), **extra):
    e = {"name": name, "dtype": dtype, "shape": list(shape)}
    e.update(extra)
    return e


MANIFESTS = [
    ("not-json", "a trailing comma", "invalid JSON", b'{"format": "wopt-manifest", "entries": [],}'),
    ("not-object", "a JSON array at the top", "expected a JSON object at the top level, got [1]", b"[1]"),
    ("format", "'format': 'safetensors'", "'format' is 'safetensors', expected 'wopt-manifest'",
     manifest([], format="safetensors")),
    ("version", "'version': 9", "unsupported manifest version 9", manifest([], version=9)),
    ("no-entries", "no 'entries' field", "missing field 'entries'",
     b'{"format": "wopt-manifest", "version": 1}'),
    ("entries-object", "'entries' is an object", "'entries' must be an array, got {}",
     b'{"format": "wopt-manifest", "version": 1, "entries": {}}'),
    ("entry-not-object", "an entry that is a string", "entry 0", manifest(["a"])),
    ("name-missing", "an entry without 'name'", "entry 0", manifest([{"dtype": "f32", "shape": [4]}])),
    ("name-empty", "'name': ''", "'name' must be a non-empty string", manifest([entry(name="")])),
    ("name-number", "'name': 7", "'name' must be a non-empty string", manifest([entry(name=7)])),
    ("dtype-unknown", "'dtype': 'float31'", "unknown dtype 'float31'", manifest([entry(dtype="float31")])),
    ("shape-number", "'shape': 4", "'shape' must be an array of non-negative integers, got 4",
     manifest([{"name": "a", "dtype": "f32", "shape": 4}])),
    ("shape-negative", "'shape': [-4]", "'shape' dimension 0 must be a non-negative integer, got -4",
     manifest([entry(shape=(-4,))])),
    ("shape-fraction", "'shape': [2.5]", "'shape' dimension 0 must be a non-negative integer, got 2.5",
     manifest([entry(shape=(2.5,))])),
    ("unknown-field", "a field 'optinal'", "unknown field 'optinal'", manifest([entry(optinal=True)])),
    ("optional-string", "'optional': 'yes'", "'optional' must be true or false", manifest([entry(optional="yes")])),
    ("duplicate-name", "the name 'a' twice", "entry 1 ('a'): duplicate name; first listed as entry 0",
     manifest([entry(), entry()])),
    ("not-utf8", "a name with the byte ff", "invalid JSON", b'{"format": "wopt-manifest", "version": 1, '
     b'"entries": [{"name": "\xff", "dtype": "f32", "shape": [4]}]}'),
]
for name, what, expect, data in MANIFESTS:
    simple("manifest", name, what, expect, data)

# --- pipeline text (-pass-pipeline=...) ------------------------------------------

PIPELINES = [
    ("unknown-pass", "a pass that does not exist", "unknown pass or pipeline 'renam'", "renam"),
    ("unknown-option", "an option the pass does not have", "unknown option 'bogus' for pass 'rename'",
     "rename{bogus=1}"),
    ("unclosed-options", "options without their closing brace", "missing '}' to close the options of 'rename'",
     "rename{rule=a=>b"),
    ("empty-element", "two commas in a row", "empty pipeline element", "rename{rule=a=>b},,unwrap"),
    ("trailing-comma", "a comma at the end", "empty pipeline element", "unwrap,"),
    ("no-separator", "two passes separated by a blank", "expected ',' or the end of the pipeline",
     "unwrap rename"),
    ("bad-rule", "a rename rule without '=>'", "rule 'nothing' has no '=>'", "rename{rule=nothing}"),
    ("unterminated-quote", "a quote that never closes", "unterminated quote in the value of 'rule'",
     "rename{rule='abc}"),
    ("unclosed-bracket", "an unbalanced '(' in a bare value", "unclosed '(' in the value of 'rule'",
     "rename{rule=a(b=>c}"),
    ("no-option-name", "'=' where an option name belongs", "expected an option name", "rename{=x}"),
    ("bad-regex", "a rename rule whose regex does not compile", "bad value for option 'rule'",
     "rename{rule='a[=>b'}"),
    ("bad-int", "an int option given 'many'", "bad value for option", "flatten-chunks{chunks=many}"),
    ("bad-bool", "a bool option given 'perhaps'", "bad value for option",
     "verify-against-manifest{manifest=m.json prune-unexpected=perhaps}"),
    ("option-twice", "a (non-list) option given twice", "option 'key' of pass 'unwrap' is given twice",
     "unwrap{key=a key=b}"),
    ("bad-glob", "an allow-missing glob that does not compile", "invalid glob '[a'",
     "verify-against-manifest{manifest=m.json allow-missing='[a'}"),
    ("pipeline-option", "an option a named pipeline does not forward",
     "unknown option 'chunks' for pipeline 'dinov2-eval'", "dinov2-eval{chunks=2}"),
]
for name, what, expect, text in PIPELINES:
    simple("pipeline", name, what, expect, text.encode())


# --- the catalogue as a table, and as a list -------------------------------------

def markdown():
    counts = collections.Counter(c.reader for c in CASES)
    lines = ["%d cases: %s." % (len(CASES), ", ".join("%s %d" % (r, counts[r]) for r in READERS)),
             "", "| reader | case | input | the error says |", "|---|---|---|---|"]
    for c in CASES:
        lines.append("| %s | `%s` | %s | %s |" % (c.reader, c.name, c.what.replace("|", "\\|"),
                                                 "`" + c.expect.replace("|", "\\|").replace("`", "'") + "`"))
    return "\n".join(lines) + "\n"


def main(argv):
    names = [c.reader + "/" + c.name for c in CASES]
    dup = [n for n in names if names.count(n) > 1]
    if dup:
        sys.exit("duplicate case names: %s" % sorted(set(dup)))
    if argv[1:] == ["--list"]:
        print("\n".join(names))
    elif argv[1:] == ["--markdown"]:
        sys.stdout.write(markdown())
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
