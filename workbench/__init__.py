"""SCL workbench: weakly-supervised video object grounding with Stable Context Learning.

The package holds all model and data code; notebooks and the CLI (``python -m workbench``)
only call it. See README.md for the two commands that run everything.
"""

__version__ = "0.1.0"
