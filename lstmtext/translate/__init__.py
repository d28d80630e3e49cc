"""Translation: a BiLSTM encoder, an attention LSTM decoder, beam search."""
