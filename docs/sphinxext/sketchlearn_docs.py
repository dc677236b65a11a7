"""Small Sphinx helpers for the sketchlearn documentation (no network, no extra deps).

``benchmark-results``
    A directive that renders every ``*.md`` file found in the benchmark results
    folder (config value ``benchmark_results_dir``) as docutils nodes: Markdown
    pipe tables become tables, ``#`` headings become rubrics, fenced code becomes
    literal blocks, inline ``code`` becomes literals, everything else plain text.
    Nothing is parsed as reStructuredText, so whatever the benchmark scripts write
    cannot break a ``-W`` build. When the folder has no ``.md`` file a short note
    says so.

``example_time_limit``
    A sphinx-gallery ``reset_modules`` callable (named by its dotted path, so the
    gallery configuration stays picklable) that fails the build when one example
    runs longer than ``EXAMPLE_TIME_LIMIT`` seconds.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

#: Longest run time of one gallery example, in seconds (DESIGN.md: "each under 30 s").
EXAMPLE_TIME_LIMIT = float(os.environ.get("SKETCHLEARN_EXAMPLE_TIME_LIMIT", "30"))

_started: dict[str, float] = {}


def example_time_limit(gallery_conf, fname, when):
    """Record the start of each example and fail when it ran past the limit."""
    if fname is None:
        return
    key = str(fname)
    if when == "before":
        _started[key] = time.perf_counter()
        return
    start = _started.pop(key, None)
    if start is None:
        return
    elapsed = time.perf_counter() - start
    if elapsed > EXAMPLE_TIME_LIMIT:
        raise RuntimeError(
            f"Gallery example {key} ran for {elapsed:.1f} s, more than the "
            f"{EXAMPLE_TIME_LIMIT:.0f} s every example must stay under; make it smaller."
        )


# -- Markdown (the small subset benchmark tables use) to docutils nodes ----------------

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def _inline(text: str) -> list[nodes.Node]:
    """Plain text with `code` spans as literals; ** and __ emphasis markers dropped."""
    out: list[nodes.Node] = []
    parts = text.split("`")
    for i, part in enumerate(parts):
        if i % 2 == 1 and i < len(parts) - 1:
            out.append(nodes.literal(part, part))
        else:
            if i % 2 == 1:  # unmatched backtick: keep it
                part = "`" + part
            part = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", part)
            part = part.replace("**", "").replace("__", "")
            if part:
                out.append(nodes.Text(part))
    return out


def _row_cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells = re.split(r"(?<!\\)\|", line)
    return [c.strip().replace("\\|", "|") for c in cells]


def _table(lines: list[str]) -> nodes.table:
    rows = [_row_cells(line) for line in lines if not _SEPARATOR.match(line)]
    has_header = len(lines) > 1 and bool(_SEPARATOR.match(lines[1]))
    n_cols = max(len(r) for r in rows)
    rows = [r + [""] * (n_cols - len(r)) for r in rows]

    table = nodes.table(classes=["benchmark-table"])
    group = nodes.tgroup(cols=n_cols)
    table += group
    for _ in range(n_cols):
        group += nodes.colspec(colwidth=1)

    def make_row(cells):
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", *_inline(cell))
            row += entry
        return row

    if has_header:
        head = nodes.thead()
        head += make_row(rows[0])
        group += head
        rows = rows[1:]
    body = nodes.tbody()
    for r in rows:
        body += make_row(r)
    group += body
    return table


def markdown_to_nodes(text: str) -> list[nodes.Node]:
    """Convert simple Markdown (tables, headings, lists, fences, paragraphs) to nodes."""
    out: list[nodes.Node] = []
    lines = text.splitlines()
    i = 0
    paragraph: list[str] = []
    bullets: list[str] = []

    def flush():
        if paragraph:
            out.append(nodes.paragraph("", "", *_inline(" ".join(paragraph))))
            paragraph.clear()
        if bullets:
            lst = nodes.bullet_list()
            for item in bullets:
                li = nodes.list_item()
                li += nodes.paragraph("", "", *_inline(item))
                lst += li
            out.append(lst)
            bullets.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            block = "\n".join(code)
            out.append(nodes.literal_block(block, block))
        elif stripped.startswith("|"):
            flush()
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.append(_table(block))
            continue
        elif _HEADING.match(stripped):
            flush()
            out.append(nodes.rubric("", "", *_inline(_HEADING.match(stripped).group(2))))
        elif not stripped:
            flush()
        elif _BULLET.match(line):
            if paragraph:
                flush()
            bullets.append(_BULLET.match(line).group(1))
        elif bullets and line[:1].isspace():
            bullets[-1] += " " + stripped
        else:
            if bullets:
                flush()
            paragraph.append(stripped)
        i += 1
    flush()
    return out


class BenchmarkResults(SphinxDirective):
    """``.. benchmark-results::`` renders ``<benchmark_results_dir>/*.md``, if any."""

    has_content = False

    def run(self):
        folder = Path(self.env.srcdir, self.config.benchmark_results_dir).resolve()
        files = sorted(folder.glob("*.md")) if folder.is_dir() else []
        self.env.sketchlearn_benchmark_docs = getattr(
            self.env, "sketchlearn_benchmark_docs", set()
        ) | {self.env.docname}
        if not files:
            para = nodes.paragraph()
            para += nodes.Text("No benchmark results have been recorded yet: run ")
            para += nodes.literal("python benchmarks/run.py", "python benchmarks/run.py")
            para += nodes.Text(" to write them to ")
            para += nodes.literal("benchmarks/results/", "benchmarks/results/")
            para += nodes.Text(", then rebuild these pages.")
            return [para]
        out: list[nodes.Node] = []
        for path in files:
            self.env.note_dependency(str(path))
            out.append(nodes.rubric("", "", nodes.literal(path.name, path.name)))
            out.extend(markdown_to_nodes(path.read_text(encoding="utf-8")))
        return out


def _always_reread(app, env, added, changed, removed):
    """Re-read pages that list benchmark results: new result files appear on rebuild."""
    docs = getattr(env, "sketchlearn_benchmark_docs", set())
    return [d for d in docs if d in env.found_docs and d not in changed]


def _purge(app, env, docname):
    docs = getattr(env, "sketchlearn_benchmark_docs", None)
    if docs:
        docs.discard(docname)


def _merge(app, env, docnames, other):
    env.sketchlearn_benchmark_docs = getattr(env, "sketchlearn_benchmark_docs", set()) | getattr(
        other, "sketchlearn_benchmark_docs", set()
    )


def setup(app):
    app.add_config_value("benchmark_results_dir", "../benchmarks/results", "env")
    app.add_directive("benchmark-results", BenchmarkResults)
    app.connect("env-get-outdated", _always_reread)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
