"""``python -m lstmtext.batch``: run a model over files with a pool of workers (Ray Data, or Apache Beam)."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from lstmtext.backend import quiet_logs
from lstmtext.cli.console import err, friendly

quiet_logs()

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _init_options(pairs: list[str]) -> dict:
    """``K=V`` pairs for ``ray.init``; a value that parses as JSON is used parsed (numbers, objects)."""
    from lstmtext.errors import UsageError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--ray-option takes KEY=VALUE, got '{pair}'")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@app.command()
@friendly
def batch(
    model: str = typer.Argument(..., help="Model bundle, training output directory or installed model name."),
    input: List[str] = typer.Option(..., "--input", "-i", help="Input files: a path or glob ('data/*.txt', "
                                    "'corpus/**/*.conll'); repeatable."),
    output: str = typer.Option(..., "--output", "-o", help="Output prefix: PREFIX-FFFFF-CCCCC.EXT shards, "
                               "PREFIX.dead-*.jsonl refused records, PREFIX.manifest.json."),
    format: Optional[str] = typer.Option(None, "--format", "-f",
                                         help="lm: text|jsonl; ner: jsonl|conll|text; translate: text|jsonl."),
    top_k: int = typer.Option(5, "--top-k", help="lm: next words per line."),
    beam: int = typer.Option(5, "--beam", help="translate: beam size (1 = greedy)."),
    nbest: int = typer.Option(1, "--nbest", help="translate: hypotheses per line."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sentences per batch."),
    runtime: str = typer.Option("auto", "--runtime", help="auto, lite or numpy (no TensorFlow on workers)."),
    encoding: str = typer.Option("utf-8", "--encoding"),
    word_column: Optional[int] = typer.Option(None, "--word-column", help="ner: word column of CoNLL input."),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="ner: output tag scheme."),
    input_format: str = typer.Option("auto", "--input-format", help="ner: auto, text, jsonl or conll."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Worker processes (default: the "
                                          "cluster's CPUs); each loads the model once."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help="Records (lines; CoNLL sentences) per "
                                             "chunk and output shard (default: predict's window, which gives "
                                             "its results exactly: ner 4096, translate 2048, lm 4096)."),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Longer lines go to the dead letters."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto, ray://HOST:10001 "
                                          "(default: start a local one)."),
    ray_option: Optional[List[str]] = typer.Option(None, "--ray-option", help="KEY=VALUE for ray.init "
                                                   "(JSON values: runtime_env='{\"pip\": [...]}'); repeatable."),
    engine: str = typer.Option("ray", "--engine", help="ray (Ray Data) or beam (Apache Beam RunInference)."),
    runner: Optional[str] = typer.Option(None, "--runner", help="beam: a Beam runner by name (default "
                                         "DirectRunner, with --workers processes; FlinkRunner, SparkRunner, "
                                         "DataflowRunner ...)."),
    pipeline_option: Optional[List[str]] = typer.Option(None, "--pipeline-option", help="beam: KEY=VALUE "
                                                        "pipeline option (flink_master=HOST:8081, "
                                                        "project=ID ...); repeatable."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier run's outputs."),
    json_: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Predict every line of the input files with a pool of worker processes (Ray Data or Apache Beam)."""
    from lstmtext.batch.pipeline import BatchOptions, run
    from lstmtext.errors import UsageError
    from lstmtext.tasks import PredictOptions

    if top_k < 1 or beam < 1 or nbest < 1:
        raise UsageError("--top-k, --beam and --nbest must be at least 1")
    extra = {k: v for k, v in dict(nbest=nbest, word_column=word_column, scheme=scheme,
                                   input_format=input_format).items() if v is not None}
    predict = PredictOptions(format=format, top_k=top_k, beam=beam, batch_size=batch_size, runtime=runtime,
                             encoding=encoding, extra=extra)
    common = dict(inputs=list(input), output=output, predict=predict, workers=workers, chunk_size=chunk_size,
                  max_chars=max_chars, overwrite=overwrite)
    if engine == "beam":
        if address or ray_option:
            raise UsageError("--address and --ray-option are for --engine ray (Beam: --runner, --pipeline-option)")
        from lstmtext.batch.beam import BeamOptions, run as run_beam  # UsageError without the beam extra

        summary = run_beam(model, BeamOptions(**common, runner=runner or "DirectRunner",
                                              pipeline_options=list(pipeline_option or [])))
    elif engine == "ray":
        if runner or pipeline_option:
            raise UsageError("--runner and --pipeline-option are for --engine beam")
        summary = run(model, BatchOptions(**common, address=address, init=_init_options(ray_option or [])))
    else:
        raise UsageError(f"--engine must be ray or beam (got '{engine}')")
    if json_:
        typer.echo(json.dumps(summary))
        return
    dead = f", {summary['dead']} refused (in {output}.dead-*.jsonl)" if summary["dead"] else ""
    err.print(f"{summary['lines']} lines of {summary['files']} file(s) -> {summary['shards']} shard(s) "
              f"{output}-*  ({summary['workers']} workers, {summary['lines_per_s']:.0f} lines/s){dead}",
              markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
