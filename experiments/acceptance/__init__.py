"""`python -m experiments.acceptance`: the GPU acceptance run, in parts, recorded as it goes.

plan.py lists the runs (each a recipe's own command line), estimate.py budgets their GPU time,
runner.py runs one as a child process and writes its record, summary.py writes the table,
pack.py the archive that carries the records off a device host, cli.py ties them together.
"""
