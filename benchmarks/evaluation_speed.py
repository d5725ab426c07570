"""Speed of ``evaluate_full_ranking`` against a plain NumPy reference, measured in one run.

Random scores at ML-100K size (943 users x 1682 items) and ML-1M size (6040 x 3706),
with test positives and masked training items at those datasets' densities. The TF path
is timed after one warm-up call (tracing); both paths' results are compared. The sampled
protocol (100 uniform negatives per test pair) is timed at ML-100K size too.

Run: ``.venv/bin/python benchmarks/evaluation_speed.py``; the last line is JSON (not printed when
the machine was busy, unless ``--allow-busy``).
"""

import argparse
import importlib.util
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfrecs  # noqa: E402,F401  - before TensorFlow
import tensorflow as tf  # noqa: E402

from tfrecs.evaluation import RankingTargets, evaluate_full_ranking, evaluate_sampled, sample_negatives  # noqa: E402

import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate

REPO = pathlib.Path(__file__).resolve().parents[1]
KS = (10, 20)
REPEATS = 5
# name, users, items, test items per user, masked (training) items per user
CASES = [("ml100k", 943, 1682, 10, 85), ("ml1m", 6040, 3706, 17, 132)]


def load_numpy_reference():
    """The NumPy reference the tests check against (tests/test_full_ranking.py)."""
    spec = importlib.util.spec_from_file_location("test_full_ranking", REPO / "tests" / "test_full_ranking.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_full_ranking


def random_case(num_users, num_items, test_per_user, masked_per_user, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((num_users, num_items), dtype=np.float32)
    positives, exclusions = [], []
    for _ in range(num_users):
        items = rng.choice(num_items, test_per_user + masked_per_user, replace=False)
        positives.append(np.sort(items[:test_per_user]))
        exclusions.append(np.sort(items[test_per_user:]))
    return scores, positives, exclusions


def to_targets(positives, exclusions, num_items):
    def flat(per_user):
        return (np.repeat(np.arange(len(per_user)), [len(r) for r in per_user]), np.concatenate(per_user))

    return RankingTargets.from_pairs(*flat(positives), *flat(exclusions), num_items=num_items)


def best_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def build_parser() -> argparse.ArgumentParser:
    return machine.add_argument(argparse.ArgumentParser(description=__doc__.splitlines()[0]))


def main(argv=None):
    args = build_parser().parse_args(argv)
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the work
        figures = measure()
    figures["machine"] = machine.record_or_exit(watch, args.allow_busy)
    print(json.dumps(figures))


def measure() -> dict:
    """The figures of one run (everything but the machine record)."""
    reference_full_ranking = load_numpy_reference()
    figures = {
        "benchmark": "evaluation_speed",
        "split": "random_scores",
        "ks": list(KS),
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
    }
    for name, num_users, num_items, test_per_user, masked_per_user in CASES:
        scores, positives, exclusions = random_case(num_users, num_items, test_per_user, masked_per_user)
        targets = to_targets(positives, exclusions, num_items)
        table = tf.constant(scores)

        def score_fn(users):
            return tf.gather(table, users)

        start = time.perf_counter()
        evaluate_full_ranking(score_fn, targets, ks=KS)  # warm-up: traces the batch function
        first_call = time.perf_counter() - start
        tf_seconds, tf_results = best_seconds(lambda: evaluate_full_ranking(score_fn, targets, ks=KS), REPEATS)
        np_seconds, np_results = best_seconds(lambda: reference_full_ranking(scores, positives, exclusions, KS), 2)
        max_difference = max(abs(tf_results[m] - np_results[m]) for m in np_results)
        print(
            f"{name}: {num_users} users x {num_items} items | tfrecs {tf_seconds:.4f} s "
            f"(first call {first_call:.3f} s) | numpy reference {np_seconds:.4f} s | "
            f"speed-up x{np_seconds / tf_seconds:.1f} | max metric difference {max_difference:.1e} | "
            f"ndcg@10 {tf_results['ndcg@10']:.5f}"
        )
        figures.update(
            {
                f"{name}_users": num_users,
                f"{name}_items": num_items,
                f"{name}_tfrecs_seconds": round(tf_seconds, 5),
                f"{name}_tfrecs_first_call_seconds": round(first_call, 4),
                f"{name}_numpy_seconds": round(np_seconds, 4),
                f"{name}_speedup": round(np_seconds / tf_seconds, 2),
                f"{name}_max_metric_difference": float(max_difference),
            }
        )
        if name == "ml100k":
            sample_seconds, negatives = best_seconds(lambda: sample_negatives(targets, 100, seed=0), 1)
            evaluate_sampled(score_fn, targets, negatives, ks=KS)  # warm-up
            sampled_seconds, _ = best_seconds(lambda: evaluate_sampled(score_fn, targets, negatives, ks=KS), 3)
            print(
                f"{name} sampled (100 negatives x {targets.num_pairs} pairs): sampling "
                f"{sample_seconds:.3f} s, evaluation {sampled_seconds:.3f} s"
            )
            figures.update(
                {
                    f"{name}_sample_negatives_seconds": round(sample_seconds, 4),
                    f"{name}_evaluate_sampled_seconds": round(sampled_seconds, 4),
                }
            )
    return figures


if __name__ == "__main__":
    main()
