"""Pure: what a rollup is: collection windows, rollup specs, latency histograms, calendar months and the KQL files."""
