"""`python -m jaxnin.bench`: jaxnin's training speed against PyTorch's, measured in one run.

Kept free of imports: the PyTorch worker processes import this package and must not pay for
JAX at their cold start.
"""
