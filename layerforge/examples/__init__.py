"""The example nets (prototxt/) and solvers (solvers/) as package data; the repository's
prototxt/ and solvers/ folders, linked here so an installed layerforge ships them
(`layerforge examples DIR` copies them out)."""
