"""Hyperparameters of the language model, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from lstmtext.config import option
from lstmtext.errors import ConfigError


@dataclass
class LMConfig:
    """Every setting of ``lstmtext train lm``; see ``lstmtext config lm``."""

    # tokenizer
    tokenizer: str = option("unigram", "tokenizer type trained on the training file: unigram, bpe, char "
                            "(SentencePiece) or word (whitespace vocabulary)", ("unigram", "bpe", "char", "word"))
    vocab_size: int = option(8000, "tokenizer vocabulary size (word: 0 keeps every word)")
    # network
    embedding_dim: int = option(200, "word embedding size (must equal hidden_size when tie_weights)")
    hidden_size: int = option(200, "units per LSTM layer")
    num_layers: int = option(2, "stacked LSTM layers")
    tie_weights: bool = option(False, "share input embedding and output weights (Press & Wolf 2017)")
    dropout_embedding: float = option(0.0, "dropout on embeddings (one mask for all time steps)")
    dropout: float = option(0.0, "dropout between LSTM layers (one mask for all time steps)")
    dropout_output: float = option(0.0, "dropout on the last LSTM output (one mask for all time steps)")
    init_scale: float = option(0.1, "uniform initialisation range [-s, s] (Zaremba et al.)")
    # training
    batch_size: int = option(20, "parallel streams (sequences) per batch")
    bptt: int = option(20, "truncated backpropagation-through-time window (time steps)")
    epochs: int = option(13, "maximum epochs")
    optimizer: str = option("sgd", "sgd or adam", ("sgd", "adam"))
    lr: float = option(1.0, "learning rate")
    lr_schedule: str = option("step", "constant, step (decay each epoch from lr_decay_start) or plateau "
                              "(decay when validation perplexity does not improve)", ("constant", "step", "plateau"))
    lr_decay: float = option(0.5, "learning-rate decay factor")
    lr_decay_start: int = option(4, "first epoch (0-based) decayed by the step schedule")
    min_lr: float = option(0.0, "lower bound of the learning rate")
    clip_norm: float = option(5.0, "clip the global gradient norm to this (0: off)")
    sum_over_time: bool = option(True, "loss summed over the BPTT window and averaged over the batch, as in "
                                 "Zaremba et al. (keeps their learning rates); false: mean per token")
    patience: int = option(3, "stop after this many epochs without a better validation perplexity (0: never)")
    jit_compile: bool = option(False, "compile training and evaluation steps with XLA (measured slower than "
                               "plain TensorFlow graphs for these LSTMs on a 2-core CPU; try it on GPUs)")
    eval_batch_size: int = option(10, "streams used for validation and 'evaluate'")
    weights_dtype: str = option("float32", "dtype of stored weights: float32 or float16", ("float32", "float16"))
    seed: int = option(0, "random seed (weights, dropout, tokenizer sampling)")

    def validate(self) -> None:
        """Check values that types alone cannot."""
        positive = ("embedding_dim", "hidden_size", "num_layers", "batch_size", "bptt", "epochs",
                    "eval_batch_size")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ConfigError(f"must be positive, got {getattr(self, key)}", key)
        for key in ("dropout_embedding", "dropout", "dropout_output"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"must be in [0, 1), got {getattr(self, key)}", key)
        if self.lr <= 0:
            raise ConfigError(f"must be positive, got {self.lr}", "lr")
        if self.vocab_size < 0 or (self.tokenizer != "word" and self.vocab_size < 8):
            raise ConfigError(f"too small: {self.vocab_size}", "vocab_size")
        if self.tie_weights and self.embedding_dim != self.hidden_size:
            raise ConfigError("tie_weights needs embedding_dim == hidden_size", "tie_weights")
