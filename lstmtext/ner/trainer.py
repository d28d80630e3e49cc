"""Training the tagger: data preparation and the task object for the shared loop."""

from __future__ import annotations

import collections
import dataclasses
import time
from pathlib import Path

import numpy as np

from lstmtext import bundle as bundle_io
from lstmtext.errors import BundleError, DataError, UsageError
from lstmtext.ner import fasta, labels, schemes
from lstmtext.ner.config import NERConfig, parse_columns
from lstmtext.ner.data import Corpus, read_tagged
from lstmtext.ner.features import UNK_ID, Vocab, encode, encode_tags, round_up
from lstmtext.ner.metrics import entity_scores, label_scores
from lstmtext.training.loop import Batch


def read_corpora(paths, config: NERConfig, encoding: str, reporter, label_files=None,
                 mask_files=None, option: str = "--") -> list[Corpus]:
    """Read tagged files, reporting the scheme (or per-token labels) and any malformed lines.

    With ``label_kind = auto`` the first file decides the kind for the others.
    A FASTA file takes its labels (and mask) from ``label_files`` (and
    ``mask_files``), matched by position; its records marked
    ``VALIDATION=True`` go to the corpus' ``held``. ``option`` prefixes the
    option names in messages (``--valid-`` for validation files).
    """
    out = []
    kind = config.label_kind
    fastas = [p for p in paths if fasta.is_fasta(p)]
    if fastas and len(label_files or []) != len(fastas):
        raise UsageError(f"{len(fastas)} FASTA file(s) need as many {option}labels files, got "
                         f"{len(label_files or [])}")
    if mask_files and len(mask_files) != len(fastas):
        raise UsageError(f"{len(fastas)} FASTA file(s) need as many {option}mask files (or none), got "
                         f"{len(mask_files)}")
    for path in paths:
        if fasta.is_fasta(path):
            k = fastas.index(path)
            corpus = _fasta_corpus(path, label_files[k], mask_files[k] if mask_files else None, encoding, kind)
        else:
            corpus = read_tagged(path, config.word_column, config.tag_column, config.scheme,
                                 config.on_malformed, encoding, kind, parse_columns(config.feature_columns))
        kind = corpus.kind
        what = (f"scheme {corpus.scheme.upper()}" if corpus.kind == labels.SPANS else
                f"per-token labels ({len(labels.label_set(s.tags for s in corpus.sentences))} distinct)")
        note = f"{path}: {len(corpus.sentences)} sentences, {corpus.tokens} tokens, {what}"
        if corpus.held:
            note += f"; {len(corpus.held):,} more marked VALIDATION=True"
        if corpus.problems:
            note += f", {corpus.problems} malformed lines or tags (on_malformed=warn)"
        reporter.message(note)
        for m in corpus.messages:
            reporter.message("  " + m)
        out.append(corpus)
    return out


