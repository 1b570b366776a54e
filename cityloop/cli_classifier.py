"""`cityloop classifier`: train the hotline text classifier, evaluate it, say what a model is."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from topology import Topology, TopologyValidationError, load_topology

if TYPE_CHECKING:
    from cityloop.classifier_train import Evaluation
    from cityloop.corpus import Example, SkippedLine
    from handlers.classifier import TextClassifier

app = typer.Typer(
    name="classifier",
    help="Train and evaluate the 12345 text classifier.",
    no_args_is_help=True,
    add_completion=False,
)

ModelFile = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Model file (default: the shipped model).", dir_okay=False),
]
TopologyFile = Annotated[
    Path | None,
    typer.Option(
        "--topology",
        "-t",
        help="Topology YAML file whose categories and classes to train for (default: shipped).",
        dir_okay=False,
    ),
]


def load_classifier(path: Path | None) -> TextClassifier:
    """The model at `path` (default: the shipped one); exit 1 with the reason if unreadable."""
    # numpy and the model code load when a command needs them, not for every `cityloop` run.
    from handlers.classifier import ClassifierModelError, TextClassifier, default_model_path

    try:
        return TextClassifier.load(path or default_model_path())
    except ClassifierModelError as error:
        typer.echo(f"classifier model: {error}", err=True)
        raise typer.Exit(1) from None


def _load_topology(file: Path | None) -> Topology:
    try:
        return load_topology(file)
    except TopologyValidationError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None


def _report_skipped(skipped: list[SkippedLine]) -> None:
    """One line per file and reason, with the first line numbers."""
    by_reason: dict[tuple[str, str], list[int]] = {}
    for line in skipped:
        by_reason.setdefault((line.source, line.reason), []).append(line.line)
    for (source, reason), numbers in sorted(by_reason.items()):
        shown = ", ".join(str(n) for n in numbers[:5]) + (", ..." if len(numbers) > 5 else "")
        typer.echo(f"skipped {len(numbers)} line(s) of {source}: {reason} (line {shown})", err=True)


@app.command()
def train(
    sources: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            help='JSON lines of {"title", "text", "category"} to train on; repeat for several.',
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    no_corpus: Annotated[
        bool, typer.Option("--no-corpus", help="Leave out the shipped corpus.")
    ] = False,
    with_held_out: Annotated[
        bool,
        typer.Option(
            "--with-held-out",
            help="Train on the corpus's held-out eighth too (then nothing of it measures the "
            "model and the load generator's words are known to it).",
        ),
    ] = False,
    from_history: Annotated[
        bool,
        typer.Option(
            "--from-history",
            help="Add what dispatchers decided: hotline orders whose category a dispatcher set "
            "or confirmed, read from the case-event topic of the configured broker.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write the model (default: the shipped path)."),
    ] = None,
    topology_file: TopologyFile = None,
) -> None:
    """Train a model on the shipped corpus (but its held-out eighth), each --from file and,
    with --from-history, what the city's dispatchers decided; lines whose category the topology
    does not know are reported and skipped. Prints the training summary."""
    from cityloop.classifier_train import TrainingError
    from cityloop.classifier_train import train as train_model
    from cityloop.corpus import corpus_paths, read_examples
    from handlers.classifier import default_model_path

    topology = _load_topology(topology_file)
    # A flat catalogue (no classes) makes each category its own class.
    classes = {code: topology.class_of(code) or code for code in topology.categories}
    examples: list[Example] = []
    skipped: list[SkippedLine] = []
    for path in [] if no_corpus else corpus_paths():
        read, not_read = read_examples(path, classes)
        examples += [example for example in read if with_held_out or not example.held_out]
        skipped += not_read
    for path in sources or []:
        read, not_read = read_examples(path, classes)
        examples += read
        skipped += not_read
    if from_history:
        decided = dispatchers_decisions(classes)
        typer.echo(f"{len(decided)} orders decided by dispatchers in the case history", err=True)
        examples += decided
    if not examples:
        typer.echo("nothing to train on: no corpus, no --from file, no history", err=True)
        raise typer.Exit(1)
    _report_skipped(skipped)
    paths = [*([] if no_corpus else corpus_paths()), *(sources or [])]
    categories = Counter(example.category for example in examples)
    typer.echo(
        f"training on {len(examples)} examples of {len(categories)} categories "
        f"from {len(paths)} file(s)",
        err=True,
    )
    try:
        result = train_model(examples, classes)
    except TrainingError as error:
        typer.echo(f"cannot train: {error}", err=True)
        raise typer.Exit(1) from None
    target = out or default_model_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(result.model_bytes)
    typer.echo(f"wrote {result.classifier.version} to {target} ({len(result.model_bytes)} bytes)")
    typer.echo("\n".join(_describe_summary(result.summary)))


def dispatchers_decisions(classes: dict[str, str]) -> list[Example]:
    """Hotline orders whose category a dispatcher set or confirmed, from the case-event topic
    (whole decisions only), as examples of the categories the topology knows."""
    from cityloop.contracts import CASE_EVENT_ADAPTER
    from cityloop.corpus import Example
    from cityloop.settings import get_settings
    from handlers.triage import dispatcher_labels
    from streams.decisions import whole_decisions
    from streams.history import read_records
    from streams.topics import topics_for

    settings = get_settings()
    records = whole_decisions(
        read_records(settings.bootstrap_servers, topics_for(settings).case_events)
    )
    events = (
        CASE_EVENT_ADAPTER.validate_json(record.value)
        for record in records
        if record.value is not None
    )
    return [
        Example(title, text, category)
        for title, text, category in dispatcher_labels(events)
        if category in classes
    ]


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A model file.")],
) -> None:
    """Put a model into service: running workers swap to it (and say so on the
    command-outcomes topic); a worker that starts later takes the newest one published."""
    from handlers.classifier import ClassifierModelError, TextClassifier

    data = file.read_bytes()
    try:
        classifier = TextClassifier.from_bytes(data)
    except ClassifierModelError as error:
        typer.echo(f"not published: {error}", err=True)
        raise typer.Exit(1) from None
    from kafka import KafkaProducer

    from cityloop.settings import get_settings
    from streams.topics import topics_for

    settings = get_settings()
    sender = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        max_request_size=len(data) + 1_048_576,  # one record: the whole model
    )
    try:
        sender.send(topics_for(settings).classifier, key=b"current", value=data).get(timeout=60)
    finally:
        sender.close()
    typer.echo(f"published {classifier.version} to {topics_for(settings).classifier}")


def _describe_summary(summary: dict[str, Any]) -> list[str]:
    if not summary:
        return ["(no training summary)"]
    lines = [
        f"examples:            {summary['examples']} "
        f"({summary['categories']} categories, {summary['classes']} classes)",
        f"n-grams, C:          {tuple(summary['ngram_range'])}, C={summary['C']} "
        f"({summary['max_features']} features at most, min_df {summary['min_df']})",
        f"cross-validated:     {summary['folds']} folds, accuracy {summary['cv_accuracy']:.1%}, "
        f"class accuracy {summary['cv_class_accuracy']:.1%}",
        f"calibration:         temperature {summary['temperature']}, "
        f"log loss {summary['cv_log_loss']} -> {summary['cv_log_loss_calibrated']}, "
        f"ECE {summary['cv_ece']} -> {summary['cv_ece_calibrated']}",
    ]
    for name in ("class_threshold", "category_threshold"):
        choice = summary[name]
        lines.append(
            f"{name + ':':<21}{choice['threshold']:.4f} (target {choice['target']:.0%}: "
            f"covers {choice['coverage']:.1%} out-of-fold, right {choice['accuracy']:.1%})"
        )
    return lines


@app.command()
def evaluate(
    sources: Annotated[
        list[Path],
        typer.Option(
            "--from",
            help='JSON lines of {"title", "text", "category"} to evaluate on; repeatable.',
            exists=True,
            dir_okay=False,
        ),
    ],
    model: ModelFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Accuracy, class accuracy, coverage and accuracy above the model's thresholds, and a
    confusion table by class."""
    from cityloop.classifier_train import TrainingError
    from cityloop.classifier_train import evaluate as evaluate_model
    from cityloop.corpus import read_examples

    classifier = load_classifier(model)
    examples: list[Example] = []
    skipped: list[SkippedLine] = []
    for path in sources:
        read, not_read = read_examples(path)
        examples += read
        skipped += not_read
    _report_skipped(skipped)
    try:
        evaluation = evaluate_model(classifier, examples)
    except TrainingError as error:
        typer.echo(f"cannot evaluate: {error}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        figures = {"model_version": classifier.version, **evaluation.as_dict()}
        typer.echo(json.dumps(figures, ensure_ascii=False, indent=2))
    else:
        typer.echo("\n".join(_describe_evaluation(classifier, evaluation)))


def _describe_evaluation(classifier: TextClassifier, evaluation: Evaluation) -> list[str]:
    e = evaluation
    lines = [
        f"model:               {classifier.version}",
        f"examples:            {e.examples}",
        f"accuracy:            {e.accuracy:.1%} (category), {e.class_accuracy:.1%} (class)",
        f"class threshold:     {e.class_threshold:.4f}: covers {e.class_coverage:.1%}, "
        f"class right {e.class_accuracy_above:.1%}, "
        f"category right {e.category_accuracy_above_class_threshold:.1%}",
        f"category threshold:  {e.category_threshold:.4f}: covers {e.category_coverage:.1%}, "
        f"category right {e.category_accuracy_above:.1%}",
    ]
    if e.unknown_categories:
        unknown = ", ".join(f"{code} ({n})" for code, n in e.unknown_categories.items())
        lines.append(f"unknown to the model: {unknown}")
    predicted = sorted({name for row in e.confusion.values() for name in row})
    width = max([len(name) for name in [*e.confusion, *predicted]] + [10])
    lines.append("")
    lines.append("confusion by class (rows: true, columns: predicted)")
    lines.append(" " * width + " " + " ".join(f"{name[:6]:>6}" for name in predicted))
    for true, row in e.confusion.items():
        cells = " ".join(f"{row.get(name, 0):>6}" for name in predicted)
        lines.append(f"{true:<{width}} {cells}")
    return lines


@app.command()
def info(
    model: ModelFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the header as JSON.")] = False,
) -> None:
    """A model's version, categories, classes, thresholds and training summary."""
    classifier = load_classifier(model)
    header = classifier.header()
    if as_json:
        typer.echo(json.dumps(header, ensure_ascii=False, indent=2))
        return
    classes = Counter(classifier.classes.values())
    typer.echo(
        "\n".join(
            [
                f"version:             {classifier.version}",
                f"categories:          {len(classifier.categories)} in {len(classes)} classes",
                f"features:            {len(classifier.vocabulary)} character n-grams "
                f"{classifier.ngram_range}",
                f"temperature:         {classifier.temperature:.4f}",
                f"class threshold:     {classifier.class_threshold:.4f}",
                f"category threshold:  {classifier.category_threshold:.4f}",
                f"reads:               title {classifier.max_title_chars} and text "
                f"{classifier.max_text_chars} characters",
                "",
                "trained:",
                *(f"  {line}" for line in _describe_summary(classifier.summary)),
            ]
        )
    )
