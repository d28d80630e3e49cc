"""Hyperparameters of the language model, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from lstmtext.config import AUTO, Auto, is_auto, option
from lstmtext.errors import ConfigError


@dataclass
class LMConfig:
    """Every setting of ``lstmtext train lm``; see ``lstmtext config lm``.

    Keys set to ``auto`` are chosen from the training data when it has been
    read (:func:`lstmtext.training.auto.lm_values`); the benchmark recipes
    in ``benchmarks/recipes`` set them all.
    """

    # tokenizer
    tokenizer: str | Auto = option(AUTO, "tokenizer type trained on the training file: unigram, bpe, char "
                                   "(SentencePiece) or word (whitespace vocabulary); auto: word when the text "
                                   "already writes its rare words as <unk> (a closed vocabulary, as PTB), "
                                   "else unigram", ("unigram", "bpe", "char", "word"))
    vocab_size: int | Auto = option(AUTO, "tokenizer vocabulary size (word: 0 keeps every word; auto: from "
                                    "the training data's word types; a size the data cannot support is "
                                    "lowered with a warning)")
    direction: str = option("forward", "read each line left to right (forward: predicts the next word) or right "
                            "to left (backward: predicts the word before; the backward half of a tagger's --lm "
                            "features, scored by evaluate but not used by predict or generate)",
                            ("forward", "backward"))
    # network
    embedding_dim: int | Auto = option(AUTO, "word embedding size (must equal hidden_size when tie_weights; "
                                       "auto: hidden_size)")
    hidden_size: int | Auto = option(AUTO, "units per LSTM layer (auto: grows with the training tokens)")
    num_layers: int | Auto = option(AUTO, "stacked LSTM layers (auto: 2)")
    tie_weights: bool = option(False, "share input embedding and output weights (Press & Wolf 2017)")
    dropout_embedding: float | Auto = option(AUTO, "dropout on embeddings (see locked_dropout; auto: as "
                                             "dropout)")
    dropout: float | Auto = option(AUTO, "dropout between LSTM layers (see locked_dropout; auto: less as the "
                                   "training data grows)")
    dropout_output: float | Auto = option(AUTO, "dropout on the last LSTM output (see locked_dropout; auto: "
                                          "as dropout)")
    locked_dropout: bool = option(True, "draw the dropout_embedding, dropout and dropout_output masks once per "
                                  "sequence and batch and share them over its time steps (variational or locked "
                                  "dropout, Gal & Ghahramani 2016); false: a fresh mask at every time step")
    dropout_words: float = option(0.0, "embedding dropout: drop each word type (a whole row of the embedding "
                                  "matrix) with this probability for a batch, wherever it occurs (0: off; Merity "
                                  "et al. 2017 use 0.1)")
    weight_drop: float = option(0.0, "DropConnect on the LSTMs' hidden-to-hidden weights, one mask per batch "
                                "(0: off; Merity et al. 2017 use 0.5)")
    init_scale: float = option(0.1, "uniform initialisation range [-s, s] (Zaremba et al.)")
    # training
    batch_size: int | Auto = option(AUTO, "parallel streams (sequences) per batch (auto: 20, fewer when the "
                                    "text is short)")
    bptt: int = option(20, "truncated backpropagation-through-time window (time steps)")
    epochs: int | Auto = option(AUTO, "maximum epochs (auto: enough for a few thousand steps, early stopping "
                                "ends it)")
    optimizer: str | Auto = option(AUTO, "sgd or adam (auto: adam)", ("sgd", "adam"))
    lr: float | Auto = option(AUTO, "learning rate (auto: 1.0 for sgd, 0.002 for adam)")
    lr_schedule: str | Auto = option(AUTO, "constant, step (decay each epoch from lr_decay_start) or plateau "
                                     "(decay when validation perplexity does not improve; auto: step for "
                                     "sgd, plateau for adam)", ("constant", "step", "plateau"))
    lr_decay: float = option(0.5, "learning-rate decay factor")
    lr_decay_start: int = option(4, "first epoch (0-based) decayed by the step schedule")
    min_lr: float = option(0.0, "lower bound of the learning rate")
    clip_norm: float = option(5.0, "clip the global gradient norm to this (0: off)")
    sum_over_time: bool = option(True, "loss summed over the BPTT window and averaged over the batch, as in "
                                 "Zaremba et al. (keeps their learning rates); false: mean per token")
    ar_alpha: float = option(0.0, "activation regularisation (AR): add ar_alpha * mean(h^2) of the last LSTM's "
                             "outputs after dropout to the training loss (0: off; Merity et al. 2017 use 2)")
    tar_beta: float = option(0.0, "temporal activation regularisation (TAR): add tar_beta * mean((h_t - "
                             "h_t-1)^2) of the last LSTM's outputs before dropout (0: off; Merity et al. use 1)")
    nonmono: int = option(0, "NT-ASGD (optimizer sgd): once an epoch's validation perplexity is worse than the "
                          "best epoch before the nonmono preceding it, average the weights of every later step; "
                          "validation and saved bundles use the average (0: off; Merity et al. use 5)")
    variable_bptt: bool = option(False, "a new BPTT window length per batch: bptt with probability 0.95, else "
                                 "bptt/2, then drawn from N(that, 5) (at least 5), with the learning rate scaled "
                                 "by length/bptt (Merity et al. 2017); with jit_compile each new length compiles "
                                 "once more")
    patience: int | Auto = option(AUTO, "stop after this many epochs without a better validation perplexity "
                                  "(0: never; auto: 3)")
    jit_compile: bool = option(False, "compile training and evaluation steps with XLA (measured slower than "
                               "plain TensorFlow graphs for these LSTMs on a 2-core CPU; try it on GPUs)")
    eval_batch_size: int = option(10, "streams used for validation and 'evaluate'")
    cache_window: int = option(0, "continuous cache (Grave et al. 2017) used by 'evaluate': the last N top-layer "
                               "outputs of each stream and the words that followed them lend probability to "
                               "those words (0: off; the network is unchanged; tune it with "
                               "lstmtext tune-cache)")
    cache_theta: float = option(0.3, "the cache's similarity scale: softmax over theta * h_t . h_i")
    cache_lambda: float = option(0.1, "the cache's weight: p = (1 - lambda) p_model + lambda p_cache")
    weights_dtype: str = option("float32", "dtype of stored weights: float32 or float16", ("float32", "float16"))
    seed: int = option(0, "random seed (weights, dropout, tokenizer sampling)")

    def validate(self) -> None:
        """Check values that types alone cannot."""
        positive = ("embedding_dim", "hidden_size", "num_layers", "batch_size", "bptt", "epochs",
                    "eval_batch_size")
        # "auto" values are checked once the data has chosen them.
        for key in positive:
            if not is_auto(getattr(self, key)) and getattr(self, key) <= 0:
                raise ConfigError(f"must be positive, got {getattr(self, key)}", key)
        for key in ("dropout_embedding", "dropout", "dropout_output"):
            if not is_auto(getattr(self, key)) and not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"must be in [0, 1), got {getattr(self, key)}", key)
        for key in ("dropout_words", "weight_drop"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"must be in [0, 1), got {getattr(self, key)}", key)
        if not 0.0 <= self.cache_lambda <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {self.cache_lambda}", "cache_lambda")
        for key in ("ar_alpha", "tar_beta", "nonmono", "cache_window", "cache_theta"):
            if getattr(self, key) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, key)}", key)
        if self.nonmono and self.optimizer == "adam":
            raise ConfigError("NT-ASGD averages SGD steps: needs optimizer = \"sgd\"", "nonmono")
        if not is_auto(self.lr) and self.lr <= 0:
            raise ConfigError(f"must be positive, got {self.lr}", "lr")
        if not is_auto(self.patience) and self.patience < 0:
            raise ConfigError(f"must be >= 0, got {self.patience}", "patience")
        if not is_auto(self.vocab_size) and (self.vocab_size < 0 or (self.tokenizer != "word"
                                                                     and self.vocab_size < 8)):
            raise ConfigError(f"too small: {self.vocab_size}", "vocab_size")
        dims = (self.embedding_dim, self.hidden_size)
        if self.tie_weights and not any(map(is_auto, dims)) and dims[0] != dims[1]:
            raise ConfigError("tie_weights needs embedding_dim == hidden_size", "tie_weights")
