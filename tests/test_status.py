"""Progress reports to Sedna's LocalController: body shape, retries, outages, and a real job."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.lc_server import FakeLocalController
from support.processes import PLATO_SEDNA, plain_env
from support.sedna_env import TRAINER_ENV

from plato_sedna.context import SednaContext
from plato_sedna.local.command import build_parser
from plato_sedna.local.environment import worker_env
from plato_sedna.local.manifests import load_job
from plato_sedna.status import (
    OWNER_KIND,
    StatusReporter,
    TrainerProgress,
    WorkerStatus,
)

TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
FAST_RETRIES = (0.01, 0.02, 0.04)
STARTED = datetime(2025, 1, 1, 9, 30, 0, tzinfo=UTC)
UPDATED = datetime(2025, 1, 1, 10, 0, 0, tzinfo=UTC)


def reporter_for(lc: FakeLocalController, **options) -> StatusReporter:
    options.setdefault("retry_delays_s", FAST_RETRIES)
    return StatusReporter(
        lc.url,
        "trainworker-ab12c",
        "default",
        "surface-defect",
        "train",
        model_url="/home/data/model/model.pth",
        **options,
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ---- the body ------------------------------------------------------------------------------


def test_the_body_is_the_local_controllers_message_content() -> None:
    status = WorkerStatus(
        status="running",
        current_round=3,
        sample_count=522,
        metrics={"accuracy": 0.91},
        start_time=STARTED,
        update_time=UPDATED,
    )
    with FakeLocalController() as lc:
        assert reporter_for(lc).report(status) is True

    [post] = lc.posts
    assert (post.worker_name, post.status) == ("trainworker-ab12c", 200)
    assert post.body == {
        "name": "trainworker-ab12c",
        "namespace": "default",
        "ownerName": "surface-defect",
        "ownerKind": "federatedlearningjob",
        "kind": "train",
        "status": "running",
        "ownerInfo": {
            "currentRound": 3,
            "updateTime": "2025-01-01 10:00:00",
            "sampleCount": 522,
            "startTime": "2025-01-01 09:30:00",
        },
        "results": [
            {
                "format": "pth",
                "url": "/home/data/model/model.pth",
                "metrics": {"accuracy": 0.91},
            }
        ],
    }


def test_without_metrics_there_are_no_results_and_times_default_to_now() -> None:
    with FakeLocalController() as lc:
        reporter = reporter_for(lc)
        assert reporter.report(
            WorkerStatus(status="completed", current_round=2, sample_count=10)
        )

    [body] = lc.bodies()
    assert "results" not in body
    assert body["status"] == "completed" and body["ownerKind"] == OWNER_KIND
    info = body["ownerInfo"]
    assert TIME.match(info["updateTime"]) and TIME.match(info["startTime"])
    assert info["startTime"] == reporter.started_at.strftime("%Y-%m-%d %H:%M:%S")


def test_a_failure_carries_its_reason() -> None:
    with FakeLocalController() as lc:
        reporter_for(lc).report(
            WorkerStatus(status="failed", current_round=1, message="CUDA out of memory")
        )
    [body] = lc.bodies()
    assert body["status"] == "failed"
    assert body["ownerInfo"]["message"] == "CUDA out of memory"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"status": "done"},
            "status must be one of running, completed, failed, but 'done'",
        ),
        (
            {"status": "running", "current_round": -1},
            "current_round must be an int >= 0",
        ),
        (
            {"status": "running", "sample_count": 2.5},
            "sample_count must be an int >= 0",
        ),
        (
            {"status": "running", "metrics": {"accuracy": float("nan")}},
            "finite number or a str",
        ),
        ({"status": "running", "metrics": {"": 1.0}}, "keys must be non-empty str"),
    ],
)
def test_a_worker_status_is_checked_where_it_is_made(
    fields: dict, expected: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        WorkerStatus(**fields)


def test_metrics_are_a_read_only_copy() -> None:
    metrics = {"accuracy": 0.5}
    status = WorkerStatus(status="running", metrics=metrics)
    metrics["accuracy"] = 0.9
    assert status.metrics["accuracy"] == 0.5
    with pytest.raises(TypeError):
        status.metrics["loss"] = 1.0  # type: ignore[index]


# ---- from the pod's context ------------------------------------------------------------------


def test_from_context_uses_what_sedna_injects_into_a_trainer() -> None:
    reporter = StatusReporter.from_context(SednaContext.from_env(TRAINER_ENV))
    assert reporter is not None
    assert reporter.url == "http://localhost:9100/sedna/workers/trainworker-ab12c/info"
    assert (reporter.namespace, reporter.job_name, reporter.kind) == (
        "default",
        "surface-defect",
        "train",
    )


def test_no_reporter_without_lc_server_or_with_the_pod_names_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    without_lc = {k: v for k, v in TRAINER_ENV.items() if k != "LC_SERVER"}
    assert StatusReporter.from_context(SednaContext.from_env(without_lc)) is None
    assert warnings_of(caplog) == []

    nameless = {k: v for k, v in TRAINER_ENV.items() if k != "WORKER_NAME"}
    assert StatusReporter.from_context(SednaContext.from_env(nameless)) is None
    assert warnings_of(caplog) == [
        "LC_SERVER is set but WORKER_NAME is not; progress reports to the LocalController are off"
    ]


# ---- retries, outages, rejections ----------------------------------------------------------


def test_a_busy_lc_is_retried_until_it_accepts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeLocalController(fail_times=2) as lc:
        assert (
            reporter_for(lc).report(WorkerStatus(status="running", current_round=1))
            is True
        )
    assert [post.status for post in lc.posts] == [503, 503, 200]
    assert warnings_of(caplog) == []


def test_an_unreachable_lc_is_one_warning_per_outage_and_never_an_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lc = FakeLocalController.down()
    reporter = reporter_for(lc)
    for current_round in (1, 2, 3):
        assert (
            reporter.report(WorkerStatus(status="running", current_round=current_round))
            is False
        )
    assert warnings_of(caplog) == [
        (
            f"LocalController at {lc.url} unreachable (ConnectionRefusedError); "
            "progress reports are skipped until it answers"
        )
    ]

    with lc, caplog.at_level(logging.INFO, logger="plato_sedna.status"):
        assert reporter.report(WorkerStatus(status="running", current_round=4)) is True
    assert (
        f"LocalController at {lc.url} answers again; progress reports resume"
        in caplog.messages
    )
    assert [body["ownerInfo"]["currentRound"] for body in lc.bodies()] == [4]

    assert (
        reporter.report(WorkerStatus(status="completed", current_round=4)) is False
    )  # down again
    assert len(warnings_of(caplog)) == 2


def test_a_known_outage_costs_one_attempt_per_report() -> None:
    lc = FakeLocalController(fail_times=100)
    with lc:
        reporter = reporter_for(lc)
        reporter.report(WorkerStatus(status="running", current_round=1))
        assert len(lc.posts) == 1 + len(FAST_RETRIES)
        reporter.report(WorkerStatus(status="running", current_round=2))
        assert len(lc.posts) == 2 + len(FAST_RETRIES)


def test_a_rejected_report_logs_the_lcs_message_and_is_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class WrongPath(StatusReporter):
        @property
        def url(self) -> str:
            return f"{self.lc_server}/sedna/workers/trainworker-zzzzz/info"

    with FakeLocalController() as lc:
        reporter = WrongPath(
            lc.url, "trainworker-ab12c", "default", "job", retry_delays_s=FAST_RETRIES
        )
        assert reporter.report(WorkerStatus(status="running", current_round=1)) is False

    assert [post.status for post in lc.posts] == [400]
    [warning] = warnings_of(caplog)
    assert warning.startswith(
        f"LocalController at {lc.url} rejected the running report of worker trainworker-ab12c"
    )
    assert (
        "HTTP 400: worker name 'trainworker-ab12c' in the body differs from 'trainworker-zzzzz' in the path"
        in warning
    )


def test_a_slow_lc_costs_a_bounded_time() -> None:
    # Two 0.2 s attempts, not the LocalController's 5 s: a wide margin for a loaded machine
    # (a 1.0 s LocalController with a 0.9 s bound once failed on CI at 1.1 s).
    with FakeLocalController(delay_s=5.0) as lc:
        reporter = reporter_for(lc, timeout_s=0.2, retry_delays_s=(0.05,))
        started = time.monotonic()
        assert reporter.report(WorkerStatus(status="running", current_round=1)) is False
        assert time.monotonic() - started < 2.5


# ---- in the background -----------------------------------------------------------------------


def test_submitted_reports_go_out_in_order_without_blocking_the_caller() -> None:
    with FakeLocalController(delay_s=0.2) as lc:
        reporter = reporter_for(lc)
        started = time.monotonic()
        for current_round in (1, 2, 3):
            reporter.submit(WorkerStatus(status="running", current_round=current_round))
        reporter.submit(WorkerStatus(status="completed", current_round=3))
        assert time.monotonic() - started < 0.1
        assert reporter.flush(10) is True
    assert [(b["status"], b["ownerInfo"]["currentRound"]) for b in lc.bodies()] == [
        ("running", 1),
        ("running", 2),
        ("running", 3),
        ("completed", 3),
    ]


def test_flush_gives_up_after_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with FakeLocalController(delay_s=1.0) as lc:
        reporter = reporter_for(lc, timeout_s=5)
        reporter.submit(WorkerStatus(status="completed", current_round=1))
        assert reporter.flush(0.2) is False
        assert warnings_of(caplog) == [
            (
                f"1 progress report(s) to the LocalController at {lc.url} not sent within 0 s; "
                "the worker exits without them"
            )
        ]
        assert reporter.flush(10) is True


# ---- a trainer's reports over a job ----------------------------------------------------------


def plato_report(accuracy: float = 0.0, num_samples: int = 350) -> SimpleNamespace:
    """What Plato's client sends after training (clients/strategies/defaults.py)."""
    return SimpleNamespace(
        client_id=1, num_samples=num_samples, accuracy=accuracy, training_time=1.0
    )


