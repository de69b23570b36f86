"""cnnlib: the library behind the course *Comprehension of Deep Learning*.

One module per idea: ``devices`` (where to compute, seeding), ``checks`` (clear errors for bad input), ``data``
(offline datasets), ``perceptron``, ``mlp``, ``layers`` (convolution, pooling, ReLU from scratch), ``models``
(ZFNet-small), ``graph`` (the traced graph: a layer by name, its node, what each operation does), ``hooks``
(keeping a layer's output), ``receptive`` (receptive fields), ``train``, ``snapshots`` (the course's weight
files, checked), ``pretrained`` (trained networks), ``hed`` (HED's VGG16 trunk), ``deconvnet``, ``topk``,
``autoencoder``, ``occlusion``, ``evolution``, ``transfer``, ``actmax``, ``sanity`` (do the maps show the network?),
``photos`` (the offline photo pool and its fingerprint), ``distill`` (the photo network), ``plotting``, ``widgets``.
"""

from .devices import device, seed_everything

__all__ = ["device", "seed_everything"]
__version__ = "0.1.0"
