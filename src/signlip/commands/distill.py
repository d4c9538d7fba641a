"""`signlip distill teacher=i3d student=mobilenetv3 teacher.ckpt=PATH`: a training run whose objective is the
distillation loss against a frozen teacher."""

from __future__ import annotations

from signlip.commands import plain, run_dir, user_errors_exit_2


@user_errors_exit_2
def main(cfg) -> float | None:
    from signlip.objectives.distill_run import distill_objective_factory
    from signlip.training import run_training

    config, settings = plain(cfg)
    d = config["distill"]
    # The teacher checkpoint is read and checked here, before any data is prepared; classes and preprocessing are
    # compared with the student's data when the run is built (the factory), the one place that assembles a run.
    factory = distill_objective_factory(config["teacher"]["ckpt"], config["teacher"].get("task"),
                                        temperature=float(d["temperature"]), alpha=float(d["alpha"]),
                                        cache_teacher=bool(d["cache_teacher"]),
                                        label_smoothing=float(config["objective"].get("label_smoothing", 0.0)),
                                        student_init=config["student"].get("init"))
    result = run_training(config, settings, run_dir(), objective=factory, command="distill")
    return result["summary"]["best"]["value"] if "summary" in result else None
