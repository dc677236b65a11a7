"""sketchlearn: statistics with less data, with a scikit-learn API.

Importing sketchlearn never imports CuPy, Dask or Matplotlib; the GPU code loads
when a CuPy array arrives or ``config_context(device="gpu")`` asks for it.
"""

from ._cold_start import wait_for_compilation
from ._config import config_context, get_config, set_config

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "config_context", "get_config", "set_config", "wait_for_compilation"]
