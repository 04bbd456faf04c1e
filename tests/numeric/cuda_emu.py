"""Build and launch CUDA source on the host through ``cuda_emu.h`` (tests only).

:func:`build` compiles CUDA source text, unchanged, after ``cuda_emu.h`` with ``g++ -std=c++20
-pthread`` into a shared object (cached on disk under :func:`numeric.codegen.cache_dir`, keyed
by the source, the header, the flags and the compiler; atomic rename) and returns an
:class:`EmuModule`. :meth:`EmuModule.launch` takes its arguments the way ``cupy.RawKernel``
does — arrays (by pointer), ``None`` (a NULL pointer), numpy scalars (by value), Python
``int``/``float`` (as int64/float64) — and checks each one against the kernel's parameter
list parsed from the source, so a launcher that passes a float64 where the kernel takes a
``float`` fails here instead of reading garbage on a device.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HEADER = Path(__file__).with_name("cuda_emu.h")
SELFTEST = Path(__file__).with_name("cuda_emu_selftest.cu")
FLAGS = ("-std=c++20", "-pthread", "-O0", "-shared", "-fPIC", "-fno-fast-math",
         "-ffp-contract=off", "-w")

_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')

#: C scalar type of a kernel parameter → numpy type cupy passes for it.
_SCALARS = {
    "long long": np.int64, "long long int": np.int64, "int": np.int32, "unsigned": np.uint32,
    "unsigned int": np.uint32, "float": np.float32, "double": np.float64,
    "unsigned char": np.uint8, "char": np.int8, "bool": np.bool_,
    "unsigned long long": np.uint64, "short": np.int16, "unsigned short": np.uint16,
}


def find_gxx() -> str | None:
    """``g++`` (``$CXX`` if set), or None."""
    return os.environ.get("CXX") or shutil.which("g++")


def kernel_signatures(source: str) -> dict[str, list[tuple[str, str]]]:
    """Kernel name → ``[(kind, ctype)]`` with kind ``"pointer"`` or ``"scalar"``."""
    out = {}
    for name, params in _KERNEL.findall(source):
        sig = []
        for param in params.split(","):
            text = " ".join(param.replace("__restrict__", " ").split())
            if "*" in text:
                sig.append(("pointer", text.split("*")[0].replace("const", "").strip()))
                continue
            ctype = " ".join(text.replace("const ", "").split()[:-1])
            if ctype not in _SCALARS:
                raise ValueError(f"{name}: parameter {param.strip()!r} has a type the emulator "
                                 "does not marshal")
            sig.append(("scalar", ctype))
        out[name] = sig
    return out


class EmuModule:
    """A compiled emulation library: ``launch(name, grid, block, args)``."""

    def __init__(self, path: Path, source: str):
        self.path = path
        self.signatures = kernel_signatures(source)
        self._lib = ctypes.CDLL(str(path))

    def launch(self, name: str, grid, block, args) -> None:
        """Run kernel ``name`` on a host-emulated device (blocks in turn, threads parallel)."""
        if name not in self.signatures:
            raise KeyError(f"no kernel {name!r} in this module: {sorted(self.signatures)}")
        sig = self.signatures[name]
        if len(args) != len(sig):
            raise TypeError(f"{name} takes {len(sig)} arguments, got {len(args)}")
        grid = tuple(grid) + (1,) * (3 - len(tuple(grid)))
        block = tuple(block) + (1,) * (3 - len(tuple(block)))
        keep = []
        ptrs = (ctypes.c_void_p * len(sig))()
        for i, ((kind, ctype), arg) in enumerate(zip(sig, args, strict=True)):
            if kind == "pointer":
                if arg is None:
                    box = ctypes.c_void_p(None)
                elif isinstance(arg, np.ndarray):
                    if not arg.flags.c_contiguous:
                        raise ValueError(f"{name}: argument {i} is not C-contiguous")
                    box = ctypes.c_void_p(arg.ctypes.data)
                else:
                    raise TypeError(f"{name}: argument {i} ({ctype} *) must be an array or None, "
                                    f"got {type(arg).__name__}")
            else:
                if type(arg) is int:
                    arg = np.int64(arg)
                elif type(arg) is float:
                    arg = np.float64(arg)
                want = _SCALARS[ctype]
                if not isinstance(arg, np.generic) or arg.dtype != np.dtype(want):
                    raise TypeError(f"{name}: argument {i} is a {ctype} ({np.dtype(want)}), got "
                                    f"{type(arg).__name__} {getattr(arg, 'dtype', '')}".rstrip())
                box = np.array(arg, dtype=want)
            keep.append(box)
            ptrs[i] = box.ctypes.data if isinstance(box, np.ndarray) else ctypes.addressof(box)
        fn = getattr(self._lib, f"dk_emu_launch_{name}")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_void_p]
        rc = fn(*grid, *block, ptrs)
        if rc != 0:
            raise RuntimeError(f"{name}: emulated launch failed (code {rc}), grid {grid} block {block}")


_loaded: dict[str, EmuModule] = {}


def build(source: str) -> EmuModule:
    """Compile CUDA ``source`` (unchanged) with the emulation header; cached."""
    from numeric.codegen import cache_dir

    gxx = find_gxx()
    if gxx is None:
        raise RuntimeError("g++ not found")
    names = list(dict.fromkeys(n for n, _ in _KERNEL.findall(source)))
    unit = (f'#include "{HEADER}"\n' + source + "\n"
            + "".join(f"DK_EMU_EXPORT({n})\n" for n in names))
    version = subprocess.run([gxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([HEADER.read_text(), unit, " ".join(FLAGS), version])
                         .encode()).hexdigest()[:32]
    if key in _loaded:
        return _loaded[key]
    target = cache_dir() / f"cuda-emu-{key}.so"
    if not target.exists():
        with tempfile.TemporaryDirectory(prefix="divkit-emu-") as tmp:
            src = Path(tmp) / "unit.cpp"
            src.write_text(unit)
            out = Path(tmp) / "unit.so"
            proc = subprocess.run([gxx, *FLAGS, "-o", str(out), str(src)], capture_output=True,
                                  text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"g++ failed on the emulated CUDA source:\n{proc.stderr[-4000:]}")
            part = target.with_suffix(f".{os.getpid()}.part")
            shutil.copyfile(out, part)
            os.replace(part, target)
    mod = EmuModule(target, source)
    _loaded[key] = mod
    return mod


def suite_source() -> str:
    """The generated catalog kernels (every catalog f at its defaults, both dtypes) and the
    header's self-test kernels, as one translation unit."""
    from numeric._cuda_sources import catalog_sources

    sources = catalog_sources()
    cu = [sources[k] for k in sorted(sources) if k.endswith(".cu")]
    return "\n".join([*cu, SELFTEST.read_text()])


def suite_module() -> EmuModule:
    """:func:`build` of :func:`suite_source`: one compile for the tests that use either part."""
    return build(suite_source())
