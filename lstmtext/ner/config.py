"""Hyperparameters of the sequence tagger, with their defaults.

One tagger labels any sequence. Its labels are of one of two kinds
(``label_kind``): **spans** (entities, chunks: IOB1/IOB2/BIOES tags, scored by
entity F1; the model works in BIOES and answers in the data's scheme) or
**tokens** (one label per token from any set: part-of-speech tags, protein
states H/E/C; scored by accuracy). ``auto`` picks spans when every tag of the
training data reads as ``O`` or ``B-/I-/E-/S-`` plus a type, else tokens.
Its input is words (``input = "words"``: word, casing and character features,
optional extra CoNLL columns as features) or characters (``input = "chars"``:
every character is a token, as in protein and DNA sequences; no casing,
lower-casing or character-in-word features).

The defaults are the BiLSTM-CRF of Lample et al. (2016) with a character CNN
(Ma & Hovy 2016) and a casing feature. Keys set to ``auto`` (width, dropout,
optimizer and learning rate, batch size, epochs, patience) are chosen from the
training data once it is read (:func:`lstmtext.training.auto.ner_values`);
``benchmarks/recipes/ner-conll03.toml`` sets them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmtext.config import AUTO, Auto, is_auto, option
from lstmtext.errors import ConfigError

SCHEMES = ("auto", "iob1", "iob2", "bioes")
LABEL_KINDS = ("auto", "spans", "tokens")
INPUTS = ("words", "chars")


@dataclass
class NERConfig:
    """Every setting of ``lstmtext train tag`` (alias ``train ner``); see ``lstmtext config ner``."""

    # data
    label_kind: str = option("auto", "spans (IOB1/IOB2/BIOES entities or chunks, entity F1) or tokens (one "
                             "label per token from any set, accuracy); auto: spans when every training tag "
                             "reads as O or B-/I-/E-/S-TYPE", LABEL_KINDS)
    input: str = option("words", "words (a token per CoNLL line or per word of text) or chars (every character "
                        "a token, e.g. protein or DNA sequences; no casing, lower-casing or character "
                        "features)", INPUTS)
    feature_columns: str = option("", "extra CoNLL columns read as input features, comma-separated, 1-based "
                                  "(e.g. \"2\" for the POS column of CoNLL-2000); predict and evaluate "
                                  "input must carry them")
    feature_dim: int = option(20, "embedding size of each feature column")
    max_length: int = option(1000, "tokens per sequence at most: longer training sequences are cut into "
                             "pieces of this length, longer inputs are tagged in overlapping windows of it "
                             "(bounded memory; 0: no limit)")
    word_column: int = option(1, "CoNLL column holding the words (1-based; negative counts from the end)")
    tag_column: int = option(-1, "CoNLL column holding the tags (1-based; -1: the last column)")
    scheme: str = option("auto", "tag scheme of the data: auto (detect), iob1, iob2 (BIO) or bioes", SCHEMES)
    tag_scheme: str = option("bioes", "scheme the model uses internally (predictions are converted back to "
                             "the data's scheme)", ("iob2", "bioes"))
    on_malformed: str = option("error", "malformed lines (wrong column count, a tag the scheme forbids): "
                               "error stops with file and line; warn counts them, skips bad sentences "
                               "and repairs bad tags as conlleval reads them", ("error", "warn"))
    # vocabulary and features
    lowercase: bool = option(True, "look words up lowercased (case is given by the casing feature and "
                             "the characters)")
    normalize_digits: bool = option(True, "map every digit to 0 before word look-up")
    min_count: int = option(1, "training words seen fewer times map to <unk>")
    singleton_unk: float = option(0.5, "probability of replacing a word seen once in training by <unk> "
                                  "during training, so <unk> is learned (Lample et al.)")
    embeddings: str | None = option(None, "GloVe/word2vec text file to initialise word embeddings")
    max_word_length: int = option(30, "characters kept per word for the character features")
    lm: str = option("", "language-model bundles (from lstmtext train lm; a forward and a backward one, "
                     "direction=backward) whose top LSTM output at each word is a feature beside the word, "
                     "casing and character features (TagLM), comma-separated; frozen, stored in the bundle (whose "
                     "config names the copies, lm/0, lm/1, ...)")
    lm_weights_dtype: str = option("float16", "dtype of the language models' weights stored in the bundle (and "
                                   "used in training, so tagging reads the same)", ("float32", "float16"))
    lm_layer: int = option(0, "where the language-model vectors join the network: 0 beside the word features "
                           "(the first BiLSTM's input), 1 after the first BiLSTM (TagLM's choice with two "
                           "layers, Peters et al. 2017), up to num_layers (the emission layer's input)")
    # network
    word_dim: int | Auto = option(AUTO, "word embedding size (must match --embeddings when given; auto: the "
                                  "embeddings file's size, else 100)")
    casing_dim: int = option(10, "casing feature embedding size (0: no casing feature)")
    char_encoder: str = option("cnn", "character features: cnn, lstm or none", ("cnn", "lstm", "none"))
    char_dim: int = option(30, "character embedding size")
    char_filters: int = option(100, "character CNN filters")
    char_kernel: int = option(3, "character CNN width")
    char_hidden: int = option(50, "character BiLSTM units per direction")
    hidden_size: int | Auto = option(AUTO, "word BiLSTM units per direction (auto: from the training tokens)")
    num_layers: int | Auto = option(AUTO, "stacked word BiLSTM layers (1 or 2; auto: 1)")
    dropout: float | Auto = option(AUTO, "dropout on the word features and on each BiLSTM's output (auto: "
                                   "from the training tokens)")
    head: str = option("crf", "output layer: crf or softmax", ("crf", "softmax"))
    decode: str = option("auto", "how the CRF picks per-token labels: marginal (each token's most probable "
                         "label, forward-backward: the most tokens right) or viterbi (the most probable "
                         "sequence); auto: marginal. Spans always decode with viterbi (well-formed spans)",
                         ("auto", "viterbi", "marginal"))
    # training
    batch_size: int | Auto = option(AUTO, "sentences per batch (auto: from the training sentences)")
    epochs: int | Auto = option(AUTO, "maximum epochs (auto: enough steps for the data; early stopping ends it)")
    optimizer: str | Auto = option(AUTO, "adam, nadam or sgd (auto: nadam)", ("adam", "nadam", "sgd"))
    lr: float | Auto = option(AUTO, "learning rate (auto: 0.002 for adam and nadam, 0.01 for sgd)")
    lr_schedule: str = option("plateau", "constant, step or plateau (decay when validation F1 does not "
                              "improve)", ("constant", "step", "plateau"))
    lr_decay: float = option(0.7, "learning-rate decay factor")
    lr_decay_start: int = option(10, "first epoch (0-based) decayed by the step schedule")
    min_lr: float = option(0.0001, "lower bound of the learning rate")
    clip_norm: float = option(5.0, "clip the global gradient norm to this (0: off)")
    patience: int | Auto = option(AUTO, "stop after this many epochs without a better validation F1 (0: never; "
                                  "auto: from the data size)")
    jit_compile: bool = option(False, "compile training steps with XLA (helps on a GPU; costs a compile "
                               "per sentence-length bucket)")
    length_bucket: int = option(8, "pad batch lengths to a multiple of this (fewer step shapes to compile)")
    eval_batch_size: int = option(256, "sentences per batch when validating, evaluating and tagging")
    weights_dtype: str = option("float32", "dtype of stored weights", ("float32", "float16"))
    seed: int = option(0, "random seed")

    def validate(self) -> None:
        """Check values that types alone cannot."""
        positive = ("word_dim", "feature_dim", "char_dim", "hidden_size", "num_layers", "batch_size", "epochs",
                    "eval_batch_size", "max_word_length", "min_count", "length_bucket", "char_filters",
                    "char_kernel", "char_hidden")
        # "auto" values are checked once the data has chosen them.
        for key in positive:
            if not is_auto(getattr(self, key)) and getattr(self, key) <= 0:
                raise ConfigError(f"must be positive, got {getattr(self, key)}", key)
        if not is_auto(self.num_layers) and self.num_layers > 2:
            raise ConfigError(f"must be 1 or 2, got {self.num_layers}", "num_layers")
        if self.lm_layer < 0 or (not is_auto(self.num_layers) and self.lm_layer > self.num_layers):
            raise ConfigError(f"must be between 0 and num_layers, got {self.lm_layer}", "lm_layer")
        if self.casing_dim < 0:
            raise ConfigError(f"must be >= 0, got {self.casing_dim}", "casing_dim")
        for key in ("dropout", "singleton_unk"):
            if not is_auto(getattr(self, key)) and not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"must be in [0, 1), got {getattr(self, key)}", key)
        if not is_auto(self.lr) and self.lr <= 0:
            raise ConfigError(f"must be positive, got {self.lr}", "lr")
        if not is_auto(self.patience) and self.patience < 0:
            raise ConfigError(f"must be >= 0, got {self.patience}", "patience")
        for key in ("word_column", "tag_column"):
            if getattr(self, key) == 0:
                raise ConfigError("columns count from 1 (negative: from the end)", key)
        if self.word_column == self.tag_column:
            raise ConfigError("word and tag columns must differ", "tag_column")
        if self.max_length < 0 or 0 < self.max_length < 8:
            raise ConfigError(f"must be 0 (no limit) or at least 8, got {self.max_length}", "max_length")
        columns = parse_columns(self.feature_columns)
        for c in columns:
            if c in (self.word_column, self.tag_column):
                raise ConfigError(f"column {c} is the word or the tag column", "feature_columns")
        if columns and self.input == "chars":
            raise ConfigError("character input has no columns to read features from", "feature_columns")


def parse_columns(text: str) -> list[int]:
    """``"2,3"`` -> ``[2, 3]`` (1-based CoNLL columns; negative count from the end).

    Raises:
        ConfigError: naming ``feature_columns`` for anything else.
    """
    out: list[int] = []
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(f"expected comma-separated column numbers, got {text!r}", "feature_columns") from None
        if value == 0:
            raise ConfigError("columns count from 1 (negative: from the end)", "feature_columns")
        if value in out:
            raise ConfigError(f"column {value} is given twice", "feature_columns")
        out.append(value)
    return out
