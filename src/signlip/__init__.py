"""signlip: one training CLI for lip reading and sign language recognition."""

__version__ = "0.1.0"
