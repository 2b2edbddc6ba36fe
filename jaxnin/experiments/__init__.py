"""One short module per seed recipe: its config, and one call to fit(). Run with python -m."""
