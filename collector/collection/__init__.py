"""Collection: sources (the workspace, Log Analytics, the Metrics API), one pass, the schedule and its health."""
