"""Plots and HTML reports (matplotlib, Agg backend; files written atomically)."""

from spikeflow.viz.plots import accuracy_curve, bar_chart, event_frame, pareto_plot, raster
from spikeflow.viz.report import html_report

__all__ = ["accuracy_curve", "bar_chart", "event_frame", "html_report", "pareto_plot", "raster"]
