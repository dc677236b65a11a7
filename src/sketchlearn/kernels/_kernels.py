"""Kernel functions.

Conventions (all bounded kernels satisfy k(x, x) = 1):

========================  ==========================================================
``gaussian``              exp(-||x - y||^2 / (2 h^2))
``laplace``               exp(-||x - y|| / h)            (Matérn with nu = 1/2)
``matern``                2^(1-nu)/Gamma(nu) t^nu K_nu(t), t = sqrt(2 nu) ||x - y|| / h
``imq``                   (1 + ||x - y||^2 / h^2)^(-nu)
``sinc``                  prod_j sinc((x_j - y_j) / h), sinc(u) = sin(pi u) / (pi u)
``riesz`` (energy)        -(||x - y|| / h)^r, 0 < r < 2 (conditionally positive definite)
========================  ==========================================================

Each kernel is evaluated from a compact numeric description (:meth:`Kernel.spec`)
that the array-API reference, the Numba kernels and the CuPy kernels share, so the
three paths compute the same function.
"""

from __future__ import annotations

import abc
import math
import numbers

import numpy as np

from .._validation import check_scalar

__all__ = [
    "Kernel",
    "GaussianKernel",
    "LaplaceKernel",
    "MaternKernel",
    "IMQKernel",
    "SincKernel",
    "RieszKernel",
    "SumKernel",
    "KERNEL_NAMES",
]

# Codes of the kernel families in a spec; the Numba and CuPy kernels branch on them.
GAUSSIAN, MATERN_HALF, MATERN, IMQ, SINC, RIESZ = range(6)

# Trapezoid rule for K_nu(x) = int_0^inf exp(-x cosh t) cosh(nu t) dt: the integrand is
# analytic in a strip of half-width ~pi/2, so a step of 0.2 gives ~1e-16 relative error;
# its peak, at asinh(nu/x), has width (x^2 + nu^2)^(-1/4), so for large x or nu the step
# shrinks to 0.7 (x^2 + nu^2)^(-1/4) (see matern_quadrature_step).
# Terms are divided by their approximate peak exp(max(0, nu (log(2 nu / x) - 1))) so the sum
# never overflows, and summed until, past the peak at asinh(nu/x), they fall below e^-40
# of the running total. Distances below
# MATERN_TINY_T count as MATERN_TINY_T: there 1 - k = O(t^min(2, 2 nu)) is below rounding
# for every nu > 0.04, and cosh of the nodes stays finite.
MATERN_QUAD_STEP = 0.2
MATERN_QUAD_PEAK = 0.7
MATERN_TINY_T = 1e-200
MATERN_QUAD_CUTOFF = 40.0


class Kernel(abc.ABC):
    """Base class of kernel functions ``k(x, y)``; see :mod:`sketchlearn.kernels`.

    Subclasses implement :meth:`_components` (family code, parameters) and
    :meth:`power`. Calling a kernel on two arrays returns their kernel matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import GaussianKernel, Kernel
    >>> k = GaussianKernel(bandwidth=1.0)
    >>> isinstance(k, Kernel), k.bounded
    (True, True)
    >>> np.round(k(np.array([[0.0], [1.0]])), 4)
    array([[1.    , 0.6065],
           [0.6065, 1.    ]])
    """

    name = "kernel"
    #: True when k(x, y) <= k(x, x) = 1 everywhere (all kernels but Riesz).
    bounded = True

    def __call__(self, X, Y=None):
        """Kernel matrix ``K[i, j] = k(X[i], Y[j])`` (``Y`` defaults to ``X``).

        Materialises an ``n x m`` array; see :func:`sketchlearn.kernels.kernel_matvec`
        for sums that do not.
        """
        from ._sums import kernel_matrix

        return kernel_matrix(X, Y, kernel=self)

    # -- description shared by all backends ----------------------------------------
    @abc.abstractmethod
    def _components(self):
        """List of ``(code, bandwidth, nu_or_exponent, weight)``."""

    def spec(self):
        """Numeric description ``(codes, params, weights)`` used by every backend.

        ``params[c]`` is ``[bandwidth, nu, a, b]`` where ``a`` and ``b`` are
        precomputed constants of family ``codes[c]`` (see ``_derived``).
        """
        comps = self._components()
        codes = np.array([c[0] for c in comps], dtype=np.int64)
        params = np.array([[c[1], c[2], *_derived(c[0], c[1], c[2])] for c in comps],
                          dtype=np.float64)
        weights = np.array([c[3] for c in comps], dtype=np.float64)
        return codes, params, weights

    @property
    def sup_norm(self) -> float:
        """``max |k(x, y)|``: k(x, x) for bounded kernels, infinity for Riesz."""
        if not self.bounded:
            return math.inf
        return float(sum(abs(w) for *_, w in self._components()))

    @property
    def diagonal_value(self) -> float:
        """k(x, x), the same for every x (all kernels here are translation invariant)."""
        return float(sum(w * (0.0 if code == RIESZ else 1.0)
                         for code, _, _, w in self._components()))

    # -- algebra ----------------------------------------------------------------------
    def power(self, alpha: float, n_features: int) -> Kernel:
        """The fractional power kernel k_alpha (Fourier transform raised to ``alpha``).

        Constant factors are dropped and the result is normalised to k(x, x) = 1.
        ``alpha = 1/2`` gives the square-root kernel. Raises ``ValueError`` when no
        closed form exists.
        """
        raise ValueError(f"The {self.name} kernel has no closed-form power kernel.")

    def sqrt(self, n_features: int) -> Kernel:
        """Square-root kernel, ``power(0.5, n_features)``."""
        return self.power(0.5, n_features)

    def __add__(self, other):
        if not isinstance(other, Kernel):
            return NotImplemented
        return SumKernel([self, other])

    def __mul__(self, factor):
        if not isinstance(factor, numbers.Real) or factor <= 0:
            return NotImplemented
        return SumKernel([self], [float(factor)])

    __rmul__ = __mul__

    def __eq__(self, other):
        return type(self) is type(other) and self._components() == other._components()

    def __hash__(self):
        return hash((type(self).__name__, tuple(self._components())))

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict:
        return {"bandwidth": self.bandwidth}


