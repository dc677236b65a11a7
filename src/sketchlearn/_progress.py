"""Progress bars for long work (``verbose > 0``), one home for every module.

tqdm is imported only when a bar is shown, so quiet calls pay nothing for it.
"""

from __future__ import annotations

__all__ = ["progress_bar", "progress_range"]


def progress_bar(verbose, total: int, desc: str, unit: str = "it"):
    """A tqdm bar of ``total`` steps (advance it with ``update``) when ``verbose`` is
    set and there is work, else None."""
    if not verbose or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


def progress_range(n: int, verbose, desc: str):
    """``range(n)``, shown as a tqdm bar when ``verbose`` is set."""
    if not verbose:
        return range(n)
    from tqdm.auto import tqdm

    return tqdm(range(n), desc=desc)
