"""cnnlib: the library behind the course *Comprehension of Deep Learning*.

One module per idea: ``devices`` (where to compute, seeding), ``data`` (offline datasets), ``perceptron``,
``mlp``, ``layers`` (convolution, pooling, ReLU from scratch), ``train``, ``plotting``, ``widgets``.
"""

from .devices import device, seed_everything

__all__ = ["device", "seed_everything"]
__version__ = "0.1.0"
