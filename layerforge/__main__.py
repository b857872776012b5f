"""`python -m layerforge` runs the `layerforge` binary."""
import sys

from layerforge.cli import main

sys.exit(main())
