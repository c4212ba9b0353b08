"""A small document model rendered twice: Markdown (figures linked) and self-contained HTML
(figures embedded as base64), both written atomically."""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..runs import atomic_write_bytes

__all__ = ["Report", "SMOKE_TEST", "Table", "mean_std"]


@dataclass
class Table:
    """Cells as strings; ``bold[r][c]`` marks the best entries; ``notes`` go under the table."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    bold: Sequence[Sequence[bool]] | None = None
    notes: str = ""

    def _is_bold(self, r: int, c: int) -> bool:
        return bool(self.bold and self.bold[r][c])

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "|".join("---" for _ in self.header) + "|"]
        for r, row in enumerate(self.rows):
            cells = [f"**{v}**" if self._is_bold(r, c) else v for c, v in enumerate(row)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + (f"\n\n{self.notes}" if self.notes else "")

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = []
        for r, row in enumerate(self.rows):
            cells = "".join(f"<td class='{'best' if self._is_bold(r, c) else ''}'>{html.escape(v)}</td>"
                            for c, v in enumerate(row))
            body.append(f"<tr>{cells}</tr>")
        notes = f"<p class='notes'>{html.escape(self.notes)}</p>" if self.notes else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}"


#: what a quick-mode report says at its top, and under its tables
SMOKE_TEST = ("Quick mode: a smoke test, not a result. The models saw a small subset for a short time with one "
              "seed, so the numbers only show that the pipeline runs end to end; no model is marked best and no "
              "spread is given. Run the full study for results.")


def mean_std(mean: float, std: float, n: int, digits: int = 2) -> str:
    """``"m ± s"`` over ``n`` ≥ 2 runs; ``"m (1 run)"`` for one, where a spread of 0.00 would mislead."""
    if n < 2:
        return f"{mean:.{digits}f} (1 run)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


@dataclass
class Report:
    """Build with ``heading``/``text``/``table``/``figure``/``code``; ``write(folder)`` renders."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def smoke_test(self, text: str = SMOKE_TEST) -> "Report":
        """Mark the report as a smoke test: a warning block right under the title."""
        self.blocks.insert(0, ("warning", text))
        return self

    def heading(self, text: str, level: int = 2) -> "Report":
        self.blocks.append(("heading", (level, text)))
        return self

    def text(self, text: str) -> "Report":
        self.blocks.append(("text", text))
        return self

    def code(self, text: str) -> "Report":
        self.blocks.append(("code", text))
        return self

    def table(self, table: Table) -> "Report":
        self.blocks.append(("table", table))
        return self

    def figure(self, path: str | os.PathLike, caption: str) -> "Report":
        self.blocks.append(("figure", (Path(path), caption)))
        return self

    def markdown(self, folder: Path) -> str:
        out = [f"# {self.title}"]
        for kind, value in self.blocks:
            if kind == "heading":
                out.append("#" * value[0] + " " + value[1])
            elif kind == "text":
                out.append(value)
            elif kind == "warning":
                out.append(f"> **{value}**")
            elif kind == "code":
                out.append(f"```\n{value}\n```")
            elif kind == "table":
                out.append(value.markdown())
            else:
                path, caption = value
                out.append(f"![{caption}]({os.path.relpath(path, folder)})\n\n*{caption}*")
        return "\n\n".join(out) + "\n"

    def html(self) -> str:
        out = []
        for kind, value in self.blocks:
            if kind == "heading":
                out.append(f"<h{value[0]}>{html.escape(value[1])}</h{value[0]}>")
            elif kind == "text":
                out.append(f"<p>{html.escape(value)}</p>")
            elif kind == "warning":
                out.append(f"<p class='warning'><strong>{html.escape(value)}</strong></p>")
            elif kind == "code":
                out.append(f"<pre>{html.escape(value)}</pre>")
            elif kind == "table":
                out.append(value.html())
            else:
                path, caption = value
                data = base64.b64encode(path.read_bytes()).decode()
                out.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;"
                 "text-align:right}th{background:#f3f3f3}td.best{font-weight:bold;background:#e8f4e8}"
                 "img{max-width:100%}figcaption{font-style:italic;color:#555}.notes{font-size:90%;color:#555}"
                 "pre{background:#f6f6f6;padding:8px;overflow-x:auto}"
                 ".warning{background:#fff4e0;border-left:4px solid #e0a000;padding:6px 10px}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>{''.join(out)}</body></html>\n")

    def write(self, folder: str | os.PathLike, name: str = "report") -> tuple[Path, Path]:
        """Write ``name.md`` and ``name.html`` into ``folder``; returns their paths."""
        folder = Path(folder)
        md, page = folder / f"{name}.md", folder / f"{name}.html"
        atomic_write_bytes(md, self.markdown(folder).encode())
        atomic_write_bytes(page, self.html().encode())
        return md, page
