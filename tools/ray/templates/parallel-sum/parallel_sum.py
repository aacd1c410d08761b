"""Sum of i*i for i in 1..N over Ray tasks, compared with N(N+1)(2N+1)/6."""

import argparse

import ray


@ray.remote
def chunk_sum(start: int, stop: int) -> int:
    return sum(i * i for i in range(start, stop))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--chunks", type=int, default=8)
    args = parser.parse_args()
    ray.init()
    step = args.n // args.chunks + 1
    parts = [chunk_sum.remote(s, min(s + step, args.n + 1)) for s in range(1, args.n + 1, step)]
    total = sum(ray.get(parts))
    expected = args.n * (args.n + 1) * (2 * args.n + 1) // 6
    print(f"sum of squares 1..{args.n} over {len(parts)} tasks = {total}")
    print("RESULT OK" if total == expected else f"RESULT MISMATCH (expected {expected})")
    if total != expected:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
