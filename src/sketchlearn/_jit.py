"""Numba, set up once for every ``_numba`` module: ``from .._jit import njit``, and the
helpers they share (``FASTMATH``, ``exp_for_sums``).

Compiled kernels are cached on disk (``@njit(cache=True)``), so only the first call on a
machine pays for compilation. Numba writes the cache next to the sources, or, where the
installed package is read-only (system site-packages, containers), in the user's cache
directory (``~/.cache/numba``). Where neither can be written, Numba would refuse to
decorate a cached function at all; this module then points it at a per-user directory
under the system's temporary directory. ``NUMBA_CACHE_DIR`` set by the user always wins.
"""

from __future__ import annotations

import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _writable(path: Path) -> bool:
    """Whether files can be created in ``path`` (made if missing), as Numba checks it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def user_cache_dir() -> Path:
    """Numba's user-wide cache directory (its ``UserWideCacheLocator``), on Linux and macOS
    ``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba`` / ``~/Library/Caches/numba``."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "numba" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "numba"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"


def fallback_cache_dir(environ=None, writable=None) -> str | None:
    """The cache directory to hand Numba, or None where Numba finds a writable one itself."""
    environ = os.environ if environ is None else environ
    writable = _writable if writable is None else writable
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    if writable(PACKAGE_DIR / "kernels" / "__pycache__") or writable(user_cache_dir()):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    fallback = Path(tempfile.gettempdir()) / f"sketchlearn-numba-cache-{uid}"
    if writable(fallback):
        return str(fallback)
    return tempfile.mkdtemp(prefix="sketchlearn-numba-cache-")  # this process only


def _configure_cache() -> None:
    path = fallback_cache_dir()
    if path is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = path
    if "numba" in sys.modules:  # numba read its environment already
        from numba.core import config

        config.CACHE_DIR = path


def is_cached(dispatcher) -> bool:
    """Whether Numba's disk cache has compiled code for ``dispatcher`` (False if unknown)."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # a Numba whose cache internals differ
        return False


_configure_cache()

from llvmlite import ir as llvm_ir  # noqa: E402
from numba import config as numba_config  # noqa: E402  (after the cache location is set)
from numba import get_num_threads, njit, set_num_threads, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

# Fast-math without nnan/ninf, so NaN and infinity keep their meaning; the one set every
# Numba kernel uses.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Below this exponent the sums' exponential returns 0 (e^-700 < 1e-304).
SUM_EXP_FLOOR = -700.0
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 to 32 bits: n * _LN2_HI is exact for |n| < 2^20
_LN2_LO = 1.9082149292705877e-10  # ln 2 - _LN2_HI
_ROUND_SHIFT = 6755399441055744.0  # 1.5 * 2^52: y + it - it rounds y to an integer


@intrinsic
def _int_bits_as_float(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits`` (a register bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _float_bits_as_int(typingctx, value):
    """The int64 whose bit pattern is the float64 ``value`` (a register bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))

    return types.int64(types.float64), codegen


# Compiled without "reassoc" (which would fold the two-part ln 2 back into one) and
# inlined by LLVM, which keeps these flags on its instructions.
@njit(cache=True, fastmath={"contract", "nsz"})
def exp_for_sums(x):
    """exp(x) for x <= 0 in plain arithmetic, so loops over it vectorise.

    x = n ln 2 + r with |r| <= ln(2) / 2 (ln 2 split in two, Cody-Waite), exp(r) by its
    degree-11 Taylor polynomial in Estrin's scheme (short dependency chains), and 2^n
    set in the exponent bits: relative error below 1e-14 on [-700, 0] (below 2e-15
    on [-40, 0]); 0 below -700. math.exp is a scalar library call here (about 7x
    slower) because Numba's pip wheels have no vector math library.

    n is rounded by adding and subtracting 1.5 * 2^52 (exact for |n| < 2^51; ties go
    to even instead of up, which changes nothing but which of two equally good
    reductions is used), and the low bits of the shifted sum are n itself: two
    additions instead of a round and two conversions between float and integer
    (8% faster per kernel evaluation at d = 2).
    """
    y = max(x, SUM_EXP_FLOOR)
    shifted = y * _LOG2E + _ROUND_SHIFT
    n = shifted - _ROUND_SHIFT
    r = (y - n * _LN2_HI) - n * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    p = ((1.0 + r) + r2 * (1 / 2 + r * (1 / 6))) + r4 * (
        (1 / 24 + r * (1 / 120)) + r2 * (1 / 720 + r * (1 / 5040))) + (r4 * r4) * (
        (1 / 40320 + r * (1 / 362880)) + r2 * (1 / 3628800 + r * (1 / 39916800))
        + r4 * (1 / 479001600))
    # bits(shifted) = bits(1.5 * 2^52) + n as integers, and bits(1.5 * 2^52) is a
    # multiple of 2^12: shifting by 52 keeps the low 12 bits of n + 1023, the biased
    # exponent of 2^n (-1010 <= n <= 0).
    scale = _int_bits_as_float((_float_bits_as_int(shifted) + 1023) << 52)
    return p * scale if x >= SUM_EXP_FLOOR else 0.0


