"""Batch inference beyond one machine: lstmtext models in Ray Data pipelines.

``python -m lstmtext.batch MODEL --input 'data/*.txt' --output out/pred``
predicts every line of the matched files with a pool of worker processes on
a local Ray instance or on a Ray cluster (``--address``), and writes sharded
outputs in ``lstmtext predict``'s formats (see :mod:`lstmtext.batch.files`
for the layout). :class:`~lstmtext.batch.predictor.Predictor` is the
engine-neutral part a worker holds; :func:`~lstmtext.batch.pipeline.run` is
the Python API. Needs the ``ray`` extra: ``pip install 'lstmtext[ray]'``.

Apache Beam was the first choice; every apache-beam release caps protobuf
below 7, which conflicts with the tested ``protobuf`` pin (see the README).
"""