def _check_bandwidth(bandwidth):
    return float(check_scalar(bandwidth, "bandwidth", lower=0, lower_inclusive=False))


def _check_power(alpha):
    return float(check_scalar(alpha, "alpha", lower=0, upper=1, lower_inclusive=False))


class GaussianKernel(Kernel):
    """Gaussian kernel ``exp(-||x - y||^2 / (2 h^2))``.

    Parameters
    ----------
    bandwidth : float, default=1.0
        Length scale ``h > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import GaussianKernel
    >>> k = GaussianKernel(bandwidth=1.0)
    >>> K = k(np.array([[0.0], [1.0]]))
    >>> np.round(K, 4)
    array([[1.    , 0.6065],
           [0.6065, 1.    ]])
    >>> k.sqrt(n_features=1)
    GaussianKernel(bandwidth=0.7071067811865476)
    """

    name = "gaussian"

    def __init__(self, bandwidth: float = 1.0):
        self.bandwidth = _check_bandwidth(bandwidth)

    def _components(self):
        return [(GAUSSIAN, self.bandwidth, 0.0, 1.0)]

    def power(self, alpha, n_features):
        # Fourier transform exp(-h^2 w^2 / 2) to the power alpha: variance h^2 alpha.
        return GaussianKernel(self.bandwidth * math.sqrt(_check_power(alpha)))


class MaternKernel(Kernel):
    """Matérn kernel with smoothness ``nu``, normalised to k(x, x) = 1.

    ``k(x, y) = 2^(1-nu) / Gamma(nu) t^nu K_nu(t)`` with ``t = sqrt(2 nu) ||x - y|| / h``.
    Half-integer ``nu`` (1/2, 3/2, 5/2, ...) uses the closed form
    ``exp(-t) * polynomial(t)``; other ``nu`` evaluate the Bessel function by a
    trapezoid rule on its integral representation (relative accuracy ~1e-11 or better,
    checked against SciPy's Bessel function).

    Parameters
    ----------
    bandwidth : float, default=1.0
        Length scale ``h > 0``.
    nu : float, default=1.5
        Smoothness ``nu > 0``; ``nu = 0.5`` is the Laplace kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import MaternKernel
    >>> k = MaternKernel(bandwidth=1.0, nu=1.5)
    >>> float(k(np.array([[0.0]]), np.array([[1.0]]))[0, 0])  # (1 + sqrt 3) e^(-sqrt 3)
    0.4833577245965077
    """

    name = "matern"

    def __init__(self, bandwidth: float = 1.0, nu: float = 1.5):
        self.bandwidth = _check_bandwidth(bandwidth)
        self.nu = float(check_scalar(nu, "nu", lower=0, lower_inclusive=False))

    def _components(self):
        half = (self.nu - 0.5).is_integer() and self.nu <= 20.5
        return [(MATERN_HALF if half else MATERN, self.bandwidth, self.nu, 1.0)]

    def _params(self):
        return {"bandwidth": self.bandwidth, "nu": self.nu}

    def power(self, alpha, n_features):
        # The spectral density (2 nu / h^2 + w^2)^-(nu + d/2) raised to alpha is again a
        # Matérn density: nu' = alpha (nu + d/2) - d/2, with 2 nu'/h'^2 = 2 nu/h^2.
        alpha = _check_power(alpha)
        d = int(check_scalar(n_features, "n_features", kind=numbers.Integral, lower=1))
        nu_new = alpha * (self.nu + d / 2) - d / 2
        if nu_new <= 1e-12:
            raise ValueError(
                f"The power alpha={alpha} of the {self.name} kernel (nu={self.nu}) does not "
                f"exist in d={d} dimensions; it needs alpha > d / (2 nu + d) = "
                f"{d / (2 * self.nu + d):.4g}."
            )
        nu_new = round(nu_new, 12)
        return MaternKernel(self.bandwidth * math.sqrt(nu_new / self.nu), nu_new)


