"""OpenVLThinker: G2RPO post-training for generalist multimodal reasoning."""

__version__ = "0.1.0"
