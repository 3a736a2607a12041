"""edgewatch runtime: the board side. Never imports TensorFlow or `converters`."""

__version__ = "0.1.0"
