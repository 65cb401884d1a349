"""Azure's own view of cost: meters, retail prices, and the bill."""
