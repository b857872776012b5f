"""Tools behind the `layerforge` binary, usable on their own: per-layer timing, net drawing,
training-log writing/reading, loss curves and 2-D encoding scatter plots."""
