"""Batch inference beyond one machine: lstmtext models in Ray Data or Apache Beam pipelines.

``python -m lstmtext.batch MODEL --input 'data/*.txt' --output out/pred``
predicts every line of the matched files with a pool of worker processes on
a local Ray instance or on a Ray cluster (``--address``), and writes sharded
outputs in ``lstmtext predict``'s formats (see :mod:`lstmtext.batch.files`
for the layout). :class:`~lstmtext.batch.predictor.Predictor` is the
engine-neutral part a worker holds; :func:`~lstmtext.batch.pipeline.run` is
the Python API. Needs the ``ray`` extra: ``pip install 'lstmtext[ray]'``.

With ``--engine beam`` the same command is an Apache Beam pipeline (DirectRunner
by default, any runner by ``--runner``) writing the same files;
:class:`~lstmtext.batch.beam.LstmtextModelHandler` is the ``RunInference``
model handler for your own pipelines. Needs the ``beam`` extra, installed with
``constraints-beam.txt`` (apache-beam requires ``protobuf<7``).
"""
