"""Tools behind the `layerforge` binary, usable on their own: per-layer timing, net drawing,
training-log writing/reading, loss curves, encoding scatter plots, one-shot evaluation, class
centroids, a trained net on image files (encode), ONNX export, feature extraction and the
shipped examples; `commands.py` and `deploy_commands.py` register their `layerforge` commands."""