class LaplaceKernel(MaternKernel):
    """Laplace kernel ``exp(-||x - y|| / h)``, the Matérn kernel with ``nu = 1/2``.

    Parameters
    ----------
    bandwidth : float, default=1.0
        Length scale ``h > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import LaplaceKernel
    >>> float(LaplaceKernel(2.0)(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]))[0, 0])
    0.0820849986238988
    """

    name = "laplace"

    def __init__(self, bandwidth: float = 1.0):
        super().__init__(bandwidth=bandwidth, nu=0.5)

    def _params(self):
        return {"bandwidth": self.bandwidth}


class IMQKernel(Kernel):
    """Inverse multiquadric kernel ``(1 + ||x - y||^2 / h^2)^(-nu)``.

    It has no closed-form fractional power; target kernel thinning needs none.

    Parameters
    ----------
    bandwidth : float, default=1.0
        Length scale ``h > 0``.
    nu : float, default=0.5
        Decay exponent ``nu > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import IMQKernel
    >>> round(float(IMQKernel(1.0, nu=0.5)(np.array([[0.0]]), np.array([[1.0]]))[0, 0]), 12)
    0.707106781187
    """

    name = "imq"

    def __init__(self, bandwidth: float = 1.0, nu: float = 0.5):
        self.bandwidth = _check_bandwidth(bandwidth)
        self.nu = float(check_scalar(nu, "nu", lower=0, lower_inclusive=False))

    def _components(self):
        return [(IMQ, self.bandwidth, self.nu, 1.0)]

    def _params(self):
        return {"bandwidth": self.bandwidth, "nu": self.nu}

    def power(self, alpha, n_features):
        raise ValueError(
            "The imq kernel has no closed-form power kernel; use target kernel thinning "
            "(split kernel = the kernel itself), which already has MMD guarantees for it."
        )


class SincKernel(Kernel):
    """Sinc (band-limited) kernel ``prod_j sinc((x_j - y_j) / h)``.

    Its Fourier transform is the indicator of a cube, so every fractional power is
    the kernel itself: ``power`` returns an equal kernel.

    Parameters
    ----------
    bandwidth : float, default=1.0
        Scale ``h > 0``; ``k`` vanishes when a coordinate difference is a non-zero
        multiple of ``h``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import SincKernel
    >>> float(SincKernel(1.0)(np.array([[0.0]]), np.array([[0.5]]))[0, 0])  # 2 / pi
    0.6366197723675814
    """

    name = "sinc"

    def __init__(self, bandwidth: float = 1.0):
        self.bandwidth = _check_bandwidth(bandwidth)

    def _components(self):
        return [(SINC, self.bandwidth, 0.0, 1.0)]

    def power(self, alpha, n_features):
        _check_power(alpha)
        return SincKernel(self.bandwidth)


class RieszKernel(Kernel):
    """Riesz (energy) kernel ``-(||x - y|| / h)^r`` with ``0 < r < 2``.

    Conditionally positive definite: for ``r = 1`` and ``h = 1`` its squared MMD is
    the energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (so MMD equals
    ``scipy.stats.energy_distance`` in one dimension). It is unbounded and has
    k(x, x) = 0.

    Parameters
    ----------
    exponent : float, default=1.0
        ``r`` in the open interval (0, 2).
    bandwidth : float, default=1.0
        Scale ``h > 0`` (multiplies the kernel by ``h^-r``).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import RieszKernel
    >>> float(RieszKernel(1.0)(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]))[0, 0])
    -5.0
    """

    name = "riesz"
    bounded = False

    def __init__(self, exponent: float = 1.0, bandwidth: float = 1.0):
        self.exponent = float(check_scalar(exponent, "r (exponent)", lower=0, upper=2,
                                           lower_inclusive=False, upper_inclusive=False))
        self.bandwidth = _check_bandwidth(bandwidth)

    def _components(self):
        return [(RIESZ, self.bandwidth, self.exponent, 1.0)]

    def _params(self):
        return {"exponent": self.exponent, "bandwidth": self.bandwidth}

    def power(self, alpha, n_features):
        raise ValueError("The riesz kernel is unbounded and has no power kernel.")


