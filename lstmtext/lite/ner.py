"""The tagger's LiteRT part, for the part registry (:mod:`lstmtext.lite.convert`).

It lives with the rest of the tagger, in :mod:`lstmtext.ner.runtime_lite`.
"""

from lstmtext.ner.runtime_lite import LiteTaggerNet, build, signature  # noqa: F401
