"""mmupt: unsupervised post-training of multimodal LLMs (MM-UPT), as an orchestrated pipeline."""

__version__ = "0.1.0"
