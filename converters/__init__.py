"""edgewatch converters: the workstation side (TensorFlow). May import `runtime`; never the reverse."""
