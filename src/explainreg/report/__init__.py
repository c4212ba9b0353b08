"""Reports: Markdown and self-contained HTML documents with tables and matplotlib figures."""
from .document import SMOKE_TEST, Report, Table, mean_std
from .figures import curve_figure, map_grid, new_figure, save_figure

__all__ = ["Report", "SMOKE_TEST", "Table", "curve_figure", "map_grid", "mean_std", "new_figure", "save_figure"]
