"""Sweep specs: every setting of a sweep, declared once, in :class:`SweepSpec` or :class:`RunOptions`.

A setting is one field of :class:`SweepSpec` (what is computed) or of :class:`RunOptions` (where
and how it runs: memory, store, chunk size, devices, Dask workers, progress, lock), with its
default, its check, its help text and how each entry point spells it. Everything else is derived
from those two lists (:func:`settings`): the keyword arguments of
:func:`lrsweep.sweep`, the keys of a TOML spec file and the flags of ``lrsweep run`` (both read
in :mod:`lrsweep.spec_sources`), the canonical JSON that identifies a sweep
(:func:`canonical`) and the Dataset's attributes (:func:`attrs`).

A TOML file holds the same keys as the keyword arguments::

    # sweep.toml: `lrsweep run sweep.toml --out sweep.zarr --memory 64MB`
    problem = "linear"
    lr = "log:1e-4:1:65536"          # or a list, or a table {group = "log:..."} per group
    epochs = 2000
    grad = "forward"
    precision = "mixed"
    record = "trajectory"
    every = 10                       # keep every 10th epoch (and the last)
    variables = ["loss", "w"]        # what a trajectory keeps

    [init]                           # or init = 16 (drawn from the problem's sampler, seed = ...)
    grid = { w = "lin:-5:5:21" }

    [optimizer_axes]                 # optimizer hyperparameters as sweep axes
    momentum = [0.0, 0.5, 0.9]

The spec is saved with every result (``attrs["spec"]``, JSON). A store written from one spec is
never mixed with another: :func:`canonical` is what is compared.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import _checks, outcomes, schedules
from . import spec_checks as checks
from .gradients import NAMES as GRADS
from .grid import Axis, InitGrid, lr_axes
from .precision import POLICIES
from .spec_checks import AxisValue, LrValue, Setting
from .types import KERNELS, RECORDS, GradName, KernelName, PrecisionName, PyTree, RecordName

if TYPE_CHECKING:  # for the annotations only: importing them would load optax, the problems and Dask
    import optax
    from distributed import Client

    from .problems import Problem


def setting(default: Any = None, **meta: Any) -> Any:
    """A :class:`SweepSpec` or :class:`RunOptions` field with its :class:`~lrsweep.spec_checks.Setting`."""
    return dataclasses.field(default=default, metadata={"lrsweep": Setting(**meta)})


@dataclasses.dataclass(frozen=True, eq=False)
class SweepSpec:
    """What a sweep computes; ``lrsweep.sweep(problem, lr, **settings)`` builds one (and its
    :class:`RunOptions`, see :func:`build`).

    Each field declares one setting (see :class:`lrsweep.spec_checks.Setting`); construction checks every given value.
    A field's type is what the spec holds once checked: a count of problem or data seeds is held as
    the list of seeds it names, a string of variables as a list.
    ``kernel`` is here, not among the run options: the compute path enters the compiled program,
    and its results may differ from XLA's by rounding.

    Hashable, and equal to a spec with equal values (:func:`lrsweep.spec_checks.frozen`); the values
    are kept as given, so the canonical spec does not change.
    """

    problem: Problem | str = setting(
        help="an lrsweep.Problem, a built-in name or 'package.module:function'",
        toml=(str,),
        what="a problem name",
        cli_default="linear",
    )
    lr: LrValue = setting(
        help="learning rates: a list '0.01,0.1,1', a space 'log:1e-4:10:256' or 'lin:0.01:0.2:20', "
        "or one per group GROUP=SPEC (repeat the flag)",
        toml=(int, float, str, list, dict),
        what="a number, a list, a space string or a table {group = ...}",
        flag="lr",
        cli_default="log:1e-4:10:256",
    )
    init: int | InitGrid | PyTree | None = setting(
        help="initialisations: a count drawn by the problem's sampler, or a grid",
        toml=(int, dict),
        what="a count or a table {grid = {name = values}}",
        flag="int",
        check=checks.init,
    )
    epochs: int = setting(
        1000,
        help="passes over the training data (full batch: optimizer steps; with batch_size: n // batch_size "
        "steps each); give epochs or steps",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.epochs,
    )
    steps: int | None = setting(
        help="optimizer steps in all, instead of epochs (default: epochs times the steps per epoch)",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.epochs,
    )
    batch_size: int | None = setting(
        help="examples per optimizer step, reshuffled every epoch (default: the whole training set)",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(1),
    )
    data_seed: list[int] | None = setting(
        help="a count or a list of seeds: a sweep axis of minibatch orders (default: seed 0, no axis)",
        toml=(int, list),
        what="a count or a list of integer seeds",
        flag="int",
        check=checks.problem_seed,
    )
    eval_every: int | None = setting(
        help="steps between held-out evaluations, and one after the last step (default: steps // 20, at least 1)",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(1),
    )
    grad: GradName = setting(
        "autodiff",
        help=f"gradient estimator, one of {list(GRADS)}",
        toml=(str,),
        what="a string",
        check=checks.one_of(GRADS),
    )
    precision: PrecisionName = setting(
        "float32",
        help=f"precision policy, one of {sorted(POLICIES)}",
        toml=(str,),
        what="a string",
        check=checks.one_of(tuple(POLICIES)),
    )
    record: RecordName = setting(
        "trajectory",
        help="summary (final values only) or trajectory (every k-th epoch)",
        toml=(str,),
        what="a string",
        check=checks.one_of(RECORDS),
        cli_default="summary",
    )
    every: int = setting(
        1,
        help="a trajectory keeps every k-th epoch (and the last)",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(1, outcomes.MAX_EPOCHS),
    )
    variables: list[str] | None = setting(
        help="what a trajectory keeps: 'loss' and parameter names (default: all)",
        toml=(list,),
        what="a list of strings",
        flag="list",
        check=checks.names,
    )
    optimizer: str | Callable[..., optax.GradientTransformation] = setting(
        "gd",
        help="gd, momentum, nesterov, adam, rmsprop, any optax optimizer by name (adamw, optax:lion), "
        "or an optax factory (Python)",
        toml=(str,),
        what="a string",
    )
    optimizer_kwargs: dict[str, float | bool] | None = setting(
        help="the optimizer's hyperparameters, key=value,...",
        toml=(dict,),
        what="a table",
        flag="pairs",
        check=checks.hyperparameters,
    )
    optimizer_axes: dict[str, AxisValue] | None = setting(
        help="hyperparameters as sweep axes, NAME=VALUES (repeat the flag)",
        toml=(dict,),
        what="a table {name = values}",
        flag="keyed",
        check=checks.table,
    )
    schedule: str = setting(
        schedules.CONSTANT,
        help=f"learning-rate schedule, the swept lr its peak: one of {list(schedules.BUILTIN)} or optax:NAME",
        toml=(str,),
        what="a string",
        check=schedules.check_name,
    )
    schedule_kwargs: dict[str, float | bool] | None = setting(
        help="the schedule's arguments, key=value,... (warmup=100)",
        toml=(dict,),
        what="a table",
        flag="pairs",
        check=checks.hyperparameters,
    )
    groups: dict[str, Sequence[str]] | None = setting(
        help="learning-rate groups, GROUP=param,param (repeat the flag)",
        toml=(dict,),
        what="a table {group = [parameter, ...]}",
        flag="keyed",
        check=checks.groups,
    )
    seed: int = setting(
        0,
        help="seed of the init sampler",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(0, checks.MAX_SEED),
    )
    problem_args: dict[str, Any] | None = setting(
        help="keyword arguments of a problem given by name, key=value,...",
        toml=(dict,),
        what="a table",
        flag="pairs",
        check=checks.table,
    )
    problem_seed: list[int] | None = setting(
        help="a count or a list of seeds: a sweep axis of problem instances",
        toml=(int, list),
        what="a count or a list of integer seeds",
        flag="int",
        check=checks.problem_seed,
    )
    h: float = setting(
        1e-4, help="finite-difference step", toml=(int, float), what="a number", flag="float", check=checks.positive
    )
    rtol: float = setting(
        outcomes.DEFAULT_RTOL,
        help="convergence tolerance relative to the initial loss gap",
        toml=(int, float),
        what="a number",
        flag="float",
        check=checks.nonnegative,
    )
    stuck_window: int | None = setting(
        help="epochs without a parameter change that make a run stuck (default: epochs // 10, at least 1)",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(1),
    )
    score_window: int = setting(
        outcomes.DEFAULT_SCORE_WINDOW,
        help="losses averaged by the score: the last K before each step, over the first (trainable below 1)",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(1),
    )
    plateau_rtol: float = setting(
        outcomes.DEFAULT_PLATEAU_RTOL,
        help="with an unknown minimum, a run converged when its final losses spread at most this, relative",
        toml=(int, float),
        what="a number",
        flag="float",
        check=checks.nonnegative,
    )
    track_best: bool = setting(
        False,
        help="also keep best_loss and best_epoch per config (two more numbers carried every epoch: "
        "the lesson's summary sweeps run 15-40 percent slower with them)",
        toml=(bool,),
        what="true or false",
        flag="bool",
        check=checks.boolean,
    )
    track_sums: bool = setting(
        False,
        help="also keep sum_v and sum_inv_v per config: the sums over steps of the relative loss L_e / L_0 "
        "(clipped as the score) and of its inverse, the fractal paper's colour (lrsweep.maps turns it on)",
        toml=(bool,),
        what="true or false",
        flag="bool",
        check=checks.boolean,
    )
    track_sharpness: bool = setting(
        False,
        help="also estimate each config's sharpness (the top Hessian eigenvalue of the training loss) every "
        "sharpness_every steps (warm-started LOBPCG on Hessian-vector products), and when it reaches the edge of stability, "
        "about 2 / lr (docs/sharpness.md)",
        toml=(bool,),
        what="true or false",
        flag="bool",
        check=checks.boolean,
    )
    sharpness_every: int = setting(
        10,
        help="with track_sharpness: steps between sharpness estimates",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(1, outcomes.MAX_EPOCHS),
    )
    sharpness_iters: int = setting(
        10,
        help="with track_sharpness: the most Hessian-vector products per estimate (LOBPCG steps, warm-started "
        "from the last estimate, stopping at relative residual 1e-3; accuracy and cost in docs/sharpness.md)",
        toml=(int,),
        what="an integer",
        flag="int",
        check=checks.integer_in(1, 10_000),
    )
    kernel: KernelName = setting(
        "auto",
        help=f"compute path, one of {list(KERNELS)}",
        toml=(str,),
        what="a string",
        identity=False,
        check=checks.one_of(KERNELS),
    )

    def __post_init__(self) -> None:
        self.lr_axes  # noqa: B018  (lr is checked first, as it was the first setting with a check)
        _check_fields(self)
        if self.steps is not None and self.epochs != defaults()["epochs"]:
            _both_lengths(self.steps, self.epochs)

    @functools.cached_property
    def lr_axes(self) -> Axis | dict[str, Axis]:
        """``lr`` parsed and checked by :func:`lrsweep.grid.lr_axes`, once per spec: the planner and the
        canonical spec read this, and ``lr`` stays as given."""
        return lr_axes(self.lr)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and checks.frozen_fields(self) == checks.frozen_fields(other)

    def __hash__(self) -> int:
        return hash(checks.frozen_fields(self))


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where and how a sweep runs, never what it computes: the memory budget, the store, the chunk size,
    the devices, the Dask workers, the progress bar and the store's lock.

    Each field is a setting declared like those of :class:`SweepSpec` (a keyword of ``sweep``, a TOML
    key and a flag), none of them part of the canonical spec: results do not depend on them, bit for
    bit, so a store resumes under other options. Construction checks every given value, and that at
    most one way to reach Dask workers is given, with ``out``.
    """

    memory: int | None = setting(
        help="memory budget, e.g. 2GB or 64MB (default: half the machine, at most 4 GiB)",
        toml=(str, int),
        what="a size such as '2GB' or a number of bytes",
        identity=False,
        attr=False,
        check=_checks.size,
    )
    out: str | None = setting(
        help="a Zarr store: results stream there; the same command resumes an interrupted run",
        toml=(str,),
        what="a path",
        identity=False,
        attr=False,
        check=checks.path,
    )
    chunk_size: int | None = setting(
        help="configs per compiled chunk, at least 8 (default: from the memory budget)",
        toml=(int,),
        what="an integer",
        flag="int",
        identity=False,
        attr=False,
        check=checks.integer_in(8, 2**30),  # below 8 configs a result may depend on the chunk (docs/architecture.md)
    )
    progress: bool | None = setting(
        help="a progress bar (default: several chunks and a terminal)", flag=None, identity=False, attr=False
    )
    allow_mixed: bool = setting(
        False,
        help="resume a store made with other versions, backend or kernel path (each chunk records its environment)",
        toml=(bool,),
        what="true or false",
        flag="bool",
        identity=False,
        attr=False,
        check=checks.boolean,
    )
    break_lock: bool = setting(
        False,
        help="remove the store's lock first, whoever holds it (only when that process is gone)",
        flag="bool",
        identity=False,
        attr=False,
        check=checks.boolean,
    )
    devices: int | None = setting(
        help="local devices each chunk is sharded over (default: all; results do not depend on it)",
        toml=(int,),
        what="an integer",
        flag="int",
        identity=False,
        check=checks.integer_in(1, 2**16),
    )
    scheduler: str | None = setting(
        help="a Dask scheduler, tcp://HOST:PORT: its workers train the chunks (--out on a filesystem they share)",
        toml=(str,),
        what="an address",
        identity=False,
        attr=False,
        check=checks.address,
    )
    workers: int | None = setting(
        help="train the chunks in N local Dask worker processes (needs --out)",
        toml=(int,),
        what="an integer",
        flag="int",
        identity=False,
        attr=False,
        check=checks.integer_in(1, 4096),
    )
    client: Client | None = setting(
        help="a dask.distributed.Client whose workers train the chunks (Python; needs out=)",
        flag=None,
        identity=False,
        attr=False,
        check=checks.client,
    )

    def __post_init__(self) -> None:
        _check_fields(self)
        checks.dask(self.scheduler, self.workers, self.client, self.out)


