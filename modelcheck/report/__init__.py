"""Results and what is made of them: the report document and its schema, summaries, baselines."""
