"""Run one gate: its data read once, its model from the cache, one prediction, every check judged."""
