"""Where a run is: the counters a checkpoint saves, and the best-loss tracker behind early stopping.

Both are values: every change returns a new one, so the recipe shows each update where it happens.
`RunState` is written flat to every checkpoint's `state.json`; it is the data position too, since the
data order is a pure function of (seed, stage, epoch) and the step within the epoch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Tracker:
    """The best validation loss of a stage, and how many validations since did not beat it."""

    best_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False

    def update(self, loss: float, step: int, *, patience: int | None) -> Tracker:
        """The tracker after a validation at `step`; stops early after `patience` non-improvements."""
        if self.best_loss is None or loss < self.best_loss:
            return Tracker(best_loss=loss, best_step=step)
        bad = self.bad_evals + 1
        return replace(self, bad_evals=bad, stopped_early=patience is not None and bad >= patience)


@dataclass(frozen=True)
class RunState:
    """Where the run is; saved in every checkpoint's state.json (a resumed run starts from it)."""

    fingerprint: str
    stage: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    stage_step: int = 0
    global_step: int = 0
    tokens: int = 0
    best_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    last_loss: float | None = None
    last_val: float | None = None
    last_val_step: int | None = None
    metrics_lines: int = 0
    train_seconds: float = 0.0
    summaries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tracker(self) -> Tracker:
        return Tracker(self.best_loss, self.best_step, self.bad_evals, self.stopped_early)

    def after_step(self, *, loss: float, tokens: int, seconds: float) -> RunState:
        """One optimizer step further."""
        return replace(
            self, stage_step=self.stage_step + 1, global_step=self.global_step + 1, step_in_epoch=self.step_in_epoch + 1,
            tokens=self.tokens + tokens, train_seconds=self.train_seconds + seconds, last_loss=loss,
        )

    def next_epoch(self) -> RunState:
        return replace(self, epoch=self.epoch + 1, step_in_epoch=0)

    def validated(self, loss: float, *, patience: int | None) -> RunState:
        """The state after a validation at the current step (best loss, patience count, early stop)."""
        tracker = self.tracker.update(loss, self.stage_step, patience=patience)
        return replace(self, last_val=loss, last_val_step=self.stage_step, **asdict(tracker))

    def stage_summary(self, *, selected: str) -> dict[str, Any]:
        """What the manifest records of the stage that just ended."""
        return {
            "steps": self.stage_step, "epochs_started": self.epoch + (1 if self.step_in_epoch else 0),
            "stopped_early": self.stopped_early, "best_val_loss": self.best_loss, "best_step": self.best_step,
            "final_train_loss": self.last_loss, "final_val_loss": self.last_val, "selected": selected,
        }

    def next_stage(self, summary: dict[str, Any]) -> RunState:
        """The first step of the next stage, with the finished stage's summary kept."""
        return replace(
            self, stage=self.stage + 1, epoch=0, step_in_epoch=0, stage_step=0, last_loss=None, last_val=None,
            last_val_step=None, summaries=[*self.summaries, summary], **asdict(Tracker()),
        )
