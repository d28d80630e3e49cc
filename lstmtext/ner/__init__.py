"""The sequence tagger: a BiLSTM-CRF for entities and chunks (spans) or any per-token labels.

Read top-down, each module uses only those above it:

* ``config`` - every setting with its default (``lstmtext config ner``).
* ``schemes``, ``labels`` - span schemes (IOB1/IOB2/BIOES) and the two label kinds, with the CRF
  constraints of a tag set.
* ``data``, ``fasta`` - readers: CoNLL columns, JSONL, plain text; FASTA sequences with labels and masks.
* ``features`` - vocabularies and the padded id arrays every runtime takes.
* ``network``, ``heads`` - the Keras model (training) and its output heads and losses.
* ``runtime_numpy``, ``runtime_lite`` - the same network run from saved arrays with NumPy, and as
  an exported LiteRT part; neither needs TensorFlow to tag.
* ``tagger`` - a bundle's tagger: picks a runtime, batches sentences, windows long sequences.
* ``metrics`` - entity F1 for spans; accuracy, per-label scores and confusion for per-token labels.
* ``trainer``, ``init`` - training with the shared loop, and fine-tuning from a bundle.
* ``api`` - train, evaluate, predict, info: what the command line calls.
"""
