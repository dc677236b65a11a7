"""Every CUDA source the CuPy modules compile, compiled for sm_90 without a GPU.

Each module that compiles CUDA code lists it in ``cuda_sources()`` and builds its
``RawModule`` from that list, so this checks what runs. Every record goes through
NVRTC as CuPy's ``RawModule`` hands it over (CuPy's own option assembly and headers,
then the options CuPy adds on the way to NVRTC, ``-arch=sm_90``: a cubin) twice: with
the CUDA toolkit's include directory on the include path, and without it, which is
what a user who installed CuPy from pip alone has (a source that includes a toolkit
header such as ``<math_constants.h>`` fails there). NVRTC's own ptxas reports the
resources (``--ptxas-options=-v``): registers (allocated by 8) x the module's block
size must fit a block's 64 Ki registers, static shared memory 48 KiB, and nothing may
spill.

Needs the ``cuda-check`` extra (CuPy and NVRTC from pip) and a CUDA toolkit's
headers; without them these tests skip, unless ``SKETCHLEARN_REQUIRE_CUDA_CHECK=1``
(CI), where a missing tool fails.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import re
import shutil
from pathlib import Path

import pytest

import sketchlearn

# Modules that compile CUDA source and the call that builds each of their modules
# (the lru-cached builders, called unwrapped here to see which records they compile).
COMPILING = {
    "sketchlearn.completion._cupy": [("_module", ())],
    "sketchlearn.kernels._cupy": [("_module", ())],
    "sketchlearn.linear_model._cupy": [("_module", ())],
    "sketchlearn.thinning._cupy": [("_module", ())],
    "sketchlearn.transport._cupy_sinkhorn": [("_module", ())],
}
# CuPy modules that compile no CUDA source of their own, and why.
NO_SOURCE = {
    "sketchlearn.sketching._cupy": "cupyx.scatter_add and cupyx.scipy.fft only",
    "sketchlearn.transport._cupy_sliced": (
        "one cupy.ReductionKernel: CuPy writes its source from a float64 expression "
        "(fabs, pow), which can name no header"
    ),
}

ARCH = "sm_90"
MAX_REGISTERS_PER_BLOCK = 65536
MAX_STATIC_SHARED = 48 * 1024
REQUIRE = os.environ.get("SKETCHLEARN_REQUIRE_CUDA_CHECK", "") not in ("", "0")


def _missing(reason):
    if REQUIRE:
        pytest.fail(f"SKETCHLEARN_REQUIRE_CUDA_CHECK is set, but {reason}")
    pytest.skip(reason)


def _records():
    out = []
    for name in COMPILING:
        for record in importlib.import_module(name).cuda_sources():
            out.append(pytest.param(record, id=record.label))
    return out


# ----------------------------------------------------------------- what the modules expose


def test_every_cupy_module_is_listed():
    # A new CuPy module is either checked below or says why it compiles nothing.
    root = Path(sketchlearn.__file__).parent
    found = {
        "sketchlearn." + ".".join(p.relative_to(root).with_suffix("").parts): p
        for p in root.rglob("_cupy*.py")
    }
    assert set(found) == set(COMPILING) | set(NO_SOURCE)
    for name in NO_SOURCE:  # read, not imported: these import CuPy
        text = found[name].read_text()
        assert "RawModule" not in text and "RawKernel" not in text, name


def test_records_are_well_formed():
    labels = []
    for name in COMPILING:
        mod = importlib.import_module(name)
        for record in mod.cuda_sources():
            labels.append(record.label)
            assert record.code.strip() and isinstance(record.options, tuple)
            assert isinstance(record.name_expressions, tuple)
            assert record.threads == mod._THREADS, record.label
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("name", sorted(COMPILING))
def test_modules_compile_exactly_their_records(name, monkeypatch):
    # Each module builds its RawModules through _cuda.compile_source from its own
    # records, and every record is built by some call: the check below compiles what
    # runs.
    import sketchlearn._cuda

    mod = importlib.import_module(name)
    built = []
    monkeypatch.setattr(sketchlearn._cuda, "compile_source",
                        lambda record: built.append(record) or record)
    for builder, args in COMPILING[name]:
        getattr(mod, builder).__wrapped__(*args)
    assert built == mod.cuda_sources()


# ----------------------------------------------------------------- NVRTC and ptxas


def _toolkit_include():
    """The CUDA toolkit's include directory ($CUDA_PATH, $CUDA_HOME, /usr/local/cuda,
    or beside the ``nvcc`` on PATH), or None."""
    roots = [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"]
    if nvcc := shutil.which("nvcc"):
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for root in filter(None, roots):
        include = os.path.join(root, "include")
        if os.path.isfile(os.path.join(include, "math_constants.h")):
            return os.path.realpath(include)
    return None


@functools.cache
def _toolchain():
    """(CuPy's compiler module, its option assembly, CuPy's package dir, the toolkit's
    include dir), or the reason one is missing."""
    try:
        import cupy
        from cupy._core.core import assemble_cupy_compiler_options
        from cupy.cuda import compiler
    except Exception as exc:  # ImportError, or a CuPy that cannot load its libraries
        return f"CuPy is not importable ({exc!r}); install the cuda-check extra"
    if not hasattr(compiler, "_NVRTCProgram"):
        return f"CuPy {cupy.__version__} has no cupy.cuda.compiler._NVRTCProgram"
    try:
        compiler._get_nvrtc_version()
    except Exception as exc:
        return f"NVRTC is not loadable ({exc!r}); install nvidia-cuda-nvrtc-cu12"
    include = _toolkit_include()
    if include is None:
        return "no CUDA toolkit headers (math_constants.h) under $CUDA_PATH, $CUDA_HOME, " \
               "/usr/local/cuda or beside nvcc"
    package = os.path.realpath(os.path.dirname(cupy.__file__))
    return compiler, assemble_cupy_compiler_options, package, include


def _tools():
    tools = _toolchain()
    if isinstance(tools, str):
        _missing(tools)
    return tools


def _options(record, toolkit_headers):
    """The options NVRTC gets from ``RawModule``: CuPy's assembly of the record's
    options, then what CuPy's compile path adds (``-ftz=true``, the arch, device code
    by default). Of the include directories CuPy's assembly adds, only CuPy's own are
    kept (a pip-only install has nothing else); the toolkit's is added for the other
    case."""
    _, assemble, package, include = _tools()
    opts = [
        o for o in assemble(tuple(record.options))
        if not o.startswith("-I") or os.path.realpath(o[2:]).startswith(package + os.sep)
    ]
    if toolkit_headers:
        opts.append("-I" + include)
    return (*opts, "-ftz=true", "-arch=" + ARCH, "--device-as-default-execution-space",
            "--ptxas-options=-v")


def _compile(code, options, name_expressions=()):
    """(log, {lowered name: name expression}) of an NVRTC compile; raises CuPy's
    CompileException with NVRTC's log on an error."""
    compiler = _tools()[0]
    program = compiler._NVRTCProgram(code, "check.cu", name_expressions=list(name_expressions)
                                     or None, method="cubin")
    log = io.StringIO()
    _, mapping = program.compile(options, log_stream=log)
    return log.getvalue(), {v: k for k, v in (mapping or {}).items()}


