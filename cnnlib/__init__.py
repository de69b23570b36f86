"""cnnlib: the library behind the course *Comprehension of Deep Learning*.

One module per idea, listed by group in the README ("`cnnlib/`, module by module"): the basics from scratch
(``perceptron``, ``mlp``, ``layers``, ``autoencoder``, ``rbm``); networks, data and weights (``models``, ``train``,
``snapshots``, ``pretrained``, ``hed``, ``distill``, ``data``, ``photos``, ``devices``); seeing inside (``graph``,
``hooks``, ``deconvnet``, ``receptive``, ``topk``, ``filters``, ``occlusion``, ``incremental``, ``fold``,
``evolution``, ``transfer``, ``actmax``, ``sanity``); and around them (``checks``, ``progress``, ``plotting``,
``widgets``, ``live``).
"""

from .devices import device, seed_everything

__all__ = ["device", "seed_everything"]
__version__ = "0.1.0"
