"""The repository's tools and its records, run from the root of a checkout and never installed
with jaxnin: `python -m experiments.bench` (jaxnin's speed against PyTorch's) and
`python -m experiments.acceptance` (the GPU acceptance run). The other folders hold the
recipes' recorded results, each with the command and device that produced it.

Kept free of imports: the bench's PyTorch children import this package and must not pay for
JAX at their cold start.
"""
