"""divkit's checking layer: high-precision references, claims and verdicts."""

__all__: list[str] = []