def test_a_trainer_reports_each_round_once_then_completed() -> None:
    with FakeLocalController() as lc:
        progress = TrainerProgress(reporter_for(lc))
        first, second, again = plato_report(), plato_report(), plato_report()
        progress.round_reported(0, None)  # connected, nothing trained yet
        progress.round_reported(1, first)
        progress.round_reported(1, first)  # another step of the same round
        progress.round_reported(2, first)  # round 2 announced, not trained yet
        progress.round_reported(2, second)
        progress.round_reported(2, again)  # round 2 trained again after a rejoin
        progress.completed()
        progress.close(10)

    bodies = lc.bodies("trainworker-ab12c")
    assert [(b["status"], b["ownerInfo"]["currentRound"]) for b in bodies] == [
        ("running", 1),
        ("running", 2),
        ("completed", 2),
    ]
    assert {b["ownerInfo"]["sampleCount"] for b in bodies} == {350}
    assert len({b["ownerInfo"]["startTime"] for b in bodies}) == 1
    assert all(
        "results" not in b for b in bodies
    )  # the trainer does not test: no accuracy


@pytest.mark.parametrize(
    ("tests_every", "rounds_with_accuracy"), [(1, [1, 2, 3, 4]), (2, [2, 4])]
)
def test_accuracy_is_reported_in_the_rounds_the_trainer_tests(
    tests_every: int, rounds_with_accuracy: list
) -> None:
    with FakeLocalController() as lc:
        progress = TrainerProgress(reporter_for(lc), tests_every=tests_every)
        for current_round in (1, 2, 3, 4):
            progress.round_reported(
                current_round, plato_report(accuracy=0.5 + current_round / 10)
            )
        progress.close(10)

    tested = {
        b["ownerInfo"]["currentRound"]: b["results"][0]
        for b in lc.bodies()
        if "results" in b
    }
    assert sorted(tested) == rounds_with_accuracy
    assert tested[rounds_with_accuracy[0]]["metrics"] == {
        "accuracy": 0.5 + rounds_with_accuracy[0] / 10
    }
    assert tested[rounds_with_accuracy[0]]["format"] == "pth"


