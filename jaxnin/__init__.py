"""jaxnin: classic CNNs (NiN, VGG, LeNet-5) and their d2l experiments in pure-functional JAX."""
from jaxnin.errors import JaxninError
from jaxnin.models import create_model

__version__ = "0.1.0"
__all__ = ["JaxninError", "create_model"]
