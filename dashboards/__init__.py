"""aoai-observatory dashboards (Dash): FinOps cost, SRE operations, monthly report."""