def test_a_failed_trainer_says_why() -> None:
    with FakeLocalController() as lc:
        progress = TrainerProgress(reporter_for(lc))
        progress.round_reported(1, plato_report(accuracy=-1, num_samples=-3))
        progress.failed("trainer edge1 lost its connection to the aggregator")
        progress.close(10)
    running, failed = lc.bodies()
    assert running["ownerInfo"]["sampleCount"] == 0
    assert (failed["status"], failed["ownerInfo"]["currentRound"]) == ("failed", 1)
    assert (
        failed["ownerInfo"]["message"]
        == "trainer edge1 lost its connection to the aggregator"
    )


def test_without_a_reporter_progress_does_nothing() -> None:
    progress = TrainerProgress(None)
    progress.round_reported(1, plato_report())
    progress.completed()
    progress.failed("x")
    progress.close(0)


# ---- plato-sedna run --lc-server -------------------------------------------------------------

MNIST_JOB = Path(__file__).parent / "data" / "local" / "mnist-job.yaml"


def test_lc_server_goes_to_the_trainers_only(tmp_path: Path) -> None:
    job = load_job(MNIST_JOB)
    parent = {"PATH": "/usr/bin"}
    lc_server = "http://127.0.0.1:9100"
    aggregator = worker_env(
        job, job.aggregator, agg_port=7363, workdir=tmp_path, inherited=parent, lc_server=lc_server
    )
    trainers = [
        worker_env(job, t, agg_port=7363, workdir=tmp_path, inherited=parent, lc_server=lc_server)
        for t in job.trainers
    ]

    assert "LC_SERVER" not in aggregator
    assert [t["LC_SERVER"] for t in trainers] == ["http://127.0.0.1:9100"] * len(
        trainers
    )
    default = worker_env(
        job,
        job.trainers[0],
        agg_port=7363,
        workdir=tmp_path,
        inherited={"PATH": "/usr/bin"},
    )
    assert "LC_SERVER" not in default


