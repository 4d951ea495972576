"""Fixtures for the cast pass, and the check that its output has exactly
the bits torch's tensor.to(dtype) gives.

usage: make_cast_cases.py make OUT.pth
           every f16 and bf16 bit pattern (65536 each), f32 and f64 edge
           values (zeros, infinities, NaNs with payloads and signs,
           subnormals, ties at every exponent for each narrower type, the
           f16/bf16 overflow boundaries) and random bit patterns; a
           transposed view, a view at a storage offset, an int tensor.
       make_cast_cases.py make-target IN.pth TARGET.pth
           IN's tensors in other float dtypes, one per key (the state dict
           of a model that wants them so).
       make_cast_cases.py check IN.pth OUT.pth DTYPE [GLOB]
           OUT must be IN with every float tensor (matching GLOB, fnmatch)
           cast to DTYPE (f16|bf16|f32|f64) as torch casts it, bit for bit,
           and everything else unchanged. Prints one line per key.
       make_cast_cases.py check-target IN.pth OUT.pth TARGET.pth
           as check, each key cast to the dtype TARGET has for it.
"""
import fnmatch
import sys

import torch

DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16,
          "f32": torch.float32, "f64": torch.float64}
INT_OF = {torch.float16: torch.int16, torch.bfloat16: torch.int16,
          torch.float32: torch.int32, torch.float64: torch.int64}


def bits(t, width):
    """A tensor of the given int dtype from Python ints (two's complement)."""
    lim = 1 << (width - 1)
    return [x - (1 << width) if x >= lim else x for x in t]


def edges(mant_bits, exp_bits, lows, rng, count):
    """Bit patterns: every exponent and sign with each low pattern, plus
    count random ones."""
    out = []
    for sign in (0, 1):
        for e in range(1 << exp_bits):
            for low in lows:
                out.append((sign << (mant_bits + exp_bits))
                           | (e << mant_bits) | (low & ((1 << mant_bits) - 1)))
    width = mant_bits + exp_bits + 1
    out += torch.randint(0, 1 << 62, (count,), generator=rng).tolist()
    return [x & ((1 << width) - 1) for x in out]


def make(path):
    rng = torch.Generator().manual_seed(7)
    h = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    # Ties and neighbours for f16 (13 low bits), bf16 (16) and f64 -> f32
    # (29), with the kept LSB both even and odd.
    f32_lows = [0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x7FFF,
                0x8000, 0x8001, 0x18000, 0x10000, 0x7FFFFF, 0x400000,
                0x400001, 0x7FF000, 0x7FE000, 0x3FFFFF]
    f32 = edges(23, 8, f32_lows, rng, 1 << 16)
    f32 += [0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x7F7FFFFF,
            0x7F7F8000, 0x7F7F7FFF, 0x33800000, 0x33000000, 0x33000001,
            0x387FE000, 0x387FF000, 0x38800000]
    f64_lows = [0, 1, 0xFFFFFFF, 0x10000000, 0x10000001, 0x1FFFFFFF,
                0x20000000, 0x30000000, 0x2000000000, 0x1000000000,
                0x1000000001, 0x3000000000, 0x200000000000,
                0x100000000000, 0x100000000001, 0x8000000000000,
                0x8000000000001, 0xFFFFFFFFFFFFF, 0x10000010000000]
    f64 = edges(52, 11, f64_lows, rng, 1 << 16)
    sd = {
        "h": h.view(torch.float16),
        "b": h.clone().view(torch.bfloat16),
        "f": torch.tensor(bits(f32, 32), dtype=torch.int32)
                  .view(torch.float32),
        "d": torch.tensor(bits(f64, 64), dtype=torch.int64)
                  .view(torch.float64),
        "idx": torch.arange(10),
    }
    grid = torch.randn(48, 40, generator=rng).to(torch.float64)
    sd["layer.t"] = grid.t()                 # non-contiguous view
    base = torch.randn(1000, generator=rng)
    sd["layer.off"] = base[37:937].view(30, 30)  # storage offset
    # NaNs in f64 views: torch's f64 -> bf16 NaN depends on where in its
    # loop an element falls (a dense transpose is one run, a slice a run
    # per row).
    nan = torch.full((37, 21), float("nan"), dtype=torch.float64)
    nan[::3] = 1.5
    sd["layer.nan_t"] = nan.t()
    sd["layer.nan_rows"] = torch.full((20, 40), -float("nan"),
                                      dtype=torch.float64)[:, 3:38]
    sd["layer.half"] = torch.randn(64, 8, generator=rng).to(torch.float16)
    torch.save(sd, path)


TARGET_DTYPES = {"h": torch.float32, "b": torch.float16, "f": torch.bfloat16,
                 "d": torch.float32, "layer.t": torch.float16,
                 "layer.off": torch.float64, "layer.nan_t": torch.bfloat16}


def make_target(inp, path):
    src = torch.load(inp)
    torch.save({k: v.to(TARGET_DTYPES.get(k, v.dtype)) for k, v in src.items()},
               path)


def same_bits(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    ia = a.contiguous().view(INT_OF[a.dtype])
    ib = b.contiguous().view(INT_OF[b.dtype])
    return torch.equal(ia, ib)


def check(inp, out, want_of):
    # One thread: how torch splits a tensor among threads decides which of
    # two NaN encodings f64 -> bf16 writes (see passes/Cast.cpp).
    torch.set_num_threads(1)
    src = torch.load(inp)
    res = torch.load(out, weights_only=True)
    ok = list(res) == list(src)
    for k, v in src.items():
        want = want_of(k, v)
        ref = v.to(want) if want is not None else v
        r = res.get(k)
        good = r is not None and (same_bits(r, ref) if v.is_floating_point()
                                  else torch.equal(r, ref))
        ok = ok and good
        diff = ""
        if not good and r is not None and r.dtype == ref.dtype:
            bad = (r.contiguous().view(INT_OF.get(r.dtype, r.dtype))
                   != ref.contiguous().view(INT_OF.get(r.dtype, r.dtype)))
            i = bad.flatten().nonzero()[:3].flatten().tolist()
            it = INT_OF[r.dtype]
            diff = " first differing at %s: %s vs %s" % (
                i, r.contiguous().view(it).flatten()[i].tolist(),
                ref.contiguous().view(it).flatten()[i].tolist())
        print("%s: %s %s %s%s" % (k, str(v.dtype)[6:], str(ref.dtype)[6:],
                                  "bit-identical" if good else "DIFFERENT",
                                  diff))
    print("all bit-identical to torch: %s" % ok)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "make":
        make(sys.argv[2])
    elif mode == "make-target":
        make_target(sys.argv[2], sys.argv[3])
    elif mode == "check":
        dt = DTYPES[sys.argv[4]]
        glob = sys.argv[5] if len(sys.argv) > 5 else "*"
        check(sys.argv[2], sys.argv[3],
              lambda k, v: dt if v.is_floating_point()
              and fnmatch.fnmatchcase(k, glob) else None)
    elif mode == "check-target":
        tgt = torch.load(sys.argv[4])
        check(sys.argv[2], sys.argv[3],
              lambda k, v: tgt[k].dtype if v.is_floating_point()
              and k in tgt and tgt[k].is_floating_point() else None)
    else:
        sys.exit("unknown mode " + mode)
