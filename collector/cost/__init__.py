"""Cost: the price book, inventory, attribution, the cost table, budgets and their notifications, FOCUS and exports."""