class NERTask:
    """The tagger as a :class:`~lstmtext.training.loop.TrainTask`.

    Args:
        config: Resolved configuration.
        vocab: Vocabulary (its tags are the internal tag set).
        model: Compiled Keras model from :func:`~lstmtext.ner.network.build_model`.
        train: Training sentences ``(tokens, internal tags)`` (``None`` for a masked tag).
        valid: Validation tokens and gold tags in the validation data's scheme.
        valid_scheme: That scheme (spans).
        meta: Extra fields for ``config.json``.
        fixed_chars: Pad characters to the longest word and every batch to
            ``batch_size`` rows (compiled steps see fewer shapes).
        dist: The strategy it trains under (default: one device).
        train_features: Feature columns of each training sentence (``[column][token]``).
        valid_features: Likewise for the validation sentences.
        lm: The frozen language models whose vectors the tagger reads
            (:class:`~lstmtext.ner.lm_features.LMFeatures`), or ``None``.
        train_vectors: Their vectors for each training sentence, computed once.

    Validation scores entity F1 for span labels and per-token accuracy for
    per-token labels; that score picks the best model.
    """

    monitor_mode = "max"

    def __init__(self, config: NERConfig, vocab: Vocab, model, train: list[tuple[list[str], list[str]]],
                 valid: list[tuple[list[str], list[str]]], valid_scheme: str, meta: dict, fixed_chars: bool,
                 dist=None, train_features: list | None = None, valid_features: list | None = None,
                 lm=None, train_vectors: list | None = None):
        from lstmtext.training.distribute import Distribution

        self.kind = labels.kind_of(dataclasses.asdict(config))
        self.monitor = "f1" if self.kind == labels.SPANS else "accuracy"
        self.train_features = train_features
        self.valid_features = valid_features
        self.lm = lm
        self.train_vectors = train_vectors
        self.config = config
        self.vocab = vocab
        self.model = model
        self.train = train
        self.valid = valid
        self.valid_scheme = valid_scheme
        self.meta = meta
        self.fixed_chars = fixed_chars
        self.dist = dist or Distribution()
        self.train_ids = [vocab.word_ids(t) for t, _ in train]
        counts = collections.Counter(i for ids in self.train_ids for i in ids)
        self.singletons = {i for i, c in counts.items() if c == 1}
        self.last_per_type: dict = {}

    def steps_per_epoch(self) -> int:
        return -(-len(self.train) // self.config.batch_size)

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def train_batches(self, epoch: int):
        """Shuffled batches of similar length; singletons replaced by ``<unk>`` at random."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed * 1000 + epoch)  # per epoch, so --resume replays exactly
        order = rng.permutation(len(self.train))
        # Sort within windows of 50 batches: little padding, still random.
        window = cfg.batch_size * 50
        batches = []
        for k in range(0, len(order), window):
            chunk = sorted(order[k: k + window], key=lambda i: len(self.train[i][0]))
            batches += [chunk[j: j + cfg.batch_size] for j in range(0, len(chunk), cfg.batch_size)]
        rng.shuffle(batches)
        width = self.vocab.max_word_length if self.fixed_chars else None
        for idx in batches:
            tokens = [self.train[i][0] for i in idx]
            ids = []
            for i in idx:
                row = list(self.train_ids[i])
                if cfg.singleton_unk > 0:
                    draws = rng.random(len(row))
                    row = [UNK_ID if (w in self.singletons and d < cfg.singleton_unk) else w
                           for w, d in zip(row, draws)]
                ids.append(row)
            feats = None if self.train_features is None else [self.train_features[i] for i in idx]
            vectors = None if self.lm is None else [self.train_vectors[i] for i in idx]
            x = encode(self.vocab, tokens, cfg.length_bucket, width, ids, feats, vectors)
            y = encode_tags(self.vocab, [self.train[i][1] for i in idx], x["words"].shape[1])
            if (self.fixed_chars or self.dist.distributed) and len(idx) < cfg.batch_size:
                # Pad a short last batch with empty sentences (all padding,
                # no loss): compiled steps are not compiled again for another
                # batch size, and every replica gets its equal share of rows.
                extra = cfg.batch_size - len(idx)
                x = {k: np.pad(v, [(0, extra)] + [(0, 0)] * (v.ndim - 1)) for k, v in x.items()}
                y = np.pad(y, [(0, extra), (0, 0)], constant_values=-1)
            x, y = self.dist.local_batch(x, y)
            yield Batch(x, y, int(sum(len(t) for t in tokens)))

    def numpy_tagger(self):
        from lstmtext.ner.labels import constraints_for
        from lstmtext.ner.network import model_arrays
        from lstmtext.ner.runtime_numpy import NumpyTagger

        return NumpyTagger(model_arrays(self.model), dataclasses.asdict(self.config), self.vocab,
                           constraints_for(self.vocab, dataclasses.asdict(self.config)))

    def validate(self) -> dict:
        """Entity F1 (spans) or accuracy (tokens) on the validation data, tagged by the NumPy runtime (as shipped)."""
        from lstmtext.ner.tagger import tag_in_windows

        t0 = time.perf_counter()
        net = self.numpy_tagger()
        sentences = [t for t, _ in self.valid]
        def tag(batch, feats):
            return net.tag(encode(self.vocab, batch, features=feats, lm_vectors=self._valid_vectors(batch)))

        ids = tag_in_windows(tag, sentences, self.valid_features, self.config.eval_batch_size,
                             self.config.max_length)
        pred = [[self.vocab.tags[j] for j in row] for row in ids]
        gold = [g for _, g in self.valid]
        if self.kind == labels.TOKENS:
            scores = label_scores(gold, pred)
            self.last_per_type = {"per_label": scores["per_label"], "confusion": scores["confusion"]}
            return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                    "valid_seconds": time.perf_counter() - t0}
        scores = entity_scores(gold, [schemes.convert(seq, self.valid_scheme) for seq in pred])
        self.last_per_type = scores["per_type"]
        return {"precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                "accuracy": scores["accuracy"], "valid_seconds": time.perf_counter() - t0}

    def _valid_vectors(self, batch) -> list | None:
        """The language models' vectors of validation sequences, computed at the first validation only."""
        if self.lm is None:
            return None
        cache = self.__dict__.setdefault("_vectors", {})
        missing = [s for s in dict.fromkeys(map(tuple, batch)) if s not in cache]
        if missing:
            cache.update(zip(missing, self.lm(missing)))
        return [cache[tuple(s)] for s in batch]

    def write_bundle(self, directory: Path, metrics: dict, history: list) -> None:
        from lstmtext.weights import save_model_weights

        bundle_io.write_config(directory, "ner", dataclasses.asdict(self.config),
                               **{**self.meta, "training": self.dist.describe()})
        bundle_io.write_json(directory, "vocab.json", self.vocab.to_json())
        if self.lm is not None:
            self.lm.save(directory, self.config.lm_weights_dtype)
        save_model_weights(self.model, directory / "weights.h5", self.config.weights_dtype)
        detail = self.last_per_type if self.kind == labels.TOKENS else {"per_type": self.last_per_type}
        bundle_io.write_json(directory, "metrics.json", {**metrics, **detail})
        bundle_io.write_json(directory, "history.json", history)


def _restore(output: Path) -> tuple[NERConfig, Vocab, dict]:
    """Config, vocabulary and metadata of ``output/model-last`` for ``--resume``."""
    last = bundle_io.read(output / "model-last", "ner")
    known = set(NERConfig.__dataclass_fields__)
    unknown = set(last.config) - known
    if unknown:
        raise BundleError(f"{last.path}: unknown config keys {sorted(unknown)}")
    config = NERConfig(**last.config)
    vocab = Vocab.from_json(last.json("vocab.json"), last.config)
    meta = {k: v for k, v in last.meta.items()
            if k not in ("format", "format_version", "task", "config", "versions", "created", "training")}
    return config, vocab, meta


def train(options, reporter) -> dict:
    """Train a tagger; see :func:`lstmtext.ner.api.train`."""
    import keras

    from lstmtext.config import resolve
    from lstmtext.layers import sequence_lstm
    from lstmtext.ner import init as ner_init
    from lstmtext.ner.network import build_model
    from lstmtext.training import init_from
    from lstmtext.training.loop import LoopConfig, fit, output_lock, set_seed, start_training

    from lstmtext.training import auto

    if not options.train:
        raise UsageError("--train is required")
    output = Path(options.output)
    dist, _ = start_training(options)  # resuming reads model-last below
    init = init_from.read_init(options, "ner")
    extra = {k: v for k, v in (options.extra or {}).items() if k in NERConfig.__dataclass_fields__}
    if options.epochs is not None:
        extra["epochs"] = options.epochs
    if options.seed is not None:
        extra["seed"] = options.seed
    # Only the chief writes into output; other workers write into a temporary copy.
    with dist.output(output, options.resume) as out, output_lock(out):
        if options.resume:
            base, vocab, meta = _restore(out)
            config = resolve(NERConfig, None, options.sets, {"epochs": extra.get("epochs")}, base=base)
        else:
            config = resolve(NERConfig, options.config_file, options.sets, extra)
            if init is not None:  # the bundle's sizes, scheme and vocabulary settings
                config = ner_init.init_config(config, init, options)
        if any(fasta.is_fasta(p) for p in options.train) and config.input != "chars":
            config = dataclasses.replace(config, input="chars")  # FASTA holds sequences of characters
        if config.input == "chars" and not all(fasta.is_fasta(p) for p in options.train):
            raise UsageError("input = chars trains on FASTA sequences with --labels (and --mask)")
        config, forced = _input_settings(config)
        train_corpora = read_corpora(options.train, config, options.encoding, reporter,
                                     (options.extra or {}).get("labels"), (options.extra or {}).get("mask"))
        kind = train_corpora[0].kind
        if config.label_kind == "auto":
            config = dataclasses.replace(config, label_kind=kind)
        if init is not None and config.lm:
            raise UsageError("--init and --lm exclude each other (a tagger from --init keeps the language models "
                             "it was trained with, or has none)")
        if init is not None and init.meta.get("lm_features"):  # its stored copies, read in _language_models
            config = dataclasses.replace(config, lm=init.config.get("lm") or "lm")
        if init is not None:
            ner_init.check_kind(init, config.input, kind)
        train_sentences, valid_sentences, held_out = _validation_sentences(options, config, train_corpora,
                                                                           reporter)
        internal = config.tag_scheme
        valid_scheme = valid_sentences[1]
        train_data, train_features = _pieces(train_sentences, config, internal if kind == labels.SPANS else None)
        valid_data = [(s.tokens, schemes.convert(s.tags, valid_scheme) if kind == labels.SPANS else s.tags)
                      for s in valid_sentences[0]]
        valid_features = [s.features for s in valid_sentences[0]] if train_features is not None else None
        # Auto keys follow the training sentences; the summary block says which and why.
        stats = auto.TaggedStats.from_sentences(
            train_data if kind == labels.SPANS else [(t, ["O"] * len(t)) for t, _ in train_data])
        config, chosen = auto.resolve(config, auto.ner_values(stats, config, _embeddings_dim(config, options)))
        notes = [forced] if forced else []
        if held_out is not None:
            notes.append(f"validation: {held_out['held_out']:,} of the {held_out['of']:,} sentences held out "
                         f"(no --valid; {held_out['rule']})")
        embeddings = None
        if not options.resume:
            vocab, meta, embeddings = _new_vocabulary(config, options, train_data, valid_data,
                                                      train_corpora[0].scheme, reporter, train_features)
            if init is not None:  # the bundle's inventories first, then what the data adds
                vocab, meta, init_vocab = ner_init.merge_vocabulary(init, vocab, meta, train_data, reporter)
            if held_out is not None:
                meta["train_data"]["valid"] = "held out from train"
                meta["train_data"]["holdout"] = held_out
        notes.append(f"vocabulary: {len(vocab.words)} words, {len(vocab.chars)} characters, "
                     + (f"{len(vocab.tags)} tags ({internal.upper()})" if kind == labels.SPANS else
                        f"{len(vocab.tags)} per-token labels ({' '.join(vocab.tags[:12])}"
                        f"{' ...' if len(vocab.tags) > 12 else ''})")
                     + "".join(f", feature column {c}: {len(v)} values"
                               for c, v in zip(parse_columns(config.feature_columns), vocab.features)))
        def estimate(c):
            return auto.epoch_seconds("ner", c, stats.tokens, len(vocab.tags), -(-stats.sentences // c.batch_size))

        config, chosen = auto.fit_options_budget("ner", config, chosen, estimate, options)
        per_epoch = estimate(config)
        reporter.message(auto.summary(stats, chosen, per_epoch, config.epochs, notes))
        lm, train_vectors = _language_models(config, options, out, train_data, reporter, init)
        if lm is not None:  # the bundle names its stored copies; the sources are in lm_features
            meta["lm_features"] = lm.describe()
            config = dataclasses.replace(config, lm=",".join(e["path"] for e in meta["lm_features"]))
        set_seed(config.seed)
        jax = keras.backend.backend() == "jax"
        if jax and not config.jit_compile:
            # Without jit, JAX runs each op eagerly: about 100x slower.
            config = dataclasses.replace(config, jit_compile=True)
        dist.check_same("vocabulary and training data", [vocab.to_json(), train_data])
        dist.per_replica_batch(config.batch_size)  # the global batch must divide over the replicas
        with dist.scope():
            from lstmtext.ner.labels import constraints_for

            masked = any(t is None for _, tags in train_data for t in tags)
            model = build_model(config, vocab, constraints_for(vocab, dataclasses.asdict(config)), embeddings,
                                masked=masked, lm_dim=lm.dim if lm is not None else 0)
            if init is not None:
                ner_init.load_weights(model, init, init_vocab, vocab)
        # The BiLSTMs' whole-sequence kernel (masks too) on a TensorFlow CPU: same function, faster.
        sequence_lstm.install(model)
        dist.prepare(model)
        task = NERTask(config, vocab, model, train_data, valid_data, valid_scheme, meta,
                       fixed_chars=bool(config.jit_compile), dist=dist, train_features=train_features,
                       valid_features=valid_features, lm=lm, train_vectors=train_vectors)
        loop = LoopConfig(epochs=config.epochs, lr=config.lr, lr_schedule=config.lr_schedule,
                          lr_decay=config.lr_decay, lr_decay_start=config.lr_decay_start, min_lr=config.min_lr,
                          patience=config.patience, seed=config.seed, budget=options.budget,
                          budget_started=options.started)
        with dist.failures(out):
            result = fit(task, out, loop, reporter, resume=options.resume)
        best = bundle_io.read(out / "model-best", "ner")
        best_metrics = best.json("metrics.json") or {}
        if kind == labels.SPANS:
            result["per_type"] = best_metrics.get("per_type", {})
        else:
            result["per_label"] = best_metrics.get("per_label", {})
        result["label_kind"] = kind
    result["output"] = str(output)
    return result


def _language_models(config: NERConfig, options, output: Path, train_data, reporter, init=None):
    """The frozen language models of ``config.lm`` and their vectors for the training sentences, or ``(None, None)``.

    A resumed run reads the copies stored in ``model-last`` (the bundle keeps them), a run from
    ``--init`` those of the init bundle.
    """
    from lstmtext.ner.lm_features import LMFeatures

    if not config.lm:
        return None, None
    t0 = time.perf_counter()
    if options.resume:
        lm = LMFeatures.from_bundle(bundle_io.read(output / "model-last", "ner"))
    elif init is not None and init.meta.get("lm_features"):
        lm = LMFeatures.from_bundle(init)
    else:
        lm = LMFeatures.from_paths(config.lm, config.lm_weights_dtype)
    sentences = [t for t, _ in train_data]
    lm.check_coverage(sentences, options.train[0])
    vectors = lm.all_vectors(sentences)
    reporter.message(f"language models: {', '.join(f'{m.name} ({m.direction}, {m.dim} units)' for m in lm.models)}"
                     f"; {lm.dim} features per word for {len(sentences):,} training sentences in "
                     f"{time.perf_counter() - t0:.1f} s")
    return lm, vectors


def _fasta_corpus(path, label_file, mask_file, encoding: str, kind: str) -> Corpus:
    """A FASTA data set as a corpus: records marked ``VALIDATION=True`` in ``held``."""
    sentences, validation = fasta.read_labelled(path, label_file, mask_file, encoding)
    train = [s for s, v in zip(sentences, validation) if not v]
    held = [s for s, v in zip(sentences, validation) if v]
    if not train:
        raise DataError("every record is marked VALIDATION=True: nothing is left to train on", label_file)
    found = labels.detect(sentences, str(label_file)) if kind == "auto" else kind
    if found != labels.TOKENS:
        raise UsageError(f"{label_file}: FASTA labels are per-residue labels (label_kind=tokens), not spans")
    return Corpus(train, "", path=str(path), kind=found, held=held)


def _input_settings(config: NERConfig) -> tuple[NERConfig, str | None]:
    """Character input turns off the word features that make no sense for it; a note says which were on."""
    if config.input != "chars":
        return config, None
    off = {"casing_dim": 0, "char_encoder": "none", "lowercase": False, "normalize_digits": False}
    changed = [k for k, v in off.items() if getattr(config, k) != v]
    note = (f"input = chars: every character is a token; {', '.join(changed)} off" if changed else None)
    return dataclasses.replace(config, **off), note


def _pieces(sentences, config: NERConfig, internal: str | None):
    """Training ``(tokens, tags)`` (span tags in the ``internal`` scheme) and feature columns (or ``None``).

    A sentence longer than ``max_length`` becomes consecutive pieces of at
    most that length (span tags re-read per piece, so no piece starts inside
    an entity), which bounds a training batch's memory; tagging reads such
    sequences in overlapping windows instead (:func:`lstmtext.ner.tagger.windows`).
    """
    size = config.max_length or max((len(s.tokens) for s in sentences), default=1)
    data, feats = [], []
    has_features = bool(parse_columns(config.feature_columns))
    for s in sentences:
        for start in range(0, len(s.tokens), size):
            tags = s.tags[start: start + size]
            data.append((s.tokens[start: start + size], schemes.convert(tags, internal) if internal else tags))
            if has_features:
                feats.append([column[start: start + size] for column in s.features])
    return data, (feats if has_features else None)


def _validation_sentences(options, config: NERConfig, train_corpora: list[Corpus], reporter):
    """Training sentences, ``(validation sentences, their scheme)`` and the hold-out record (or ``None``).

    Without ``--valid`` a share of the training sentences is held out
    (:mod:`lstmtext.training.holdout`).
    """
    from lstmtext.training import holdout

    sentences = [s for c in train_corpora for s in c.sentences]
    extra = options.extra or {}
    if options.valid:
        valid_corpora = read_corpora(options.valid, config, options.encoding, reporter, extra.get("valid_labels"),
                                     extra.get("valid_mask"), "--valid-")
        return sentences, ([s for c in valid_corpora for s in c.sentences], valid_corpora[0].scheme), None
    held = [s for c in train_corpora for s in c.held]
    if held:  # FASTA records marked VALIDATION=True
        return sentences, (held, ""), None
    train, valid, record = holdout.take(sentences, [str(p) for p in options.train], "sentences")
    return train, (valid, train_corpora[0].scheme), record


def _embeddings_dim(config: NERConfig, options) -> int | None:
    """Vector size of the ``embeddings`` file (its first vector line), or ``None`` without one."""
    from lstmtext.io import iter_lines

    if not config.embeddings:
        return None
    for number, line in iter_lines(config.embeddings, options.encoding):
        parts = line.rstrip().split(" ")
        if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            return int(parts[1])  # word2vec header: "count dim"
        if len(parts) >= 2:
            return len(parts) - 1
    return None


def _new_vocabulary(config: NERConfig, options, train_data, valid_data, data_scheme: str, reporter,
                    train_features=None):
    """Vocabulary, bundle metadata and initial word vectors (or ``None``) of a new tagger."""
    from lstmtext.ner.network import read_embeddings

    internal = config.tag_scheme
    if config.label_kind == labels.TOKENS:
        types = tags = labels.label_set(t for _, t in train_data)
        if len(tags) < 2:
            raise UsageError(f"{options.train[0]}: the training data has {len(tags)} distinct label(s); a "
                             "tagger needs at least two")
    else:
        types = sorted({schemes.split_tag(t)[1] for _, tags in train_data for t in tags if t != "O"})
        if not types:
            raise UsageError(f"{options.train[0]}: the training data has no entities")
        tags = schemes.tag_set(types, internal)
    probe = Vocab(["<pad>", "<unk>"], ["<pad>", "<unk>"], tags, config.lowercase,
                  config.normalize_digits, config.max_word_length)
    # With pretrained vectors, validation words may take one (no labels are
    # used); those the file lacks are dropped again below.
    extra_words = {probe.normalize(t) for toks, _ in valid_data for t in toks} if config.embeddings else set()
    vocab = Vocab.build([t for t, _ in train_data], tags, config.min_count, config.lowercase,
                        config.normalize_digits, config.max_word_length, extra_words, train_features or ())
    meta = {"data_scheme": data_scheme, "tags": tags,
            **({"labels": types} if config.label_kind == labels.TOKENS else {"entity_types": types}),
            "train_data": {"train": [str(p) for p in options.train], "valid": [str(p) for p in options.valid],
                           "sentences": len(train_data), "tokens": sum(len(t) for t, _ in train_data)}}
    embeddings = None
    if config.embeddings:
        embeddings, report, found = read_embeddings(config.embeddings, vocab, config.word_dim,
                                                    options.encoding, config.seed)
        train_words = {probe.normalize(t) for toks, _ in train_data for t in toks}
        keep = [i for i, w in enumerate(vocab.words) if i < 2 or w in train_words or i in found]
        vocab = Vocab([vocab.words[i] for i in keep], vocab.chars, vocab.tags, vocab.lowercase,
                      vocab.normalize_digits, vocab.max_word_length, vocab.features)
        embeddings = embeddings[keep]
        meta["embeddings"] = report
        reporter.message(f"embeddings: {report['found']} of {report['vocab']} vocabulary words found "
                         f"({100 * report['coverage']:.1f}% coverage)")
    meta["vocab"] = {"words": len(vocab.words), "chars": len(vocab.chars)}
    return vocab, meta, embeddings
