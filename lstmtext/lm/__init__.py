"""Next-word prediction: an LSTM language model."""
