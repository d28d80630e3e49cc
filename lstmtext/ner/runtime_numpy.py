"""The tagger's NumPy runtime: the network's forward pass and Viterbi decoding over saved arrays.

Tagging a file needs neither TensorFlow nor JAX, which makes process start
cheap and keeps inference deterministic. The layer names read here are the
ones :func:`lstmtext.ner.network.build_model` gives, so the arrays of
``weights.h5`` (or of a model in training) drive it directly.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Sequence

import numpy as np

from lstmtext.decoding import parallel
from lstmtext.decoding.lstm_numpy import fused_gates, lstm_sequences
from lstmtext.decoding.memory import keep_freed_memory
from lstmtext.errors import BundleError
from lstmtext.layers.viterbi import constraint_matrices, decode_tags
from lstmtext.ner import labels
from lstmtext.ner.features import Vocab


def lstm_numpy(x: np.ndarray, lengths: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray,
               bias: np.ndarray, reverse: bool = False, return_sequences: bool = True) -> np.ndarray:
    """A Keras LSTM (gates i, f, c, o; sigmoid and tanh) over right-padded sequences.

    Padded steps leave the state unchanged, as Keras' masking does; the
    reverse direction therefore starts at each sentence's own last token.
    Only live rows are computed, and large batches run on several cores
    (:func:`lstmtext.decoding.lstm_numpy.lstm_sequences`).
    """
    out, h, _ = lstm_sequences(x, lengths, kernel, recurrent, bias, reverse=reverse,
                               padding="carry" if return_sequences else None)
    return out if return_sequences else h


# Odd 64-bit multipliers (fixed) that hash a row of character ids to one integer.
_ROW_HASH = np.random.default_rng(20261202).integers(1, 2 ** 63, size=64, dtype=np.uint64) | np.uint64(1)


class NumpyTagger:
    """The tagger's forward pass and Viterbi decoding over saved arrays.

    Args:
        arrays: Variables by path, as read from ``weights.h5``.
        config: The bundle's configuration dict.
        vocab: The bundle's vocabulary.
        constraints: ``(pairs, starts, ends)`` for the CRF penalties.
    """

    def __init__(self, arrays: dict[str, np.ndarray], config: dict, vocab: Vocab,
                 constraints: tuple | None = None):
        keep_freed_memory()
        self.config = config
        self.vocab = vocab
        self.a = {self._short(k): v for k, v in arrays.items()}
        self._fused: dict[str, tuple] = {}  # LSTM weights in fused_gates order, by variable prefix
        self.head = config.get("head", "crf")
        self.num_layers = int(config.get("num_layers", 1))
        self.char_encoder = config.get("char_encoder", "cnn")
        need = ["word_embedding/embeddings", "emissions/kernel", "emissions/bias"]
        if self.head == "crf":
            need += ["crf/transitions", "crf/start_transitions", "crf/end_transitions"]
        for key in need:
            if key not in self.a:
                raise BundleError(f"weights lack variable '{key}'")
        self.decoding = labels.decoding_of(config)
        if self.head == "crf":
            pairs, starts, ends = constraints if constraints is not None else (None, None, None)
            pt, ps, pe = constraint_matrices(len(vocab.tags), pairs, starts, ends)
            self.trans = self.a["crf/transitions"] + pt
            self.start = self.a["crf/start_transitions"] + ps
            self.end = self.a["crf/end_transitions"] + pe

    @staticmethod
    def _short(path: str) -> str:
        # Variable paths start with the model's name ("tagger/..."); sub-layer
        # names below it are fixed by build_model.
        parts = path.split("/")
        return "/".join(parts[1:]) if parts[0] == "tagger" else path

    def _chars(self, chars: np.ndarray) -> np.ndarray:
        B, T, C = chars.shape
        flat = chars.reshape(B * T, C)
        real = flat[:, 0] != 0
        # Each distinct spelling once: text repeats its words, and padding
        # words need no features (they are zeros, as in the Keras layer).
        rows = flat[real]
        # Rows hashed to one integer each and checked: np.unique over rows
        # (axis=0) sorts them as records, several times slower.
        key = rows.astype(np.uint64) @ _ROW_HASH[:C] if C <= len(_ROW_HASH) else None
        if key is not None:
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            uniq = rows[first]
        if key is None or not np.array_equal(uniq[inverse], rows):
            uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        out = np.zeros((B * T, self._char_dim()), np.float32)
        if len(uniq):
            out[real] = self._char_features(uniq)[inverse]
        return out.reshape(B, T, -1)

    def _char_dim(self) -> int:
        if self.char_encoder == "cnn":
            return self.a["char_encoder/char_conv/bias"].shape[0]
        return 2 * self.a["char_encoder/char_bilstm/forward_char_lstm/lstm_cell/recurrent_kernel"].shape[0]

    def _char_features(self, flat: np.ndarray) -> np.ndarray:
        C = flat.shape[1]
        mask = flat != 0
        lengths = mask.sum(axis=1)
        table = self.a["char_encoder/char_embedding/embeddings"]
        if self.char_encoder == "cnn":
            kernel = self.a["char_encoder/char_conv/kernel"]  # (k, E, F)
            bias = self.a["char_encoder/char_conv/bias"]
            k = kernel.shape[0]
            left = (k - 1) // 2
            # Convolution as table look-ups: embedding @ kernel[j] for every
            # character (one extra zero row, index V, for "same" padding),
            # then shifted sums. Computed once per runtime.
            proj = getattr(self, "_conv_tables", None)
            if proj is None:
                proj = np.zeros((k, table.shape[0] + 1, kernel.shape[2]), np.float32)
                proj[:, :-1] = np.einsum("ve,kef->kvf", table, kernel)
                self._conv_tables = proj
            pad_id = table.shape[0]
            padded = np.pad(flat, ((0, 0), (left, k - 1 - left)), constant_values=pad_id)
            h = np.empty((flat.shape[0], kernel.shape[2]), np.float32)
            masked = not (mask == (np.arange(C)[None, :] < lengths[:, None])).all()
            groups = [C] if masked else np.unique(lengths)  # masked: characters after padding
            # Words of one length together, each position of each word
            # computed only up to its own length. The Keras layer convolves
            # the padded row: a word shorter than the batch's longest reads
            # the padding character's embedding (id 0) to its right, and so
            # does this (the padded row is sliced, not the word).
            for n in groups:
                rows = np.flatnonzero(lengths == n) if not masked else np.arange(len(flat))
                ids = padded[rows]
                acc = proj[0][ids[:, 0: n]]
                for j in range(1, k):
                    acc += proj[j][ids[:, j: j + n]]
                if masked:
                    acc = np.where(mask[:, :, None], acc, -np.inf)
                # tanh is increasing: the maximum's tanh is the maximum of tanh.
                h[rows] = acc.max(axis=1)
            h += bias
            np.tanh(h, out=h)
        else:
            emb = table[flat]
            parts = []
            for direction, rev in (("forward", False), ("backward", True)):
                p = f"char_encoder/char_bilstm/{direction}_char_lstm/lstm_cell/"
                parts.append(lstm_numpy(emb, lengths, self.a[p + "kernel"], self.a[p + "recurrent_kernel"],
                                        self.a[p + "bias"], reverse=rev, return_sequences=False))
            h = np.concatenate(parts, axis=-1)
        return h.astype(np.float32)

    def emissions(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Emission scores ``(B, T, num_tags)`` for encoded inputs."""
        words = inputs["words"]
        lengths = (words != 0).sum(axis=1)
        feats = [self.a["word_embedding/embeddings"][words]]
        if int(self.config.get("casing_dim", 0)):
            feats.append(self.a["casing_embedding/embeddings"][inputs["casing"]])
        if self.char_encoder != "none":
            feats.append(self._chars(inputs["chars"]))
        for f in range(len(self.vocab.features)):
            feats.append(self.a[f"feature_embedding_{f}/embeddings"][inputs["feature_ids"][:, :, f]])
        lm_layer = int(self.config.get("lm_layer", 0))
        if "lm_vectors" in inputs and lm_layer == 0:
            feats.append(inputs["lm_vectors"])
        x = np.concatenate(feats, axis=-1).astype(np.float32)
        # The two directions at once, each on half the threads: on two cores
        # a direction per core steps all rows together, which makes each
        # step's product twice the size of a split of rows.
        threads = parallel.workers(2 * len(words))
        per_direction = max(1, threads // 2)
        for i in range(self.num_layers + 1):
            if "lm_vectors" in inputs and lm_layer and i == lm_layer:
                x = np.concatenate([x, inputs["lm_vectors"].astype(np.float32)], axis=-1)
            if i == self.num_layers:
                break
            tasks = []
            for direction, rev in (("forward", False), ("backward", True)):
                tasks.append(functools.partial(
                    lstm_sequences, x, lengths, *self._fused_weights(f"bilstm_{i}/{direction}_lstm_{i}/lstm_cell/"),
                    reverse=rev, fused=True, threads=per_direction))
            outs = parallel.run_concurrently(tasks) if threads > 1 else [task() for task in tasks]
            x = np.concatenate([out for out, _, _ in outs], axis=-1)
        return x @ self.a["emissions/kernel"] + self.a["emissions/bias"]

    def lm_dim(self) -> int:
        """Width of the language-model vectors the weights expect (0 without language models)."""
        if not self.config.get("lm"):
            return 0
        layer = int(self.config.get("lm_layer", 0))
        if layer == 0:
            others = self.a["word_embedding/embeddings"].shape[1] + len(self.vocab.features) * int(
                self.config.get("feature_dim", 20))
            if int(self.config.get("casing_dim", 0)):
                others += self.a["casing_embedding/embeddings"].shape[1]
            if self.char_encoder != "none":
                others += self._char_dim()
        else:
            others = 2 * self.a[f"bilstm_{layer - 1}/forward_lstm_{layer - 1}/lstm_cell/recurrent_kernel"].shape[0]
        after = (f"bilstm_{layer}/forward_lstm_{layer}/lstm_cell/kernel" if layer < self.num_layers
                 else "emissions/kernel")
        return int(self.a[after].shape[0] - others)

    def _fused_weights(self, prefix: str):
        """An LSTM's weights in :func:`fused_gates` order, arranged once per tagger."""
        if prefix not in self._fused:
            self._fused[prefix] = fused_gates(self.a[prefix + "kernel"], self.a[prefix + "recurrent_kernel"],
                                              self.a[prefix + "bias"])
        return self._fused[prefix]

    def decode(self, emissions: np.ndarray, lengths: Sequence[int]) -> list[np.ndarray]:
        """Best tag ids per sentence."""
        crf = (self.trans, self.start, self.end) if self.head == "crf" else None
        return decode_tags(emissions, lengths, crf, self.decoding)

    def tag(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Tag ids for each sentence of an encoded batch."""
        lengths = (inputs["words"] != 0).sum(axis=1)
        # The LSTM's per-step products are small; on a busy machine a second
        # BLAS thread that waits for a core made them ten times slower in our
        # measurements, and one thread lost little on an idle machine.
        with parallel.one_blas_thread() or contextlib.nullcontext():
            return self.decode(self.emissions(inputs), lengths)
