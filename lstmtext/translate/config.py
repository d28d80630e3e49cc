"""Hyperparameters of the translator, with their defaults.

Keys set to ``auto`` (vocabulary size, widths, depth, dropout, optimizer and
learning rate, batch size, epochs, patience) are chosen from the training
pairs once they are read (:func:`lstmtext.training.auto.translate_values`);
the Multi30k recipe (benchmarks/recipes/mt-multi30k.toml) sets them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmtext.config import AUTO, Auto, is_auto, option
from lstmtext.errors import ConfigError


@dataclass
class TranslateConfig:
    """Every setting of ``lstmtext train translate``; see ``lstmtext config translate``."""

    # data
    max_length: int = option(100, "training pairs with more source or target pieces are skipped (counted "
                             "in config.json under data.skipped_long)")
    max_line_chars: int = option(2000, "training lines with more characters are skipped (counted) before "
                                 "tokenisation")
    # tokenizer
    joint_vocab: bool = option(True, "one SentencePiece model for both languages (false: one per side)")
    vocab_size: int | Auto = option(AUTO, "SentencePiece vocabulary size (per model; auto: from the training "
                                    "text's word types; a size the data cannot support is lowered with a "
                                    "warning)")
    tokenizer: str = option("unigram", "tokenizer type: unigram or bpe (SentencePiece), or word (whitespace "
                            "vocabulary of vocab_size words)", ("unigram", "bpe", "word"))
    source_tokenizer: str = option("", "use this SentencePiece .model for the source side instead of training one")
    target_tokenizer: str = option("", "use this SentencePiece .model for the target side instead of training one")
    # network
    embedding_dim: int | Auto = option(AUTO, "source and target embedding size (auto: from the training pairs)")
    encoder_units: int | Auto = option(AUTO, "units of each direction of the bidirectional LSTM encoder (auto: "
                                       "from the training pairs)")
    encoder_layers: int | Auto = option(AUTO, "bidirectional LSTM layers (1 or 2; auto: from the training pairs)")
    decoder_units: int | Auto = option(AUTO, "decoder LSTM units (also the attentional vector size; auto: from "
                                       "the training pairs)")
    decoder_layers: int | Auto = option(AUTO, "decoder LSTM layers (1 or 2; auto: 1)")
    attention: str = option("luong", "attention score: luong (general) or bahdanau (additive)",
                            ("luong", "bahdanau"))
    attention_units: int = option(256, "hidden size of the bahdanau scoring layer")
    tie_embeddings: bool = option(True, "share the target embedding with the output layer (a projection "
                                  "to embedding_dim is added when sizes differ)")
    dropout: float | Auto = option(AUTO, "dropout on embeddings, between encoder layers and before the output "
                                   "layer (auto: from the training pairs)")
    label_smoothing: float = option(0.1, "label smoothing of the training loss")
    # training
    batch_size: int | Auto = option(AUTO, "sentence pairs per batch (auto: from the training pairs)")
    pad_multiple: int = option(8, "pad batch lengths to a multiple of this (fewer compiled shapes)")
    epochs: int | Auto = option(AUTO, "maximum epochs (auto: enough steps for the data; early stopping ends it)")
    epoch_pairs: int = option(0, "training pairs per epoch (0: all); smaller values validate and checkpoint "
                              "more often, each epoch continuing through a reshuffled stream of the data")
    optimizer: str | Auto = option(AUTO, "adam or sgd (auto: adam)", ("adam", "sgd"))
    lr: float | Auto = option(AUTO, "learning rate (auto: 0.001 for adam, 1.0 for sgd)")
    lr_schedule: str = option("plateau", "constant, step or plateau (decay when validation does not improve)",
                              ("constant", "step", "plateau"))
    lr_decay: float = option(0.5, "learning-rate decay factor")
    lr_decay_start: int = option(8, "first epoch (0-based) decayed by the step schedule")
    min_lr: float = option(1e-5, "lower bound of the learning rate")
    clip_norm: float = option(5.0, "clip the global gradient norm (0: off)")
    patience: int | Auto = option(AUTO, "stop after this many epochs without improvement (0: never; auto: 4)")
    early_stopping: str = option("bleu", "validation metric for best model and early stopping: bleu (greedy "
                                 "decoding) or loss", ("bleu", "loss"))
    jit_compile: bool = option(True, "compile training and decoding steps with XLA")
    valid_runtime: str = option("numpy", "decoder for validation BLEU: numpy (over the current weights; no "
                                "per-shape compilation, best on CPU) or keras (compiled steps, best on GPU); "
                                "'lite' is an older name of numpy", ("numpy", "keras", "lite"))
    # decoding
    beam: int = option(5, "default beam size for predict/evaluate (1: greedy)")
    length_penalty: float = option(0.6, "GNMT length penalty alpha: score / ((5 + len) / 6) ** alpha")
    max_length_ratio: float = option(2.0, "longest output: max_length_ratio * source pieces + max_length_extra")
    max_length_extra: int = option(10, "added to the ratio-based output length limit")
    decode_batch_size: int = option(64, "sentences decoded together")
    max_source_pieces: int = option(400, "longer inputs are truncated to this many pieces at translation time")
    weights_dtype: str = option("float32", "dtype of stored weights: float32 or float16", ("float32", "float16"))
    seed: int = option(0, "random seed (weights, dropout, batching, tokenizer sampling)")

    def validate(self) -> None:
        """Check values that types alone cannot."""
        positive = ("max_length", "max_line_chars", "embedding_dim", "encoder_units", "decoder_units",
                    "attention_units", "batch_size", "pad_multiple", "epochs", "beam", "decode_batch_size",
                    "max_source_pieces")
        # "auto" values are checked once the data has chosen them.
        for key in positive:
            if not is_auto(getattr(self, key)) and getattr(self, key) <= 0:
                raise ConfigError(f"must be positive, got {getattr(self, key)}", key)
        for key in ("encoder_layers", "decoder_layers"):
            if not is_auto(getattr(self, key)) and getattr(self, key) not in (1, 2):
                raise ConfigError(f"must be 1 or 2, got {getattr(self, key)}", key)
        for key in ("dropout", "label_smoothing"):
            if not is_auto(getattr(self, key)) and not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"must be in [0, 1), got {getattr(self, key)}", key)
        if not is_auto(self.lr) and self.lr <= 0:
            raise ConfigError(f"must be positive, got {self.lr}", "lr")
        if not is_auto(self.patience) and self.patience < 0:
            raise ConfigError(f"must be >= 0, got {self.patience}", "patience")
        if self.epoch_pairs < 0:
            raise ConfigError(f"must be >= 0, got {self.epoch_pairs}", "epoch_pairs")
        if not is_auto(self.vocab_size) and self.vocab_size < 16:
            raise ConfigError(f"too small: {self.vocab_size}", "vocab_size")
        if self.max_length_ratio <= 0:
            raise ConfigError(f"must be positive, got {self.max_length_ratio}", "max_length_ratio")
        if self.length_penalty < 0:
            raise ConfigError(f"must be >= 0, got {self.length_penalty}", "length_penalty")