def _check_fields(obj: Any) -> None:
    """Run each given (non-None) field's check, replacing the value by what the check returns."""
    for f in dataclasses.fields(obj):
        meta = f.metadata["lrsweep"]
        value = getattr(obj, f.name)
        if value is not None and meta.check is not None:
            object.__setattr__(obj, f.name, meta.check(f.name, value))


def _both_lengths(steps: Any, epochs: Any) -> None:
    raise ValueError(f"steps={steps!r} is invalid with epochs={epochs!r}: expected one of them, not both")


def _fields() -> tuple[dataclasses.Field, ...]:
    """Every setting's field: :class:`SweepSpec`'s (what is computed), then :class:`RunOptions`' (where and how)."""
    return dataclasses.fields(SweepSpec) + dataclasses.fields(RunOptions)


def settings() -> dict[str, Setting]:
    """Every setting's :class:`Setting`, in declaration order (the spec's, then the run options')."""
    return {f.name: f.metadata["lrsweep"] for f in _fields()}


def run_options() -> tuple[str, ...]:
    """The names of the settings that are :class:`RunOptions`: where and how, not what is computed."""
    return tuple(f.name for f in dataclasses.fields(RunOptions))


def defaults() -> dict[str, Any]:
    """Python's default of every setting (None for the two required ones, problem and lr)."""
    return {f.name: f.default for f in _fields()}


def build(problem: Any, lr: Any, **kwargs: Any) -> tuple[SweepSpec, RunOptions]:
    """A checked :class:`SweepSpec` and :class:`RunOptions` from the keywords of ``sweep``, each keyword
    going where it is declared; an unknown keyword is a ValueError naming the known ones."""
    known = settings()
    for key in kwargs:
        if key not in known or key in ("problem", "lr"):
            raise ValueError(f"{key}=... is not a setting of a sweep; the settings are {', '.join(known)}")
    if kwargs.get("steps") is not None and kwargs.get("epochs") is not None:
        _both_lengths(kwargs["steps"], kwargs["epochs"])
    where = set(run_options())
    spec = SweepSpec(problem=problem, lr=lr, **{k: v for k, v in kwargs.items() if k not in where})
    return spec, RunOptions(**{k: v for k, v in kwargs.items() if k in where})
