"""lstmtext: LSTM and BiLSTM models for text, from the command line and from Python.

Importing this package is cheap: TensorFlow and Keras are only imported by the
modules that build or run networks.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
