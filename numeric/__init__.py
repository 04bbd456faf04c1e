"""divkit's array layer: kernels generated from theory's expressions."""

__all__: list[str] = []
