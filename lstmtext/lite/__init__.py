"""Light inference parts: LiteRT models stored inside a bundle.

A bundle may carry a ``lite/`` folder::

    lite/manifest.json     format, quantisation, the digest of the weights.h5
                           the parts were built from, and each part's file
    lite/<part>.tflite     one LiteRT model per part, built-in ops only
    lite/crf.npz           (tagger) CRF transitions as plain arrays

The parts are small functions of ids and states with no Python control flow
around them: the language model's single step, the tagger's emission network
over a padded batch, the translator's encoder and single decoder step. The
search algorithms (next-word beam, sampling, Viterbi, greedy and beam search)
are written once in NumPy and drive either these parts or the NumPy runtime
over the same ``step`` interface.

:mod:`lstmtext.lite.runtime` opens parts with ``ai-edge-litert`` and never
imports TensorFlow; :mod:`lstmtext.lite.convert` builds them (TensorFlow's
converter) at the end of training and in ``lstmtext export``.
"""
