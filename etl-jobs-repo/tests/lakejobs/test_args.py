"""Typed Glue-style argument parsing: defaults, conversion, clear errors, Glue's own arguments, redaction."""

from __future__ import annotations

import pytest

from lakejobs.args import REDACTED, Arg, ArgSpec, ArgumentError, job_args

SPEC = ArgSpec(
    Arg("input_events"),
    Arg("batch_size", int, default=500),
    Arg("ratio", float, default=0.5),
    Arg("dry_run", bool, default=False),
    Arg("api_token", secret=True, default=""),
)


def test_values_are_converted_and_defaults_filled() -> None:
    args = SPEC.parse(["script.py", "--input_events", "s3://b/events/", "--batch_size", "20", "--dry_run", "yes"])
    assert args["input_events"] == "s3://b/events/"
    assert args["batch_size"] == 20
    assert args["ratio"] == 0.5
    assert args["dry_run"] is True
    assert dict(args) == {
        "input_events": "s3://b/events/",
        "batch_size": 20,
        "ratio": 0.5,
        "dry_run": True,
        "api_token": "",
    }


def test_equals_form_and_glue_system_arguments_are_kept_apart() -> None:
    argv = [
        "script.py",
        "--JOB_NAME",
        "acme-lake-dev-g-j",
        "--JOB_RUN_ID",
        "jr_1",
        "--job-bookmark-option",
        "job-bookmark-enable",
        "--enable-metrics",
        "true",
        "--TempDir",
        "s3://b/tmp/",
        "--input_events=s3://b/e/",
    ]
    args = SPEC.parse(argv)
    assert args["input_events"] == "s3://b/e/"
    assert args.system["JOB_RUN_ID"] == "jr_1"
    assert args.system["job-bookmark-option"] == "job-bookmark-enable"
    assert "JOB_NAME" not in args


def test_unknown_argument_is_named_with_what_the_job_accepts() -> None:
    with pytest.raises(
        ArgumentError, match=r"unknown argument\(s\) --ouput_current; this job accepts .*--input_events"
    ):
        SPEC.parse(["--input_events", "x", "--ouput_current", "y"])


def test_missing_required_argument_is_named() -> None:
    with pytest.raises(ArgumentError, match=r"missing required argument\(s\) --input_events"):
        SPEC.parse(["--batch_size", "3"])


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ArgumentError) as caught:
        SPEC.parse(["--batch_size", "many", "--dry_run", "perhaps", "--nope", "1"])
    message = str(caught.value)
    for expected in ("--nope", "--input_events", "--batch_size: expected int, got 'many'", "--dry_run: expected bool"):
        assert expected in message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input_events"], "--input_events: missing value"),
        (["--input_events", "a", "--input_events", "b"], "--input_events: given twice"),
        (["--input_events", "a", "stray"], "expected an option like --name, got 'stray'"),
    ],
)
def test_malformed_argument_lists(argv: list[str], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        SPEC.parse(argv)


def test_secrets_are_redacted_in_logs_errors_and_repr() -> None:
    args = SPEC.parse(["--input_events", "x", "--api_token", "s3cr3t-value"])
    assert args["api_token"] == "s3cr3t-value"
    assert args.redacted()["api_token"] == REDACTED
    assert args.redacted()["input_events"] == "x"
    assert "s3cr3t-value" not in repr(args)
    numeric_secret = ArgSpec(Arg("pin", int, secret=True))
    with pytest.raises(ArgumentError) as caught:
        numeric_secret.parse(["--pin", "not-a-number-but-secret"])
    assert "not-a-number-but-secret" not in str(caught.value)
    assert REDACTED in str(caught.value)


def test_platform_arguments_are_accepted_and_can_be_made_required() -> None:
    spec = job_args(Arg("input_a"), Arg("quarantine_path"))
    args = spec.parse(["--input_a", "x", "--group_name", "g", "--job_short_name", "j", "--quarantine_path", "q"])
    assert (args["group_name"], args["quarantine_path"]) == ("g", "q")
    with pytest.raises(ArgumentError, match="--quarantine_path"):
        spec.parse(["--input_a", "x"])
    assert job_args(Arg("input_a")).parse(["--input_a", "x"])["quarantine_path"] == ""


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        Arg("Input-Events")
    with pytest.raises(ValueError, match="type must be one of"):
        Arg("when", type=list)
    with pytest.raises(ValueError, match="declared twice: a"):
        ArgSpec(Arg("a"), Arg("a", int))


def test_tuple_arguments_are_comma_separated_column_names() -> None:
    spec = ArgSpec(Arg("partition_by_current", tuple))
    assert spec.parse(["--partition_by_current", "event_date, country"])["partition_by_current"] == (
        "event_date",
        "country",
    )
    for bad in ("", "country,", "Country", "a;b"):
        with pytest.raises(
            ArgumentError, match=r"--partition_by_current: expected tuple.*comma-separated column names"
        ):
            spec.parse([f"--partition_by_current={bad}"])


# A run's argument list as Glue 5.0 builds it: the job's DefaultArguments and the run's Arguments as
# `--key value` pairs, plus Glue's own options (special parameters), some hyphenated, some in capitals,
# and flags whose value the job definition left empty.
GLUE_ARGV = [
    "script.py",
    "--JOB_ID",
    "j_0123",
    "--JOB_RUN_ID",
    "jr_0123",
    "--JOB_NAME",
    "acme-lake-dev-g-j",
    "--job-bookmark-option",
    "job-bookmark-enable",
    "--TempDir",
    "s3://b/tmp/",
    "--enable-metrics",
    "--custom-logGroup-prefix",
    "/aws-glue/jobs/acme",
    "--executor-cores",
    "4",
    "--enable-glue-datacatalog",
    "",
    "--SPARK_CONF_DIR",
    "/etc/spark",
    "--input_events",
    "s3://b/events/",
    "--enable-observability-metrics",
]


def test_glue_options_pass_through_in_every_form_glue_passes_them() -> None:
    args = SPEC.parse(GLUE_ARGV)
    assert args["input_events"] == "s3://b/events/"
    assert args.system == {
        "JOB_ID": "j_0123",
        "JOB_RUN_ID": "jr_0123",
        "JOB_NAME": "acme-lake-dev-g-j",
        "job-bookmark-option": "job-bookmark-enable",
        "TempDir": "s3://b/tmp/",
        "enable-metrics": "",
        "custom-logGroup-prefix": "/aws-glue/jobs/acme",
        "executor-cores": "4",
        "enable-glue-datacatalog": "",
        "SPARK_CONF_DIR": "/etc/spark",
        "enable-observability-metrics": "",
    }
    assert "executor-cores" not in args


def test_only_unknown_names_shaped_like_the_jobs_own_are_refused() -> None:
    with pytest.raises(ArgumentError, match=r"unknown argument\(s\) --ouput_current"):
        SPEC.parse([*GLUE_ARGV, "--ouput_current", "y"])
    # A near miss of a declared name in Glue's spelling is a typo, not one of Glue's options.
    for near_miss in ("--input-events", "--Input_Events"):
        with pytest.raises(ArgumentError, match=rf"{near_miss}: not an option of Glue; did you mean --input_events"):
            SPEC.parse(["--input_events", "x", near_miss, "y"])
    # The job's own arguments still need a value: an empty flag is only Glue's way.
    with pytest.raises(ArgumentError, match="--batch_size: missing value"):
        SPEC.parse(["--input_events", "x", "--batch_size", "--enable-metrics"])
