"""Human-facing output: model summaries, curves and logs."""