_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas(log):
    """{function: {registers, smem, spill_stores, spill_loads}} from ptxas -v output
    (entry functions have registers and smem; every function has its spills)."""
    out, entry, props = {}, None, None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            entry = m.group(1)
            out.setdefault(entry, {})
        elif m := _PROPS.search(line):
            props = m.group(1)
            out.setdefault(props, {})
        elif (m := _SPILL.search(line)) and props is not None:
            out[props].update(spill_stores=int(m.group(1)), spill_loads=int(m.group(2)))
        elif (m := _USED.search(line)) and entry is not None:
            smem = _SMEM.search(line)
            out[entry].update(registers=int(m.group(1)), smem=int(smem.group(1)) if smem else 0)
    return out


def test_parse_ptxas():
    log = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'f' for 'sm_90'
ptxas info    : Function properties for f
ptxas         .     8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 3072 bytes smem, 400 bytes cmem[0]
ptxas info    : Function properties for g
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
"""
    assert parse_ptxas(log) == {
        "f": {"registers": 40, "smem": 3072, "spill_stores": 4, "spill_loads": 12},
        "g": {"spill_stores": 0, "spill_loads": 0},
    }


def test_check_sees_missing_toolkit_headers():
    # The check itself: a toolkit header compiles with the include path only, so the
    # compile without it is what a pip-only CuPy user has (defect 1 of issue 16).
    compiler = _tools()[0]
    code = ('#include <math_constants.h>\n'
            'extern "C" __global__ void f(double* x) { x[threadIdx.x] = CUDART_INF; }\n')

    class Probe:
        options = ("--std=c++14",)

    _compile(code, _options(Probe, toolkit_headers=True))
    with pytest.raises(compiler.CompileException, match="math_constants.h"):
        _compile(code, _options(Probe, toolkit_headers=False))


@pytest.mark.parametrize("record", _records())
def test_compiles_and_fits(record):
    compiler = _tools()[0]
    logs = {}
    for headers in (True, False):
        try:
            logs[headers] = _compile(record.code, _options(record, headers),
                                     record.name_expressions)
        except compiler.CompileException as exc:
            where = "with" if headers else "without (as a pip-only CuPy install has it)"
            pytest.fail(f"{record.label} does not compile {where} the CUDA toolkit's "
                        f"include path:\n{exc}")
    log, names = logs[False]
    resources = parse_ptxas(log)
    if record.name_expressions:
        assert set(record.name_expressions) <= set(names.values())
    entries = {f: r for f, r in resources.items() if "registers" in r}
    assert entries, f"{record.label}: no kernel in the ptxas report:\n{log}"
    problems = []
    for function, res in sorted(resources.items()):
        label = names.get(function, function)
        if "registers" in res:
            allocated = -(-res["registers"] // 8) * 8
            if allocated * record.threads > MAX_REGISTERS_PER_BLOCK:
                problems.append(f"{label}: {res['registers']} registers x {record.threads} "
                                f"threads > {MAX_REGISTERS_PER_BLOCK}")
            if res["smem"] > MAX_STATIC_SHARED:
                problems.append(f"{label}: {res['smem']} bytes of static shared memory")
        if res.get("spill_stores", 0) or res.get("spill_loads", 0):
            problems.append(f"{label}: spills {res['spill_stores']} bytes stored, "
                            f"{res['spill_loads']} loaded")
    assert not problems, "\n".join(problems) + "\n" + log