@njit(cache=True)
def is_finite(x):
    """``math.isfinite(x)`` that fast-math cannot remove: Numba tests ``x - x == 0``,
    which LLVM folds to true under "reassoc" with "nsz" (so an overflowing iterate went
    unseen); here the exponent bits are tested, integer work no flag can fold."""
    return (_float_bits_as_int(x) >> 52) & 0x7FF != 0x7FF


# LLVM's prefetch intrinsic is overloaded on its pointer type, and its name says which:
# "p0" where llvmlite writes opaque pointers ("ptr"), "p0i8" where it writes typed ones.
_I8_POINTER = llvm_ir.IntType(8).as_pointer()
_PREFETCH = "llvm.prefetch.p0" if str(_I8_POINTER) == "ptr" else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, array, row, col):
    """Ask the CPU to start loading ``array[row, col]`` (a 2-D array) into its caches, for
    reading, without waiting for it: a hint with no effect on results. For loops that
    gather rows at random (``V[indices[q]]``): prefetching the row some entries ahead
    (16 in completion's CG) overlaps its cache misses with the work on the current one.
    No bounds check: ``row`` and ``col`` must be valid indices."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None

    def codegen(context, builder, signature, args):
        array_type, row_type, col_type = signature.args
        ary = context.make_array(array_type)(context, builder, args[0])
        index = [context.cast(builder, args[1], row_type, types.intp),
                 context.cast(builder, args[2], col_type, types.intp)]
        pointer = cgutils.get_item_pointer2(
            context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides), layout=array_type.layout,
            inds=index, wraparound=False, boundscheck=False)
        i32 = llvm_ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, llvm_ir.FunctionType(llvm_ir.VoidType(), [_I8_POINTER, i32, i32, i32]),
            _PREFETCH)
        # (address, 0 = read, 3 = keep in all cache levels, 1 = data cache)
        builder.call(function, [builder.bitcast(pointer, _I8_POINTER), llvm_ir.Constant(i32, 0),
                                llvm_ir.Constant(i32, 3), llvm_ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


# Blocks of at most this much work (elements, or multiply-adds) run on the calling
# thread: starting a pool of threads costs about 0.2 ms.
SERIAL_WORK = 2**18


def on_row_blocks(part, n_rows, work, serial_work=SERIAL_WORK):
    """Call ``part(lo, hi)`` on consecutive row blocks covering ``range(n_rows)``, one
    block per Numba thread, on a short-lived pool of Python threads (on the calling
    thread alone when ``work`` is at most ``serial_work``). ``part`` must release the
    GIL: a ``nogil`` Numba kernel, or a NumPy / BLAS call.

    For kernels that run between BLAS products: Numba's OpenMP threads keep spinning for
    milliseconds after a ``prange`` region ends, as OpenBLAS's threads do after a
    product, and each side's spinning threads take the cores from the other (a BLAS
    matrix-vector product that follows a parallel Numba region at once ran 5x slower,
    on 2 cores). Pool threads sleep as soon as their block is done.
    """
    parts = max(1, min(n_rows, get_num_threads()))
    if parts == 1 or work <= serial_work:
        part(0, n_rows)
        return
    bounds = [n_rows * k // parts for k in range(parts + 1)]
    with ThreadPoolExecutor(parts) as pool:
        list(pool.map(lambda k: part(bounds[k], bounds[k + 1]), range(parts)))


@contextmanager
def task_threads():
    """Numba threads for the kernels of a Dask task: as many as the process lets OpenMP
    use (``OMP_NUM_THREADS``), on the calling thread only; unchanged where it is unset.
    A context manager, or a decorator of a task function (``@task_threads()``).

    distributed's nanny starts every worker with ``OMP_NUM_THREADS=1`` (and MKL's and
    OpenBLAS's), so that a worker's task threads, not the libraries inside a task, share
    the cores. Numba does not read that variable: each task's kernels would start a
    thread per core, on every worker at once. On 2 cores with 2 workers, one kernel
    thread per task made ALS's half-steps 20% faster (26.4 against 33.2 worker-seconds
    over 4 sweeps at 1e6 x 1e5).
    """
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if not limit.strip().isdigit() or int(limit) < 1:
        yield
        return
    before = get_num_threads()
    set_num_threads(min(int(limit), numba_config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        set_num_threads(before)


__all__ = ["FASTMATH", "SERIAL_WORK", "exp_for_sums", "is_cached", "is_finite", "njit",
           "on_row_blocks", "prefetch", "task_threads"]
