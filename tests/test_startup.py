"""What a trial's process does not import: torch._dynamo (through torch's optimizer wrappers,
avbench.train.optim.eager, or Accelerate's compile check) nor DTensor and FSDP (Accelerate's
prepare and unwrap, avbench.train.prepare), each over a second of CPU on a tiny trial. The
eager optimizers step exactly as torch's own."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from lion_pytorch import Lion
from torch import nn
from torch.optim.optimizer import _use_grad_for_differentiable

from avbench.train.optim import eager
from tests.conftest import REPO

CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "lion": Lion}


def trained_weights(optimizer_class, **options) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = optimizer_class(model.parameters(), lr=1e-2, weight_decay=0.01, **options)
    for _ in range(3):
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    copy = optimizer_class(model.parameters(), lr=1e-2)
    copy.load_state_dict(optimizer.state_dict())
    assert copy.state_dict() == optimizer.state_dict()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_an_eager_optimizer_steps_exactly_as_torchs(name):
    options = {"momentum": 0.9} if name == "sgd" else {}
    ours, theirs = trained_weights(eager(CLASSES[name]), **options), trained_weights(CLASSES[name], **options)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert issubclass(eager(CLASSES[name]), CLASSES[name])


def test_a_step_runs_without_autograd():
    seen = []

    class Probe(torch.optim.SGD):
        @_use_grad_for_differentiable
        def step(self, closure=None):
            seen.append(torch.is_grad_enabled())

    eager(Probe)(nn.Linear(2, 2).parameters(), lr=0.1).step()
    assert seen == [False]


# Every optimizer through Accelerate, a cosine schedule and a checkpoint round trip, in a fresh
# process: it prints the heavy modules that were imported.
TRAIN_EVERY_OPTIMIZER = """
import sys, torch
from accelerate import Accelerator
from avbench.config import TrainConfig
from avbench.train.optim import build_optimizer, build_scheduler
from avbench.train.prepare import prepare, unwrap
for name in ("adam", "adamw", "sgd", "lion"):
    model = torch.nn.Linear(3, 2)
    cfg = TrainConfig(epochs=1, lr=1e-2, optimizer=name, scheduler="cosine")
    accelerator = Accelerator(cpu=True)
    prepared, optimizer = prepare(accelerator, model, build_optimizer(model.parameters(), cfg))
    assert unwrap(accelerator, prepared) is model
    scheduler = build_scheduler(optimizer, cfg, 2)
    for _ in range(2):
        accelerator.backward(prepared(torch.randn(4, 3)).sum())
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    optimizer.load_state_dict(optimizer.state_dict())
heavy = ("torch._dynamo", "torch.distributed.tensor", "torch.distributed.fsdp")
print(" ".join(name for name in heavy if name in sys.modules))
"""


def test_training_imports_no_dynamo_dtensor_or_fsdp():
    out = subprocess.run(
        [sys.executable, "-c", TRAIN_EVERY_OPTIMIZER], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == ""


def test_a_compiled_model_is_still_unwrapped():
    from accelerate import Accelerator

    from avbench.train.prepare import unwrap

    model = nn.Linear(2, 2)
    assert unwrap(Accelerator(cpu=True), torch.compile(model)) is model


def test_only_a_study_file_of_this_optuna_skips_the_schema_check(tmp_path):
    import sqlite3

    import optuna

    from avbench.sweep.storage import open_storage

    path = tmp_path / "study.db"
    url = f"sqlite:///{path}"
    assert not open_storage(url).skip_compatibility_check  # a new file: Optuna creates and stamps it
    optuna.create_study(storage=open_storage(url), study_name="s")
    assert open_storage(url).skip_compatibility_check
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE version_info SET library_version = '3.6.0'")
    older = open_storage(url)
    assert not older.skip_compatibility_check
    assert optuna.load_study(study_name="s", storage=older).study_name == "s"


# A second process opening a study file this Optuna wrote: Alembic stays unimported (its
# import is ~0.5 s), the file keeps its revision, and trials still go in and out.
REOPEN_KNOWN_STUDY = """
import sys
import optuna
from avbench.sweep.storage import open_storage
study = optuna.load_study(study_name="s", storage=open_storage(sys.argv[1]))
study.tell(study.ask(), 1.0)
print(len(study.trials), sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
"""


def test_a_known_study_file_opens_without_alembic(tmp_path):
    import sqlite3

    import optuna

    from avbench.sweep.storage import open_storage

    path = tmp_path / "study.db"
    url = f"sqlite:///{path}"
    optuna.create_study(storage=open_storage(url), study_name="s")
    with sqlite3.connect(path) as connection:
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision and revision[0]  # a new file is stamped by Optuna's own set-up
    out = subprocess.run([sys.executable, "-c", REOPEN_KNOWN_STUDY, url], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "[]"]
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM alembic_version")  # unstamped: the full set-up runs again
    out = subprocess.run([sys.executable, "-c", REOPEN_KNOWN_STUDY, url], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "2" and "alembic" in out.stdout
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == revision


# The command's process collects garbage less often from its start and freezes the heap on
# the way out (the final collection of a torch + Optuna + W&B heap is ~0.7 s of every sweep).
COMMAND_HEAP = """
import gc, sys
from avbench.cli import main
from avbench.heap import THRESHOLDS
assert gc.get_threshold() == THRESHOLDS, gc.get_threshold()
sys.argv = ["avbench", "--help"]
try:
    main()
except SystemExit:
    pass
print("frozen", gc.get_freeze_count() > 0)
"""


def test_the_command_collects_less_often_and_skips_the_last_collection():
    out = subprocess.run([sys.executable, "-c", COMMAND_HEAP], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("frozen True")


# Processes opening one new study file at the same moment (sweeps started side by side): each
# says it is ready once imported, waits for the go file, then opens it and makes its own study.
OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
import optuna
from avbench.sweep.storage import open_storage
url, go, name = sys.argv[1:]
Path(go).with_name("ready-" + name).touch()
while not Path(go).exists():
    time.sleep(0.001)
optuna.create_study(storage=open_storage(url), study_name=name)
"""


def test_processes_opening_a_new_study_file_at_once_all_succeed(tmp_path):
    url, go = f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, url, str(go), f"s{n}"],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(processes):  # all imported, all waiting
        assert time.time() < deadline and all(p.poll() is None for p in processes), "a process never got ready"
        time.sleep(0.05)
    go.touch()
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, "\n".join(errors)
    import optuna

    from avbench.sweep.storage import open_storage

    assert sorted(optuna.get_all_study_names(open_storage(url))) == ["s0", "s1", "s2", "s3"]
