#!/usr/bin/python3
"""Writes an evaluation set for the demo model: JSONL {"problem","answer"} lines, the format
`r1 bench --dataset` reads. Questions are drawn uniformly from the three families of
tools/demo_task.py (a + b and a - b up to 999, a times b with a <= 99 and b <= 9).

    /usr/bin/python3 tools/make_demo_eval.py --n 300 --seed S --out FILE.jsonl
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_task  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(f"eval/{args.seed}")  # a stream apart from the trainer's
    with open(args.out, "w") as f:
        for _ in range(args.n):
            problem, answer = demo_task.sample_eval_question(rng)
            f.write(json.dumps({"problem": problem, "answer": answer}) + "\n")


if __name__ == "__main__":
    main()
