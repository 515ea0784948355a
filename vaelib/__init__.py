"""vaelib: small, fast variational autoencoders with mixture priors."""

__version__ = "0.1.0"