class SumKernel(Kernel):
    """Weighted sum ``sum_c w_c k_c(x, y)`` of kernels with positive weights.

    Parameters
    ----------
    kernels : list of Kernel
        The summands (themselves possibly sums).
    weights : list of float, optional
        Positive weights, default all 1.

    Examples
    --------
    >>> from sketchlearn.kernels import GaussianKernel, LaplaceKernel
    >>> k = GaussianKernel(1.0) + 0.5 * LaplaceKernel(1.0)
    >>> k.sup_norm
    1.5
    """

    name = "sum"

    def __init__(self, kernels, weights=None):
        kernels = list(kernels)
        if not kernels or not all(isinstance(k, Kernel) for k in kernels):
            raise TypeError("SumKernel needs a non-empty list of Kernel objects.")
        weights = [1.0] * len(kernels) if weights is None else [float(w) for w in weights]
        if len(weights) != len(kernels) or any(not w > 0 for w in weights):
            raise ValueError("SumKernel weights must be positive, one per kernel.")
        self.kernels = kernels
        self.weights = weights
        self.bounded = all(k.bounded for k in kernels)

    def _components(self):
        return [(code, h, nu, w * wc) for k, w in zip(self.kernels, self.weights, strict=True)
                for code, h, nu, wc in k._components()]

    def _params(self):
        return {"kernels": self.kernels, "weights": self.weights}

    def power(self, alpha, n_features):
        raise ValueError("Take the power of each summand, not of a sum of kernels.")


KERNEL_NAMES = {
    "gaussian": GaussianKernel,
    "laplace": LaplaceKernel,
    "matern": MaternKernel,
    "imq": IMQKernel,
    "sinc": SincKernel,
    "riesz": RieszKernel,
    "energy": RieszKernel,
}


def _derived(code, bandwidth, nu):
    """Constants (a, b) precomputed once per kernel for the inner loops."""
    if code == GAUSSIAN:
        return (0.5 / bandwidth**2, 0.0)
    if code in (MATERN_HALF, MATERN):
        scale = math.sqrt(2.0 * nu) / bandwidth
        if code == MATERN_HALF:
            return (scale, float(int(round(nu - 0.5))))
        return (scale, (1.0 - nu) * math.log(2.0) - math.lgamma(nu))
    if code == IMQ:
        return (1.0 / bandwidth**2, 0.0)
    if code == SINC:
        return (math.pi / bandwidth, 0.0)
    if code == RIESZ:
        return (1.0 / bandwidth, 0.0)
    raise ValueError(f"unknown kernel code {code}")


def matern_half_coefficients(p: int) -> np.ndarray:
    """Coefficients c_i of exp(-t) sum_i c_i t^i, the Matérn kernel with nu = p + 1/2.

    c_i = p! / (2p)! * (2p - i)! / (i! (p - i)!) * 2^i, so that c_0 = 1.
    """
    return np.array(
        [math.factorial(p) / math.factorial(2 * p) * math.factorial(2 * p - i)
         / (math.factorial(i) * math.factorial(p - i)) * 2.0**i for i in range(p + 1)]
    )


def matern_quadrature_step(t: float, nu: float) -> float:
    """Trapezoid step of the Matérn quadrature at distance ``t``."""
    return min(MATERN_QUAD_STEP, MATERN_QUAD_PEAK / math.sqrt(math.hypot(t, nu)))


def matern_quadrature_log_scale(t: float, nu: float) -> float:
    """Approximate log of the peak of the integrand cosh(nu s) exp(-t (cosh s - 1))."""
    return max(0.0, nu * (math.log(2.0 * nu / t) - 1.0))


def matern_quadrature_log_term(s: float, t: float, nu: float, log_scale: float) -> float:
    """log of cosh(nu s) exp(-t (cosh s - 1)) / exp(log_scale)."""
    x = nu * s
    log_cosh = x + math.log1p(math.exp(-2.0 * x)) - math.log(2.0)
    return log_cosh - 2.0 * t * math.sinh(0.5 * s) ** 2 - log_scale


def matern_quadrature_nodes(t: float, nu: float) -> int:
    """Number of trapezoid nodes the Matérn quadrature needs at distance ``t``.

    The same stopping rule as the Numba and CUDA loops; the array-API reference uses
    it at the smallest distance of a block, whose integrand has the longest tail.
    """
    t = max(t, MATERN_TINY_T)
    step = matern_quadrature_step(t, nu)
    peak = math.asinh(nu / t)
    log_scale = matern_quadrature_log_scale(t, nu)
    total = 0.0
    k = 0
    while True:
        s = k * step
        log_term = matern_quadrature_log_term(s, t, nu, log_scale)
        total += math.exp(log_term) * (0.5 if k == 0 else 1.0)
        if s > peak and total > 0.0 and log_term < math.log(total) - MATERN_QUAD_CUTOFF:
            return k + 1
        k += 1
