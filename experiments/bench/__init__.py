"""`python -m experiments.bench`: jaxnin's training speed against PyTorch's, in one run.

A tool of the repository, run from the root of a checkout (it is not part of the jaxnin
package); its method and recorded results are in README.md beside it.

Kept free of imports: the PyTorch worker processes import this package and must not pay for
JAX at their cold start.
"""
