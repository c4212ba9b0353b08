"""Reports: Markdown and self-contained HTML documents with tables and matplotlib figures."""
from .document import Report, Table
from .figures import new_figure, save_figure

__all__ = ["Report", "Table", "new_figure", "save_figure"]
