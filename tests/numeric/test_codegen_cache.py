"""On-disk cache of generated code: location, atomic writes, corrupt entries, headers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import sympy

from numeric import codegen
from numeric.codegen import _cache, _runtime

x, y = sympy.symbols("x y", real=True)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("DIVKIT_CACHE_DIR", str(root))
    _runtime._numpy_memo.clear()
    _runtime._lib_memo.clear()
    yield root / f"codegen-v{codegen.CODEGEN_VERSION}"
    _runtime._numpy_memo.clear()
    _runtime._lib_memo.clear()


def test_cache_dir_follows_the_environment(cache, monkeypatch, tmp_path):
    assert codegen.cache_dir() == cache
    monkeypatch.delenv("DIVKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert codegen.cache_dir() == tmp_path / "xdg" / "divkit" / cache.name
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert codegen.cache_dir() == tmp_path / "home" / ".cache" / "divkit" / cache.name


def test_header_names_expression_hash_and_versions(cache):
    expr = sympy.log(1 + x) * y
    for target in ("numpy", "c", "cuda"):
        text = codegen.source(expr, target=target, dtype="float32")
        comment = "#" if target == "numpy" else "//"
        head = [line for line in text.splitlines() if line.startswith(comment)]
        joined = "\n".join(head)
        assert f"sympy {sympy.__version__}" in joined
        assert f"codegen version: {codegen.CODEGEN_VERSION}" in joined
        assert f"expression hash: sha256:{codegen.expression_hash(expr)}" in joined
        assert f"out0 = {sympy.sstr(expr)}" in joined
        assert "out0 (rewritten) = xlog1py(y, x)" in joined
        assert f"target: {target}; dtype: float32" in joined


def test_expression_hash_is_stable_and_discriminating():
    h = codegen.expression_hash(sympy.exp(x) - 1)
    assert h == codegen.expression_hash(sympy.exp(x) - 1)
    assert len(h) == 64 and int(h, 16) >= 0
    assert h != codegen.expression_hash(sympy.exp(y) - 1)
    pos = sympy.Symbol("x", positive=True)
    assert h != codegen.expression_hash(sympy.exp(pos) - 1)  # assumptions count
    assert codegen.expression_hash((x, y)) != codegen.expression_hash((y, x))
    assert codegen.expression_hash(x + y, [x, y]) != codegen.expression_hash(x + y, [y, x])


def test_cache_keys_depend_on_target_dtype_and_version(monkeypatch):
    keys = {_cache.cache_key(t, d, "h") for t in ("numpy", "c") for d in ("float32", "float64")}
    assert len(keys) == 4
    before = _cache.cache_key("c", "float32", "h")
    monkeypatch.setattr(_cache, "CODEGEN_VERSION", "999")
    assert _cache.cache_key("c", "float32", "h") != before


def test_numpy_function_writes_one_checksummed_entry(cache):
    fn = codegen.numpy_function(sympy.exp(x) - 1, [x])
    entries = sorted(cache.glob("*.py"))
    assert len(entries) == 1
    first = entries[0].read_text().splitlines()[0]
    assert first.startswith("# divkit-cache sha256=")
    assert _cache.read_text(entries[0]) == fn.source
    assert not list(cache.glob(".*.tmp"))
    # a second call (fresh process memo) reads the entry instead of regenerating
    _runtime._numpy_memo.clear()
    mtime = entries[0].stat().st_mtime_ns
    again = codegen.numpy_function(sympy.exp(x) - 1, [x])
    assert entries[0].stat().st_mtime_ns == mtime
    assert float(again(np.array(1e-20))) == 1e-20


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_numpy_entry_is_rebuilt(cache, damage):
    fn = codegen.numpy_function(sympy.log(1 + x), [x])
    (entry,) = cache.glob("*.py")
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        i = len(data) - 10
        entry.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
    elif damage == "garbage":
        entry.write_bytes(b"import os; os._exit(3)\n")
    else:
        entry.write_bytes(b"")
    assert _cache.read_text(entry) is None
    _runtime._numpy_memo.clear()
    rebuilt = codegen.numpy_function(sympy.log(1 + x), [x])
    assert _cache.read_text(entry) == fn.source == rebuilt.source
    assert float(rebuilt(np.array(1e-20))) == 1e-20


def test_corrupt_shared_object_is_rebuilt(cache):
    if codegen.find_cc() is None:
        pytest.skip("no C compiler on this machine")
    fn = codegen.c_function(sympy.exp(x) - 1, [x])
    (so,) = cache.glob("*.so")
    good = so.read_bytes()
    # damage it as a crashed writer or a bad disk would: a new, truncated file under the
    # name (the mapping of the already loaded library keeps the old inode)
    damaged = so.with_name("damaged.tmp")
    damaged.write_bytes(good[: len(good) // 3])
    os.replace(damaged, so)
    assert _cache.read_bytes(so) is None
    _runtime._lib_memo.clear()
    again = codegen.c_function(sympy.exp(x) - 1, [x])
    assert so.read_bytes() == good  # recompiled (the compiler is deterministic here)
    assert _cache.read_bytes(so) == good
    assert float(again(np.array([1e-20]))[0]) == 1e-20
    assert float(fn(np.array([1e-20]))[0]) == 1e-20
    # a missing sidecar also counts as corrupt
    os.unlink(str(so) + ".sha256")
    assert _cache.read_bytes(so) is None


def test_atomic_write_leaves_old_entry_on_failure(cache, monkeypatch):
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "entry.py"
    _cache.write_text(path, "old = 1\n")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(_cache.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        _cache.write_text(path, "new = 2\n")
    monkeypatch.undo()
    assert _cache.read_text(path) == "old = 1\n"
    assert [p.name for p in cache.iterdir()] == ["entry.py"]  # no temporary left behind


def test_atomic_write_is_never_seen_half_written(cache, monkeypatch):
    """Until os.replace runs, the destination holds the old entry, complete."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "entry.c"
    _cache.write_text(path, "// old\n", comment="//")
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(_cache.read_text(path))
        assert _cache.read_text(src) == "// new, longer than the old one\n"
        real_replace(src, dst)

    monkeypatch.setattr(_cache.os, "replace", spy)
    _cache.write_text(path, "// new, longer than the old one\n", comment="//")
    assert seen == ["// old\n"]
    assert _cache.read_text(path) == "// new, longer than the old one\n"


def test_cached_text_builds_once(cache):
    cache.mkdir(parents=True, exist_ok=True)
    calls = []

    def build():
        calls.append(1)
        return "value = 1\n"

    path = cache / "k.py"
    assert _cache.cached_text(path, build) == "value = 1\n"
    assert _cache.cached_text(path, build) == "value = 1\n"
    assert len(calls) == 1
    path.write_text("# divkit-cache sha256=00 bytes=10\nvalue = 1\n")
    assert _cache.cached_text(path, build) == "value = 1\n"
    assert len(calls) == 2


def test_unusable_cache_location_falls_back(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DIVKIT_CACHE_DIR", str(blocker / "cache"))
    _runtime._numpy_memo.clear()
    fallback = codegen.cache_dir()
    assert fallback.is_dir() and not str(fallback).startswith(str(blocker))
    fn = codegen.numpy_function(sympy.log(1 + y), [y])
    assert float(fn(np.array(1e-20))) == 1e-20
    _runtime._numpy_memo.clear()
