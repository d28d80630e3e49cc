"""Decoding: step runtimes and the search/sampling algorithms that drive them.

Algorithms run over a small *step* interface::

    step(ids: int array (B,), state) -> (log_probs (B, V) float array, new_state)

where ``state`` is any nest of arrays (for an LSTM, ``(h, c)`` per layer).
The same algorithm code therefore drives the numpy runtime (instant start,
no TensorFlow import) and compiled Keras functions.
"""
