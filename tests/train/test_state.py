"""The run's state and the early-stopping tracker: values that each update returns anew."""

from __future__ import annotations

import json
from dataclasses import asdict

from assay.train.state import RunState, Tracker


def test_tracker_keeps_the_lowest_loss_and_resets_patience_on_improvement() -> None:
    tracker = Tracker().update(1.0, 2, patience=2).update(1.2, 4, patience=2)
    assert (tracker.best_loss, tracker.best_step, tracker.bad_evals, tracker.stopped_early) == (1.0, 2, 1, False)
    better = tracker.update(0.5, 6, patience=2)
    assert (better.best_loss, better.best_step, better.bad_evals) == (0.5, 6, 0)


def test_tracker_stops_after_patience_validations_without_improvement() -> None:
    tracker = Tracker().update(1.0, 1, patience=2)
    tracker = tracker.update(1.0, 2, patience=2)  # equal is not better
    assert not tracker.stopped_early
    assert tracker.update(3.0, 3, patience=2).stopped_early
    assert not tracker.update(3.0, 3, patience=None).stopped_early


def test_updates_return_new_states_and_leave_the_old_one_alone() -> None:
    start = RunState(fingerprint="f")
    later = start.after_step(loss=2.0, tokens=10, seconds=0.5).after_step(loss=1.5, tokens=7, seconds=0.25)
    assert (start.global_step, start.tokens) == (0, 0)
    assert (later.stage_step, later.global_step, later.step_in_epoch, later.tokens, later.last_loss) == (2, 2, 2, 17, 1.5)
    assert later.train_seconds == 0.75
    assert (later.next_epoch().epoch, later.next_epoch().step_in_epoch, later.next_epoch().stage_step) == (1, 0, 2)


def test_validation_records_the_loss_and_the_best_step() -> None:
    state = RunState(fingerprint="f").after_step(loss=2.0, tokens=1, seconds=0.1).validated(1.25, patience=None)
    assert (state.last_val, state.last_val_step, state.best_loss, state.best_step) == (1.25, 1, 1.25, 1)
    state = state.after_step(loss=2.0, tokens=1, seconds=0.1).validated(1.5, patience=1)
    assert (state.best_step, state.bad_evals, state.stopped_early, state.last_val) == (1, 1, True, 1.5)


def test_next_stage_keeps_the_summary_and_the_totals_and_resets_the_rest() -> None:
    state = RunState(fingerprint="f").after_step(loss=2.0, tokens=5, seconds=1.0).validated(1.0, patience=1)
    summary = state.stage_summary(selected="best")
    assert summary["epochs_started"] == 1 and summary["best_step"] == 1 and summary["final_val_loss"] == 1.0
    nxt = state.next_stage(summary)
    assert (nxt.stage, nxt.stage_step, nxt.epoch, nxt.best_loss, nxt.last_val, nxt.bad_evals) == (1, 0, 0, None, None, 0)
    assert (nxt.global_step, nxt.tokens, nxt.summaries) == (1, 5, [summary])


def test_state_survives_a_round_trip_through_state_json() -> None:
    state = RunState(fingerprint="f").after_step(loss=2.0, tokens=5, seconds=1.0).validated(1.0, patience=None)
    state = state.next_stage(state.stage_summary(selected="last"))
    assert RunState(**json.loads(json.dumps(asdict(state)))) == state
