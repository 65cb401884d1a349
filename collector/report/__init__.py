"""The monthly report: its figures, HTML and CSV, charts, PDF and schedule."""