def test_lc_server_must_be_an_http_url(capsys: pytest.CaptureFixture) -> None:
    assert (
        build_parser()
        .parse_args(["job.yaml", "--lc-server", "http://127.0.0.1:9100"])
        .lc_server
    )
    assert build_parser().parse_args(["job.yaml"]).lc_server is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["job.yaml", "--lc-server", "localhost:9100"])
    assert "'localhost:9100' is not an http(s) URL" in capsys.readouterr().err


def run_quickstart(
    job_yaml: Path, workdir: Path, lc_url: str, rounds: int
) -> subprocess.CompletedProcess:
    job_yaml.write_text(
        job_yaml.read_text().replace('value: "10"', f'value: "{rounds}"')
    )
    return subprocess.run(
        [
            *PLATO_SEDNA,
            "run",
            str(job_yaml),
            "--workdir",
            str(workdir),
            "--timeout",
            "150",
            "--lc-server",
            lc_url,
        ],
        env=plain_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=210,
    )


def trainer_names(workdir: Path) -> dict[str, str]:
    """Worker key -> WORKER_NAME of each trainer, from summary.json."""
    workers = json.loads((workdir / "summary.json").read_text())["workers"]
    return {
        key: w["worker_name"] for key, w in workers.items() if key.startswith("trainer")
    }


@pytest.mark.slow
def test_trainers_report_each_round_and_completion_of_a_real_job(
    quickstart_job: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "run"
    with FakeLocalController() as lc:
        result = run_quickstart(quickstart_job, workdir, lc.url, rounds=2)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    names = trainer_names(workdir)
    assert sorted(names) == ["trainer-1", "trainer-2"]
    assert {post.worker_name for post in lc.posts} == set(
        names.values()
    )  # the aggregator never reports
    assert all(post.status == 200 for post in lc.posts)
    for name in names.values():
        bodies = lc.bodies(name)
        assert [(b["status"], b["ownerInfo"]["currentRound"]) for b in bodies] == [
            ("running", 1),
            ("running", 2),
            ("completed", 2),
        ]
        for body in bodies:
            assert (body["name"], body["namespace"], body["ownerName"]) == (
                name,
                "default",
                "digits-fedavg",
            )
            assert (body["ownerKind"], body["kind"]) == (
                "federatedlearningjob",
                "train",
            )
            info = body["ownerInfo"]
            assert info["sampleCount"] > 0
            assert TIME.match(info["updateTime"]) and TIME.match(info["startTime"])
            # The aggregator tests the global model (TEST_DATASET_URL), so trainers report the
            # global accuracy it sent them: none yet while round 1 trains.
            if (body["status"], info["currentRound"]) == ("running", 1):
                assert "results" not in body
                continue
            [result] = body["results"]
            assert (result["format"], result["url"]) == (
                "pth",
                str(workdir / "model" / "digits-lenet5.pth"),
            )
            assert 0 <= result["metrics"]["accuracy"] <= 1
        assert len({b["ownerInfo"]["startTime"] for b in bodies}) == 1


@pytest.mark.slow
def test_a_job_completes_with_its_lc_down(quickstart_job: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    lc = FakeLocalController.down()
    result = run_quickstart(quickstart_job, workdir, lc.url, rounds=1)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for key in trainer_names(workdir):
        log = (workdir / key / "worker.log").read_text()
        assert log.count(f"LocalController at {lc.url} unreachable") == 1, log[-3000:]
        assert "Traceback" not in log


def test_a_trainer_that_does_not_test_reports_the_aggregators_accuracy() -> None:
    with FakeLocalController() as lc:
        reporter = StatusReporter(lc.url, "trainworker-abcde", "default", "job", "train", model_url="/m/x.pth")
        progress = TrainerProgress(reporter, tests_every=None)
        progress.round_reported(1, plato_report(accuracy=0.0))  # nothing from the aggregator yet
        progress.aggregator_reported(0.8)  # round 2's payload carries round 1's global accuracy
        progress.round_reported(2, plato_report(accuracy=0.0))
        progress.aggregator_reported(0.9)  # the job-done event carries the final one
        progress.completed()
        progress.close()
        bodies = lc.bodies("trainworker-abcde")
    assert [b.get("results", [{}])[0].get("metrics") for b in bodies] == [None, {"accuracy": 0.8}, {"accuracy": 0.9}]
